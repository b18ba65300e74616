"""The stream processor: reads batches from an event stream, hands each to its handlers in
order, and acknowledges the batch only once every handler has finished with it.

A handler that fails is retried with backoff and the batch is never skipped, so a stop or a
crash at any point leaves the batch unacknowledged and it is delivered again on restart: handlers
see each event at least once and must tolerate a repeat of the last unacknowledged batch."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from domain.events import DomainEvent, channel_for
from domain.ports import EventBatch, EventStream, ReplayBus

log = logging.getLogger(__name__)


class EventHandler(Protocol):
    async def handle(self, events: Sequence[DomainEvent]) -> None: ...


class BusFanOut(EventHandler):
    """Appends each event to the bus channel of its type (what live subscriptions listen to and
    replay from), keyed by event id so the bus drops a repeat of a redelivered batch."""

    def __init__(self, bus: ReplayBus) -> None:
        self._bus = bus

    async def handle(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            await self._bus.append(channel_for(event.type), event.to_json(), key=event.id)


class CustomerUpdate(EventHandler):
    """Runs ``update`` once on the customers of a batch's events of ``types``, in the order of
    their first event: the prediction or segment update of what the batch changed. The updates
    recompute from the stored history, so a redelivered batch changes nothing twice."""

    def __init__(
        self,
        name: str,
        types: Collection[str],
        update: Callable[[Sequence[str]], Awaitable[int]],
    ) -> None:
        self.name = name
        self._types = frozenset(types)
        self._update = update
        self.updated = 0

    async def handle(self, events: Sequence[DomainEvent]) -> None:
        customers = list(dict.fromkeys(e.customer_id for e in events if e.type in self._types))
        if customers:
            self.updated += await self._update(customers)


@dataclass
class ProcessorStats:
    batches: int = 0
    events: int = 0
    failures: int = 0
    last_event_at: float | None = None
    last_error: str | None = None


class StreamProcessor:
    def __init__(
        self,
        stream: EventStream,
        handlers: Sequence[EventHandler],
        *,
        poll_timeout: float = 1.0,
        max_backoff: float = 5.0,
    ) -> None:
        self._stream = stream
        self._handlers = tuple(handlers)
        self._poll_timeout = poll_timeout
        self._max_backoff = max_backoff
        self._stopping = asyncio.Event()
        self.stats = ProcessorStats()

    def stop(self) -> None:
        """Finish the batch under way (handled and acknowledged), then return from ``run``."""
        self._stopping.set()

    async def process_once(self) -> EventBatch | None:
        """Handle and acknowledge one batch; None when none arrived within the poll timeout."""
        batch = await self._stream.next_batch(timeout=self._poll_timeout)
        if batch is None:
            return None
        if batch.events:
            for handler in self._handlers:
                name = getattr(handler, "name", type(handler).__name__)
                await self._retrying(name, batch, partial(handler.handle, batch.events))
        # An acknowledgement that fails is retried too: it may carry the end of a shard, which
        # the stream needs before it moves on to the shard's children.
        await self._retrying("acknowledging", batch, partial(self._stream.ack, batch))
        self.stats.batches += 1
        self.stats.events += len(batch.events)
        if batch.events:
            self.stats.last_event_at = time.time()
        return batch

    async def _retrying(
        self, what: str, batch: EventBatch, call: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``call`` until it succeeds, with backoff; when stopping, give up instead (the
        batch stays unacknowledged and is delivered again on restart)."""
        backoff = 0.1
        while True:
            try:
                await call()
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.stats.failures += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                if self._stopping.is_set():
                    raise
                log.exception(
                    "%s failed on a batch of %d from %s; retrying in %.1f s",
                    what,
                    len(batch.events),
                    batch.source,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    async def run(self) -> None:
        """Process until ``stop``; a failing stream read is retried with backoff."""
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                await self.process_once()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if self._stopping.is_set():
                    log.warning("stopping with a batch unacknowledged: %s", e)
                    return
                self.stats.failures += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                log.exception("reading the event stream failed; retrying in %.1f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
