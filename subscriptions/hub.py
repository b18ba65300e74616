"""The per-process fan-out hub.

Each bus channel has at most one bus subscription per process, however many GraphQL subscribers
listen to it: a pump task reads the channel, decodes each message once, and offers it to every
listener's bounded queue. The pump starts with the first listener and stops with the last.

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
    def __init__(self, queue_size: int) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
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
    pump: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class SubscriptionHub:
    def __init__(
        self,
        bus: Bus,
        *,
        queue_size: int = 256,
        decode: Callable[[str], Any] = lambda m: m,
        ready_timeout: float = 10.0,
    ) -> None:
        self._bus = bus
        self._ready_timeout = ready_timeout
        self._queue_size = queue_size
        self._decode = decode
        self._channels: dict[str, _Channel] = {}
        self._lock = asyncio.Lock()
        self.delivered = 0

    @contextlib.asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[Listener]:
        """A listener on ``channel``; the bus subscription exists before this returns, so
        anything published afterwards reaches it."""
        listener = Listener(self._queue_size)
        async with self._lock:
            state = self._channels.get(channel)
            if state is None:
                state = self._channels[channel] = _Channel()
                state.pump = asyncio.create_task(self._pump(channel, state), name=f"hub:{channel}")
            state.listeners.add(listener)
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
            state.listeners.discard(listener)
            if state.listeners or self._channels.get(channel) is not state:
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
                        for listener in tuple(state.listeners):
                            listener.offer(message)
                        self.delivered += len(state.listeners)
                for listener in tuple(state.listeners):
                    listener.close()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("bus subscription to %s failed; resubscribing", channel)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def stats(self) -> dict[str, int]:
        """Listeners per channel with a live pump; empty when nobody listens."""
        return {name: len(state.listeners) for name, state in self._channels.items()}

    @property
    def pumps(self) -> int:
        return sum(1 for s in self._channels.values() if s.pump and not s.pump.done())

    async def close(self) -> None:
        async with self._lock:
            channels = list(self._channels.values())
            self._channels.clear()
        for state in channels:
            for listener in state.listeners:
                listener.close()
            if state.pump is not None:
                state.pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await state.pump
