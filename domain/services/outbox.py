"""The outbox relay: moves events the stores wrote with their state changes into the event log.

Each cycle reads the oldest pending events, appends them to the log and only then marks them
published. A crash (or a cancellation) between the two leaves them pending, so the next run
appends them again: delivery is at least once and readers de-duplicate by event id. Nothing a
store accepted is skipped: an event the log refuses stays pending and is reported every cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from domain.errors import EventPublishError, EventTooLargeError
from domain.ports import EventSink, Outbox

log = logging.getLogger(__name__)


@dataclass
class OutboxStats:
    relayed: int = 0
    cycles: int = 0
    failures: int = 0
    refused: int = 0
    last_error: str | None = None


class OutboxRelay:
    """Relays ``outbox`` into ``sink`` until stopped. After a full batch it reads again at once;
    after a partial one it waits ``idle_interval``; each cycle that finds nothing doubles the
    wait, up to ``max_idle_interval`` (reading a DynamoDB outbox costs a query per partition)."""

    def __init__(
        self,
        outbox: Outbox,
        sink: EventSink,
        *,
        batch_size: int = 500,
        idle_interval: float = 0.05,
        max_idle_interval: float = 0.5,
        max_backoff: float = 5.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._outbox = outbox
        self._sink = sink
        self._batch_size = batch_size
        self._idle_interval = idle_interval
        self._max_idle_interval = max(idle_interval, max_idle_interval)
        self._max_backoff = max_backoff
        self._stopping = asyncio.Event()
        self.stats = OutboxStats()

    async def relay_once(self) -> int:
        """Append what is pending and mark it; returns how many events were marked published.
        Raises EventPublishError (after marking what did go out) when the sink kept failing."""
        pending = await self._outbox.pending(limit=self._batch_size)
        if not pending:
            return 0
        self.stats.cycles += 1
        publishable = pending
        try:
            await self._sink.append(publishable)
            self.stats.refused = 0
        except EventTooLargeError as e:
            refused = set(e.event_ids)
            self.stats.refused = len(refused)
            log.error(
                "the event log refuses %d outbox event(s) larger than %d bytes; they stay "
                "pending: %s",
                len(refused),
                e.limit_bytes,
                ", ".join(sorted(refused)),
            )
            publishable = [event for event in pending if event.id not in refused]
            await self._sink.append(publishable)
        except EventPublishError as e:
            if e.published_ids:
                await self._mark(list(e.published_ids))
            raise
        return await self._mark([event.id for event in publishable])

    async def _mark(self, event_ids: list[str]) -> int:
        if event_ids:
            await self._outbox.mark_published(event_ids)
            self.stats.relayed += len(event_ids)
        return len(event_ids)

    async def run(self) -> None:
        """Relay until ``stop`` is called (the cycle under way finishes and marks what it
        appended) or the task is cancelled. Failures are retried with backoff, never skipped."""
        backoff = 0.1
        idle = self._idle_interval
        while not self._stopping.is_set():
            try:
                relayed = await self.relay_once()
                backoff = 0.1
                if relayed >= self._batch_size:
                    continue
                idle = self._idle_interval if relayed else min(idle * 2, self._max_idle_interval)
                await self._sleep(idle)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.stats.failures += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                log.exception("outbox relay failed; retrying in %.1f s", backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    def stop(self) -> None:
        self._stopping.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
