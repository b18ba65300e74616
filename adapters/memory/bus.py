"""The in-process bus: live fan-out between tasks of one process, no broker needed."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from domain.errors import StoreUnavailableError
from domain.ports import Bus


class ListenerOverflowError(StoreUnavailableError):
    """A listener fell more than its queue size behind, so messages for it were dropped.

    It subclasses the domain's StoreUnavailableError so that code outside the adapters (which
    may not import them) can handle it like any other broken broker connection: the messages are
    gone, the cure is to subscribe again and catch up from the event log.
    """

    code = "LISTENER_OVERFLOW"


class _Listener:
    """One subscriber's queue and the async iterator that drains it."""

    __slots__ = ("_buffer", "_channel", "_closed", "_limit", "_overflowed", "_waiter")

    def __init__(self, channel: str, limit: int) -> None:
        self._channel = channel
        self._limit = limit
        self._buffer: deque[str] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._overflowed = False

    def offer(self, message: str) -> None:
        if self._closed or self._overflowed:
            return
        if len(self._buffer) >= self._limit:
            self._overflowed = True
            self._buffer.clear()
        else:
            self._buffer.append(message)
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> _Listener:
        return self

    async def __anext__(self) -> str:
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


class MemoryBus(Bus):
    """Fan-out to every listener subscribed at the moment of publishing, each with its own
    bounded queue of ``queue_size`` messages.

    ``publish`` never waits for a listener. One that falls ``queue_size`` messages behind is cut
    off rather than allowed to grow without bound or to slow the others: its queue is dropped and
    its iterator raises ListenerOverflowError on the next read. Leaving the ``subscribe`` context
    removes the listener; ``close`` ends every iterator once it has drained what it already holds.
    """

    def __init__(self, *, queue_size: int = 10_000) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self._queue_size = queue_size
        self._listeners: dict[str, set[_Listener]] = {}
        self._closed = False

    async def publish(self, channel: str, message: str) -> None:
        for listener in self._listeners.get(channel, ()):
            listener.offer(message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        listener = _Listener(channel, self._queue_size)
        if self._closed:
            listener.close()
            yield listener
            return
        listeners = self._listeners.setdefault(channel, set())
        listeners.add(listener)
        try:
            yield listener
        finally:
            listener.close()
            listeners.discard(listener)
            if not listeners and self._listeners.get(channel) is listeners:
                del self._listeners[channel]

    def listener_counts(self) -> dict[str, int]:
        """Active listeners per channel; channels nobody listens to are absent."""
        return {channel: len(listeners) for channel, listeners in self._listeners.items()}

    async def close(self) -> None:
        self._closed = True
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.close()
