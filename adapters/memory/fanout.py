"""In-process fan-out: each subscriber of a channel gets its own bounded queue of messages.

The in-process bus is nothing but this; the Redis bus puts it behind its one pub/sub connection,
so however many subscribers a process has, Redis sees one subscription per channel.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from domain.errors import StoreUnavailableError
from domain.ports import Replayed


class ListenerOverflowError(StoreUnavailableError):
    """A listener fell more than its queue size behind, so messages for it were dropped.

    It subclasses the domain's StoreUnavailableError so that code outside the adapters (which
    may not import them) can handle it like any other broken broker connection: the messages are
    gone, the cure is to subscribe again and catch up from the channel's history.
    """

    code = "LISTENER_OVERFLOW"


class Listener:
    """One subscriber's queue and the async iterator that drains it."""

    __slots__ = ("_buffer", "_channel", "_closed", "_limit", "_overflowed", "_waiter")

    def __init__(self, channel: str, limit: int) -> None:
        self._channel = channel
        self._limit = limit
        self._buffer: deque[Replayed] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._overflowed = False

    def offer(self, item: Replayed) -> None:
        if self._closed or self._overflowed:
            return
        if len(self._buffer) >= self._limit:
            self._overflowed = True
            self._buffer.clear()
        else:
            self._buffer.append(item)
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Listener:
        return self

    async def __anext__(self) -> Replayed:
        while True:
            if self._overflowed:
                raise ListenerOverflowError(
                    f"listener on {self._channel!r} fell {self._limit} messages behind; "
                    "messages were dropped"
                )
            if self._buffer:
                return self._buffer.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class Messages:
    """Replayed messages seen as plain messages, without their cursors."""

    __slots__ = ("_items",)

    def __init__(self, items: AsyncIterator[Replayed]) -> None:
        self._items = items

    def __aiter__(self) -> Messages:
        return self

    async def __anext__(self) -> str:
        return (await anext(self._items)).message


class Fanout:
    """Listeners by channel. ``offer`` never waits: a listener that falls ``queue_size``
    messages behind is cut off (its queue dropped, ListenerOverflowError on its next read)
    rather than allowed to grow without bound or to slow the others."""

    def __init__(self, queue_size: int) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self._queue_size = queue_size
        self._listeners: dict[str, set[Listener]] = {}
        self.closed = False

    def add(self, channel: str) -> Listener:
        """A new listener on ``channel``; on a closed fan-out it is already at its end."""
        listener = Listener(channel, self._queue_size)
        if self.closed:
            listener.close()
        else:
            self._listeners.setdefault(channel, set()).add(listener)
        return listener

    def remove(self, channel: str, listener: Listener) -> bool:
        """Close and forget ``listener``; True when it was the channel's last."""
        listener.close()
        listeners = self._listeners.get(channel)
        if listeners is None or listener not in listeners:
            return False
        listeners.discard(listener)
        if listeners:
            return False
        del self._listeners[channel]
        return True

    def offer(self, channel: str, item: Replayed) -> None:
        for listener in self._listeners.get(channel, ()):
            listener.offer(item)

    def channels(self) -> list[str]:
        return list(self._listeners)

    def counts(self) -> dict[str, int]:
        """Active listeners per channel; channels nobody listens to are absent."""
        return {channel: len(listeners) for channel, listeners in self._listeners.items()}

    def close(self) -> None:
        """End every iterator once it has drained what it already holds."""
        self.closed = True
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.close()
