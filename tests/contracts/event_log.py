"""The EventLog contract. Fixture: ``event_log``, empty at the start of each test."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from domain.events import DomainEvent
from domain.ports import EventLog
from tests.contracts.builders import CET, T0


def _event(n: int, *, customer_id: str = "cus_1") -> DomainEvent:
    return DomainEvent(
        type="TestHappened",
        customer_id=customer_id,
        occurred_at=T0 + timedelta(seconds=n),
        payload={"n": n, "nested": {"ok": True, "items": [1, 2.5, None, "é"]}},
    )


async def test_an_empty_log_has_head_zero_and_nothing_to_read(event_log: EventLog) -> None:
    assert await event_log.head() == 0
    assert await event_log.read(after=0, limit=10) == []


async def test_events_are_read_back_in_append_order(event_log: EventLog) -> None:
    first = [_event(i) for i in range(3)]
    second = [_event(i, customer_id="cus_2") for i in range(3, 5)]
    await event_log.append(first)
    await event_log.append(second)

    logged = await event_log.read(after=0, limit=100)

    assert [entry.event for entry in logged] == first + second
    positions = [entry.position for entry in logged]
    assert positions == sorted(positions)
    assert len(set(positions)) == 5
    assert positions[0] > 0
    assert await event_log.head() == positions[-1]


async def test_read_after_a_position_with_a_limit(event_log: EventLog) -> None:
    await event_log.append([_event(i) for i in range(6)])
    everything = await event_log.read(after=0, limit=100)

    window = await event_log.read(after=everything[1].position, limit=3)
    tail = await event_log.read(after=everything[-1].position, limit=3)

    assert window == everything[2:5]
    assert tail == []


async def test_event_timestamps_and_payloads_round_trip(event_log: EventLog) -> None:
    event = DomainEvent(
        type="TestHappened",
        customer_id="cus_1",
        occurred_at=(T0 + timedelta(microseconds=7)).astimezone(CET),
        payload={"amount": 12345678901234, "text": "naïve ☕", "flag": False, "list": []},
    )
    await event_log.append([event])

    (logged,) = await event_log.read(after=0, limit=1)

    assert logged.event == event
    assert logged.event.occurred_at.utcoffset() is not None
    assert logged.event.occurred_at == T0 + timedelta(microseconds=7)


async def test_appending_nothing_changes_nothing(event_log: EventLog) -> None:
    await event_log.append([])
    assert await event_log.head() == 0


async def test_checkpoints_start_at_zero_and_are_kept_per_consumer(event_log: EventLog) -> None:
    assert await event_log.checkpoint("relay") == 0

    await event_log.save_checkpoint("relay", 7)
    await event_log.save_checkpoint("insights", 3)
    await event_log.save_checkpoint("relay", 9)

    assert await event_log.checkpoint("relay") == 9
    assert await event_log.checkpoint("insights") == 3
    assert await event_log.checkpoint("other") == 0


async def test_wait_returns_early_when_an_event_is_appended(event_log: EventLog) -> None:
    head = await event_log.head()

    async def append_soon() -> None:
        await asyncio.sleep(0.05)
        await event_log.append([_event(1)])

    appender = asyncio.create_task(append_soon())
    started = time.monotonic()
    await event_log.wait(after=head, timeout=5.0)
    elapsed = time.monotonic() - started
    await appender

    assert elapsed < 2.0
    assert len(await event_log.read(after=head, limit=10)) == 1


async def test_wait_gives_up_after_the_timeout(event_log: EventLog) -> None:
    started = time.monotonic()
    await event_log.wait(after=await event_log.head(), timeout=0.2)
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 2.0
