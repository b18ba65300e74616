"""The outbox relay against in-memory fakes of its two ports."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from domain.errors import EventPublishError, EventTooLargeError, StoreUnavailableError
from domain.events import DomainEvent
from domain.services.outbox import OutboxRelay


def _events(count: int) -> list[DomainEvent]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        DomainEvent(type="T", customer_id=f"cus_{n % 2}", occurred_at=at, payload={"n": n})
        for n in range(count)
    ]


class MemoryOutbox:
    def __init__(self, events: Sequence[DomainEvent]) -> None:
        self.events = list(events)
        self.published: set[str] = set()

    async def pending(self, *, limit: int) -> list[DomainEvent]:
        return [e for e in self.events if e.id not in self.published][:limit]

    async def mark_published(self, event_ids: Sequence[str]) -> None:
        self.published.update(event_ids)


class MemorySink:
    """Appends to a list; can fail the next call, refuse chosen events, or accept only some."""

    def __init__(self) -> None:
        self.appended: list[DomainEvent] = []
        self.fail_next: Exception | None = None
        self.too_large: set[str] = set()
        self.accept_only: int | None = None

    async def append(self, events: Sequence[DomainEvent]) -> None:
        refused = tuple(e.id for e in events if e.id in self.too_large)
        if refused:
            raise EventTooLargeError(refused, 1024)
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if self.accept_only is not None:
            taken, self.accept_only = list(events[: self.accept_only]), None
            self.appended.extend(taken)
            raise EventPublishError(
                "refused",
                published_ids=tuple(e.id for e in taken),
                failed_ids=tuple(e.id for e in events[len(taken) :]),
            )
        self.appended.extend(events)


async def test_pending_events_are_appended_in_order_then_marked() -> None:
    events = _events(7)
    outbox, sink = MemoryOutbox(events), MemorySink()
    relay = OutboxRelay(outbox, sink, batch_size=5)

    assert await relay.relay_once() == 5
    assert await relay.relay_once() == 2
    assert await relay.relay_once() == 0

    assert sink.appended == events
    assert outbox.published == {e.id for e in events}
    assert relay.stats.relayed == 7


async def test_a_failed_append_leaves_everything_pending_for_the_next_cycle() -> None:
    events = _events(3)
    outbox, sink = MemoryOutbox(events), MemorySink()
    sink.fail_next = StoreUnavailableError("stream down")
    relay = OutboxRelay(outbox, sink)

    with pytest.raises(StoreUnavailableError):
        await relay.relay_once()
    assert outbox.published == set()

    assert await relay.relay_once() == 3
    assert sink.appended == events


async def test_a_crash_after_the_append_publishes_again_on_restart() -> None:
    events = _events(3)
    outbox, sink = MemoryOutbox(events), MemorySink()

    class CrashingOutbox(MemoryOutbox):
        async def mark_published(self, event_ids: Sequence[str]) -> None:
            raise asyncio.CancelledError  # the process dies between the append and the mark

    crashing = CrashingOutbox(events)
    with pytest.raises(asyncio.CancelledError):
        await OutboxRelay(crashing, sink).relay_once()
    outbox.published = crashing.published

    assert await OutboxRelay(outbox, sink).relay_once() == 3
    assert [e.id for e in sink.appended] == [e.id for e in events] * 2  # at least once


async def test_what_did_go_out_is_marked_when_the_rest_keeps_failing() -> None:
    events = _events(4)
    outbox, sink = MemoryOutbox(events), MemorySink()
    sink.accept_only = 1
    relay = OutboxRelay(outbox, sink)

    with pytest.raises(EventPublishError):
        await relay.relay_once()
    assert outbox.published == {events[0].id}

    assert await relay.relay_once() == 3
    assert sink.appended == events


async def test_an_event_too_large_for_the_log_stays_pending_and_the_rest_go_out() -> None:
    events = _events(3)
    outbox, sink = MemoryOutbox(events), MemorySink()
    sink.too_large = {events[1].id}
    relay = OutboxRelay(outbox, sink)

    assert await relay.relay_once() == 2

    assert sink.appended == [events[0], events[2]]
    assert await outbox.pending(limit=10) == [events[1]]
    assert relay.stats.refused == 1


async def test_run_retries_failures_and_stops_after_the_cycle_under_way() -> None:
    events = _events(2)
    outbox, sink = MemoryOutbox(events), MemorySink()
    sink.fail_next = StoreUnavailableError("blip")
    relay = OutboxRelay(outbox, sink, idle_interval=0.01)
    task = asyncio.create_task(relay.run())

    for _ in range(200):
        if outbox.published == {e.id for e in events}:
            break
        await asyncio.sleep(0.01)
    relay.stop()
    await asyncio.wait_for(task, timeout=2)

    assert sink.appended == events
    assert relay.stats.failures == 1
    assert relay.stats.last_error is not None
