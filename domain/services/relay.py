"""The live relay: tails the event log and fans each event out on the bus.

The bus is ephemeral (it reaches whoever listens now), so the relay starts at the log's head when
the process starts; the log itself, not the bus, is what consumers replay history from."""

from __future__ import annotations

import asyncio
import logging

from domain.events import channel_for
from domain.ports import Bus, EventLog

log = logging.getLogger(__name__)


class EventRelay:
    def __init__(
        self, events: EventLog, bus: Bus, *, batch_size: int = 500, poll_interval: float = 0.5
    ) -> None:
        self._events = events
        self._bus = bus
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self.position = 0
        self.published = 0

    async def start(self) -> None:
        self.position = await self._events.head()

    async def relay_once(self) -> int:
        """Publish what was appended since the last call; returns how many events went out."""
        batch = await self._events.read(after=self.position, limit=self._batch_size)
        for logged in batch:
            await self._bus.publish(channel_for(logged.event.type), logged.event.to_json())
            self.position = logged.position
        self.published += len(batch)
        return len(batch)

    async def run(self) -> None:
        """Relay until cancelled; a failing bus is retried with backoff, never skipped."""
        backoff = 0.1
        while True:
            try:
                if await self.relay_once() < self._batch_size:
                    await self._events.wait(after=self.position, timeout=self._poll_interval)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event relay failed at position %s; retrying", self.position)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
