"""The stream processor against a scripted in-memory stream."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from adapters.memory.bus import MemoryBus
from domain.events import DomainEvent, channel_for
from domain.ports import EventBatch
from domain.services.processing import BusFanOut, StreamProcessor


def _batch(n: int, count: int = 2) -> EventBatch:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    events = tuple(
        DomainEvent(
            type="PurchaseRecorded", customer_id="cus_1", occurred_at=at, payload={"n": n * 10 + i}
        )
        for i in range(count)
    )
    return EventBatch(events=events, source="shard-1", token=n)


class ScriptedStream:
    def __init__(self, batches: Sequence[EventBatch]) -> None:
        self.batches = list(batches)
        self.acked: list[object] = []

    async def next_batch(self, *, timeout: float) -> EventBatch | None:
        if not self.batches:
            await asyncio.sleep(min(timeout, 0.01))
            return None
        return self.batches.pop(0)

    async def ack(self, batch: EventBatch) -> None:
        self.acked.append(batch.token)


class FlakyHandler:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.seen: list[DomainEvent] = []

    async def handle(self, events: Sequence[DomainEvent]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("bus down")
        self.seen.extend(events)


async def test_each_batch_is_handled_then_acknowledged_in_order() -> None:
    stream, handler = ScriptedStream([_batch(1), _batch(2, count=0), _batch(3)]), FlakyHandler(0)
    processor = StreamProcessor(stream, [handler])

    for _ in range(3):
        assert await processor.process_once() is not None

    assert stream.acked == [1, 2, 3]
    assert [e.payload["n"] for e in handler.seen] == [10, 11, 30, 31]
    assert processor.stats.events == 4


async def test_a_failing_handler_is_retried_and_the_batch_acknowledged_after() -> None:
    stream, handler = ScriptedStream([_batch(1)]), FlakyHandler(2)
    processor = StreamProcessor(stream, [handler], max_backoff=0.01)

    await processor.process_once()

    assert stream.acked == [1]
    assert len(handler.seen) == 2
    assert processor.stats.failures == 2


async def test_stopping_while_a_handler_fails_leaves_the_batch_unacknowledged() -> None:
    stream, handler = ScriptedStream([_batch(1)]), FlakyHandler(10_000)
    processor = StreamProcessor(stream, [handler], poll_timeout=0.01, max_backoff=0.01)
    task = asyncio.create_task(processor.run())
    for _ in range(200):
        if processor.stats.failures >= 2:
            break
        await asyncio.sleep(0.01)

    processor.stop()
    await asyncio.wait_for(task, timeout=2)

    assert stream.acked == []


async def test_bus_fan_out_publishes_each_event_on_its_type_channel() -> None:
    bus = MemoryBus()
    batch = _batch(1)
    try:
        async with bus.subscribe(channel_for("PurchaseRecorded")) as messages:
            await BusFanOut(bus).handle(batch.events)
            received = [await asyncio.wait_for(anext(messages), 1) for _ in batch.events]
    finally:
        await bus.close()

    assert [DomainEvent.from_json(m) for m in received] == list(batch.events)


async def test_a_failed_acknowledgement_is_retried_before_the_next_batch() -> None:
    class FlakyAcks(ScriptedStream):
        failures = 1

        async def ack(self, batch: EventBatch) -> None:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("checkpoint table away")
            await super().ack(batch)

    stream, handler = FlakyAcks([_batch(1), _batch(2)]), FlakyHandler(0)
    processor = StreamProcessor(stream, [handler], max_backoff=0.01)

    await processor.process_once()
    await processor.process_once()

    assert stream.acked == [1, 2]
    assert len(handler.seen) == 4
