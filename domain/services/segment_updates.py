"""What keeps segments current while the service runs: the updater re-assigns customers after
their purchases (from the event log, behind the prediction updater), and the sweep re-scores
everyone as time passes."""

from __future__ import annotations

import asyncio
import logging

from domain.events import PURCHASE_RECORDED
from domain.ports import EventLog
from domain.services.reading import Progress
from domain.services.segments import RefitReport, SegmentService
from domain.services.tailing import run_consumer

log = logging.getLogger(__name__)


class SegmentUpdater:
    """Tails the event log from its own checkpoint and re-assigns the customers who bought.

    With ``follows`` (the prediction updater's consumer name) it reads no further than that
    consumer's checkpoint, so a purchase is scored with the predictions it produced (regularity
    and lifetime value come from them). Re-assigning is idempotent, so an event read twice after
    a crash costs time, never a duplicate migration."""

    CONSUMER = "segments"

    def __init__(
        self,
        events: EventLog,
        service: SegmentService,
        *,
        follows: str | None = None,
        batch_size: int = 500,
        poll_interval: float = 0.5,
    ) -> None:
        self._events = events
        self._service = service
        self._follows = follows
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self.position = 0
        self.migrations = 0

    async def start(self) -> None:
        """Resume from the checkpoint; without one, refit (when no model is stored yet) and
        start from the head the refit saw."""
        self.position = await self._events.checkpoint(self.CONSUMER)
        if self.position == 0:
            head = await self._events.head()
            if await self._service.model() is None:
                await self._service.refit()
            self.position = head
            await self._events.save_checkpoint(self.CONSUMER, head)

    async def refit(self, *, progress: Progress | None = None) -> RefitReport:
        """Refit everyone and move the checkpoint past every event the refit has seen."""
        self.position = await self._events.checkpoint(self.CONSUMER)
        head = await self._events.head()
        report = await self._service.refit(progress=progress)
        if report.model_version is not None and head > self.position:
            self.position = head
            await self._events.save_checkpoint(self.CONSUMER, head)
        return report

    async def process_once(self) -> int:
        """Handle what was appended since the checkpoint (up to the followed consumer's);
        returns how many events were read."""
        ceiling = None
        if self._follows is not None:
            ceiling = await self._events.checkpoint(self._follows)
            if ceiling <= self.position:
                return 0
        batch = await self._events.read(after=self.position, limit=self._batch_size)
        if ceiling is not None:
            batch = [e for e in batch if e.position <= ceiling]
        if not batch:
            return 0
        customers = [e.event.customer_id for e in batch if e.event.type == PURCHASE_RECORDED]
        self.migrations += await self._service.update(customers)
        self.position = batch[-1].position
        await self._events.save_checkpoint(self.CONSUMER, self.position)
        return len(batch)

    async def run(self) -> None:
        """Start, then update until cancelled; a failure is logged and retried with backoff."""
        await run_consumer(
            self, self._events, name="segment", batch_size=self._batch_size,
            poll_interval=self._poll_interval,
        )  # fmt: skip


class SegmentSweeper:
    """Runs :meth:`SegmentService.sweep` every ``interval_seconds``."""

    def __init__(self, service: SegmentService, *, interval_seconds: float) -> None:
        self._service = service
        self._interval = interval_seconds
        self.sweeps = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                report = await self._service.sweep()
                self.sweeps += 1
                log.info(
                    "segment sweep: %d customers, %d re-scored, %d migrations in %.1fs",
                    report.customers, report.rescored, report.migrations, report.seconds,
                )  # fmt: skip
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("segment sweep failed; retrying at the next interval")
