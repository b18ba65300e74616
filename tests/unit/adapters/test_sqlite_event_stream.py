"""The EventStream contract on the SQLite log, and the SQLite outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta

import pytest

from adapters.sqlite.event_log import SqliteEventLog
from adapters.sqlite.event_stream import SqliteEventStream
from adapters.sqlite.outbox import SqliteOutbox
from domain.events import DomainEvent
from domain.ports import EventStream
from tests.contracts.builders import T0
from tests.contracts.event_stream import *  # noqa: F403


@pytest.fixture
def event_sink(event_log: SqliteEventLog) -> SqliteEventLog:
    return event_log


@pytest.fixture
def open_event_stream(
    event_log: SqliteEventLog,
) -> Callable[[str], AbstractAsyncContextManager[EventStream]]:
    @asynccontextmanager
    async def open_stream(consumer: str) -> AsyncIterator[EventStream]:
        yield SqliteEventStream(event_log, consumer, batch_size=7)

    return open_stream


def _events(count: int) -> list[DomainEvent]:
    return [
        DomainEvent(
            type="T", customer_id="cus_1", occurred_at=T0 + timedelta(seconds=n), payload={}
        )
        for n in range(count)
    ]


async def test_the_outbox_holds_what_is_not_marked_oldest_first(event_log: SqliteEventLog) -> None:
    events = _events(5)
    await event_log.append(events)
    outbox = SqliteOutbox(event_log)

    assert await outbox.pending(limit=3) == events[:3]
    await outbox.mark_published([e.id for e in events[:3]])

    assert await outbox.pending(limit=10) == events[3:]
    assert await SqliteOutbox(event_log).pending(limit=10) == events[3:]


async def test_marks_out_of_order_wait_for_the_gap(event_log: SqliteEventLog) -> None:
    events = _events(4)
    await event_log.append(events)
    outbox = SqliteOutbox(event_log)

    await outbox.mark_published([events[0].id, events[2].id, events[3].id])

    assert await outbox.pending(limit=10) == [events[1]]
    # A restarted process knows only the contiguous mark: the later ones come again (at least once).
    assert await SqliteOutbox(event_log).pending(limit=10) == events[1:]
    await outbox.mark_published([events[1].id])
    assert await outbox.pending(limit=10) == []
    assert await SqliteOutbox(event_log).pending(limit=10) == []
