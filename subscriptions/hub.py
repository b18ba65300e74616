"""The per-process fan-out hub.

Each bus channel has at most one bus subscription per process, however many GraphQL subscribers
listen to it: a pump task reads the channel, decodes each message once, and offers it to every
listener's bounded queue. The pump starts with the first listener and stops with the last.

Keyed listeners: a listener that wants only the messages of one key (one customer's purchases)
says so when it joins, and the pump hands each message to the listeners of its key alone, by one
dictionary lookup. With thousands of subscribers each following one customer, filtering in every
subscriber instead would wake all of them for every message to discard all but a few.

Slow subscribers: a listener whose queue is full when a message arrives is cut off. Its stream
ends with ``SlowSubscriberError`` (the API reports code SLOW_SUBSCRIBER) rather than stalling
the pump for everyone or silently dropping messages from the middle of its stream; the client
reconnects and, where the subscription takes a ``since`` cursor, replays what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from domain.ports import Bus

log = logging.getLogger(__name__)

_CLOSED = object()


class SlowSubscriberError(Exception):
    """The subscriber fell more than its queue size behind and was disconnected."""

    code = "SLOW_SUBSCRIBER"


class HubUnavailableError(Exception):
    """The bus did not accept a subscription in time."""


class Listener:
    def __init__(self, queue_size: int, key: str | None = None) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self.key = key
        self.overflowed = False

    def offer(self, message: Any) -> None:
        if self.overflowed:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed = True
            # Make room for the sentinel so the consumer wakes up and learns it was cut off.
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self._queue.put_nowait(_CLOSED)

    def close(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_CLOSED)

    def __aiter__(self) -> Listener:
        return self

    async def __anext__(self) -> Any:
        message = await self._queue.get()
        if message is _CLOSED:
            if self.overflowed:
                raise SlowSubscriberError(
                    "subscriber fell too far behind the live stream and was disconnected"
                )
            raise StopAsyncIteration
        return message


@dataclass
class _Channel:
    listeners: set[Listener] = field(default_factory=set)
    """Those that take every message of the channel."""
    keyed: dict[str, set[Listener]] = field(default_factory=dict)
    """Those that take one key's messages, by key."""
    count: int = 0
    pump: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, listener: Listener) -> None:
        if listener.key is None:
            self.listeners.add(listener)
        else:
            self.keyed.setdefault(listener.key, set()).add(listener)
        self.count += 1

    def discard(self, listener: Listener) -> None:
        if listener.key is None:
            listeners = self.listeners
        elif (keyed := self.keyed.get(listener.key)) is not None:
            listeners = keyed
        else:
            return
        if listener in listeners:
            listeners.remove(listener)
            self.count -= 1
            if not listeners and listener.key is not None:
                del self.keyed[listener.key]

    def all(self) -> list[Listener]:
        return [*self.listeners, *(one for keyed in self.keyed.values() for one in keyed)]


class SubscriptionHub:
    def __init__(
        self,
        bus: Bus,
        *,
        queue_size: int = 256,
        decode: Callable[[str], Any] = lambda m: m,
        key_of: Callable[[Any], str | None] | None = None,
        ready_timeout: float = 10.0,
    ) -> None:
        """``key_of`` gives a decoded message's key, for listeners that join with one."""
        self._bus = bus
        self._key_of = key_of
        self._ready_timeout = ready_timeout
        self._queue_size = queue_size
        self._decode = decode
        self._channels: dict[str, _Channel] = {}
        self._lock = asyncio.Lock()
        self.delivered = 0

    @contextlib.asynccontextmanager
    async def listen(self, channel: str, *, key: str | None = None) -> AsyncIterator[Listener]:
        """A listener on ``channel``, given every message or, with ``key``, only the messages
        whose key (``key_of``) is ``key``. The bus subscription exists before this returns, so
        anything published afterwards reaches it."""
        if key is not None and self._key_of is None:
            raise ValueError("this hub has no key_of, so it cannot route by key")
        listener = Listener(self._queue_size, key)
        async with self._lock:
            state = self._channels.get(channel)
            if state is None:
                state = self._channels[channel] = _Channel()
                state.pump = asyncio.create_task(self._pump(channel, state), name=f"hub:{channel}")
            state.add(listener)
        try:
            try:
                await asyncio.wait_for(state.ready.wait(), timeout=self._ready_timeout)
            except TimeoutError as e:
                raise HubUnavailableError(f"could not subscribe to {channel} on the bus") from e
            yield listener
        finally:
            await self._leave(channel, state, listener)

    async def _leave(self, channel: str, state: _Channel, listener: Listener) -> None:
        async with self._lock:
            state.discard(listener)
            if state.count or self._channels.get(channel) is not state:
                return
            del self._channels[channel]
            pump = state.pump
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _pump(self, channel: str, state: _Channel) -> None:
        backoff = 0.1
        while True:
            try:
                async with self._bus.subscribe(channel) as messages:
                    state.ready.set()
                    backoff = 0.1
                    async for raw in messages:
                        try:
                            message = self._decode(raw)
                        except Exception:
                            log.exception("undecodable message on %s dropped", channel)
                            continue
                        self.delivered += self._offer(state, message)
                for listener in state.all():
                    listener.close()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("bus subscription to %s failed; resubscribing", channel)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _offer(self, state: _Channel, message: Any) -> int:
        """Hand ``message`` to the channel's listeners it is for; returns how many."""
        offered = 0
        if state.listeners:
            for listener in tuple(state.listeners):
                listener.offer(message)
            offered = len(state.listeners)
        if state.keyed and self._key_of is not None and (key := self._key_of(message)) is not None:
            keyed = state.keyed.get(key)
            if keyed:
                for listener in tuple(keyed):
                    listener.offer(message)
                offered += len(keyed)
        return offered

    def stats(self) -> dict[str, int]:
        """Listeners per channel with a live pump; empty when nobody listens."""
        return {name: state.count for name, state in self._channels.items()}

    @property
    def pumps(self) -> int:
        return sum(1 for s in self._channels.values() if s.pump and not s.pump.done())

    async def close(self) -> None:
        async with self._lock:
            channels = list(self._channels.values())
            self._channels.clear()
        for state in channels:
            for listener in state.all():
                listener.close()
            if state.pump is not None:
                state.pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await state.pump
