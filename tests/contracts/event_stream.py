"""The EventStream contract. Fixtures: ``event_sink`` (appends to the log the stream reads, empty
at the start of each test) and ``open_event_stream`` (``open_event_stream(consumer)``: an async
context manager giving a fresh reader for that consumer name, as a restarted process would)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

from domain.events import DomainEvent
from domain.ports import EventBatch, EventSink, EventStream
from tests.contracts.builders import T0

OpenStream = Callable[[str], AbstractAsyncContextManager[EventStream]]
DEADLINE = 20.0


def _event(n: int, customer_id: str) -> DomainEvent:
    return DomainEvent(
        type="TestHappened",
        customer_id=customer_id,
        occurred_at=T0 + timedelta(seconds=n),
        payload={"n": n, "text": "naïve ☕"},
    )


async def _read(
    stream: EventStream, count: int, *, ack: bool = True, quiet: float = 0.0
) -> list[DomainEvent]:
    """Read until ``count`` events came (acknowledging each batch unless told not to), then for
    ``quiet`` more seconds to catch anything extra."""
    events: list[DomainEvent] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while len(events) < count and loop.time() < deadline:
        batch = await stream.next_batch(timeout=0.5)
        if batch is not None:
            events.extend(batch.events)
            if ack:
                await stream.ack(batch)
    quiet_until = loop.time() + quiet
    while loop.time() < quiet_until:
        batch = await stream.next_batch(timeout=max(0.05, quiet_until - loop.time()))
        if batch is not None:
            events.extend(batch.events)
            if ack:
                await stream.ack(batch)
    return events


def _per_customer(events: list[DomainEvent]) -> dict[str, list[int]]:
    order: dict[str, list[int]] = {}
    for event in events:
        order.setdefault(event.customer_id, []).append(int(event.payload["n"]))
    return order


async def test_every_event_arrives_once_in_order_per_customer(
    event_sink: EventSink, open_event_stream: OpenStream
) -> None:
    events = [_event(n, f"cus_{n % 4}") for n in range(40)]
    await event_sink.append(events[:25])
    await event_sink.append(events[25:])

    async with open_event_stream("contract") as stream:
        received = await _read(stream, len(events), quiet=0.5)

    assert sorted(e.id for e in received) == sorted(e.id for e in events)
    assert received[0] == next(e for e in events if e.id == received[0].id)
    assert _per_customer(received) == _per_customer(events)


async def test_nothing_to_read_returns_none_after_the_timeout(
    open_event_stream: OpenStream,
) -> None:
    async with open_event_stream("contract") as stream:
        loop = asyncio.get_running_loop()
        started = loop.time()
        batch = await stream.next_batch(timeout=0.3)
        assert batch is None or batch.events == ()
        assert loop.time() - started < 5.0


async def test_a_restarted_consumer_resumes_after_its_checkpoint(
    event_sink: EventSink, open_event_stream: OpenStream
) -> None:
    first = [_event(n, f"cus_{n % 3}") for n in range(12)]
    later = [_event(n, f"cus_{n % 3}") for n in range(12, 20)]
    await event_sink.append(first)
    async with open_event_stream("contract") as stream:
        before = await _read(stream, len(first))
    await event_sink.append(later)

    async with open_event_stream("contract") as stream:
        after = await _read(stream, len(later), quiet=0.5)

    assert sorted(e.id for e in before) == sorted(e.id for e in first)
    assert sorted(e.id for e in after) == sorted(e.id for e in later)


async def test_an_unacknowledged_batch_is_delivered_again(
    event_sink: EventSink, open_event_stream: OpenStream
) -> None:
    events = [_event(n, "cus_1") for n in range(5)]
    await event_sink.append(events)
    async with open_event_stream("contract") as stream:
        unacked = await _read(stream, len(events), ack=False)

    async with open_event_stream("contract") as stream:
        again = await _read(stream, len(events), quiet=0.3)

    assert [e.id for e in unacked] == [e.id for e in events]
    assert [e.id for e in again] == [e.id for e in events]


async def test_consumers_keep_their_own_checkpoints(
    event_sink: EventSink, open_event_stream: OpenStream
) -> None:
    events = [_event(n, "cus_1") for n in range(4)]
    await event_sink.append(events)
    async with open_event_stream("first") as stream:
        assert len(await _read(stream, 4)) == 4

    async with open_event_stream("second") as stream:
        assert [e.id for e in await _read(stream, 4)] == [e.id for e in events]


async def test_an_event_appended_twice_is_delivered_once(
    event_sink: EventSink, open_event_stream: OpenStream
) -> None:
    events = [_event(n, "cus_1") for n in range(3)]
    await event_sink.append(events)
    await event_sink.append(events[1:])

    async with open_event_stream("contract") as stream:
        received = await _read(stream, 3, quiet=0.8)

    assert [e.id for e in received] == [e.id for e in events]


async def test_batches_name_their_source(
    event_sink: EventSink, open_event_stream: OpenStream
) -> None:
    await event_sink.append([_event(1, "cus_1")])
    async with open_event_stream("contract") as stream:
        batch: EventBatch | None = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while (batch is None or not batch.events) and loop.time() < deadline:
            batch = await stream.next_batch(timeout=0.5)
        assert batch is not None
        assert batch.source
        await stream.ack(batch)
