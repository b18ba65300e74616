"""The live relay: tails the event log and fans each event out on the bus.

The bus is ephemeral (it reaches whoever listens now), so the relay starts at the log's head when
the process starts; the log itself, not the bus, is what consumers replay history from.

Each event goes out with its id as the bus's dedupe key, so a publish retried after a timeout
(that had in fact reached the bus) is not delivered twice.

With a bus that every process shares (Redis), all processes tail the same log, and each would
publish every event. Given a ``lease``, only its holder publishes: the others wait as standbys,
following the log's head. The holder records its position with each batch (a compare-and-set
on the lease), and a standby that takes the lease over, when the holder stopped renewing it,
resumes from that recorded position; what the old holder published after recording is
published again with the same keys, and the bus drops those repeats.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from domain.errors import StoreUnavailableError
from domain.events import channel_for
from domain.ports import EventLog, RelayLease, ReplayBus

log = logging.getLogger(__name__)


class EventRelay:
    def __init__(
        self,
        events: EventLog,
        bus: ReplayBus,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        lease: RelayLease | None = None,
        lease_seconds: float = 5.0,
        holder: str | None = None,
    ) -> None:
        self._events = events
        self._bus = bus
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._lease = lease
        self._lease_seconds = lease_seconds
        self.holder = holder or uuid.uuid4().hex
        self.leading = lease is None
        self.position = 0
        self.published = 0
        self.takeovers = 0

    async def start(self) -> None:
        self.position = await self._events.head()

    async def relay_once(self) -> int:
        """Publish what was appended since the last call; returns how many events went out
        (0 while another process holds the lease)."""
        if not await self._lead():
            return 0
        batch = await self._events.read(after=self.position, limit=self._batch_size)
        for logged in batch:
            event = logged.event
            await self._bus.append(channel_for(event.type), event.to_json(), key=event.id)
            self.position = logged.position
        self.published += len(batch)
        if self._lease is not None and not await self._lease.advance(
            self.holder, self.position, ttl_seconds=self._lease_seconds
        ):
            self.leading = False
            log.warning("event relay %s lost its lease at position %s", self.holder, self.position)
        return len(batch)

    async def _lead(self) -> bool:
        """Whether this process publishes now, taking the lease over when it is free."""
        lease = self._lease
        if lease is None or self.leading:
            return True
        if not await lease.acquire(self.holder, ttl_seconds=self._lease_seconds):
            self.position = await self._events.head()
            return False
        recorded = await lease.position()
        if recorded is not None:
            self.position = recorded
        self.leading = True
        self.takeovers += 1
        log.info("event relay %s holds the lease from position %s", self.holder, self.position)
        return True

    async def stop(self) -> None:
        """Hand the lease back so a standby takes over at once instead of after it expires."""
        if self._lease is not None and self.leading:
            self.leading = False
            try:
                await self._lease.release(self.holder)
            except StoreUnavailableError as e:
                log.warning("event relay %s could not release its lease: %s", self.holder, e)

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
