"""The Kinesis consumer against moto_server: restart from the checkpoint without loss or
duplication (also of events published twice across the restart), resharding, bad records."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from adapters.kinesis.checkpoints import CheckpointTable
from adapters.kinesis.consumer import KinesisEventStream
from adapters.kinesis.resources import KinesisResources
from domain.events import DomainEvent

from .conftest import consume

OpenStream = Callable[[str], AbstractAsyncContextManager[KinesisEventStream]]


def _events(start: int, stop: int) -> list[DomainEvent]:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    return [
        DomainEvent(type="T", customer_id=f"cus_{n % 5}", occurred_at=at, payload={"n": n})
        for n in range(start, stop)
    ]


def _order(events: list[DomainEvent]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for e in events:
        out.setdefault(e.customer_id, []).append(int(e.payload["n"]))
    return out


async def test_events_published_again_across_a_restart_are_dropped(
    kinesis: KinesisResources, open_event_stream: OpenStream
) -> None:
    first = _events(0, 10)
    await kinesis.publisher.append(first)
    async with open_event_stream("worker") as stream:
        assert len(await consume(stream, 10)) == 10

    # The relay crashed after publishing and before marking: it publishes the tail again.
    later = _events(10, 15)
    await kinesis.publisher.append([*first[6:], *later])

    async with open_event_stream("worker") as stream:
        again = await consume(stream, 5)

    assert sorted(e.id for e in again) == sorted(e.id for e in later)
    assert _order(again) == _order(later)
    assert stream.stats.duplicates == 4


async def test_a_restart_mid_stream_loses_and_repeats_nothing(
    kinesis: KinesisResources, open_event_stream: OpenStream
) -> None:
    events = _events(0, 60)
    await kinesis.publisher.append(events)
    seen: list[DomainEvent] = []
    table = CheckpointTable(kinesis.dynamodb, kinesis.settings.checkpoints)
    stream = KinesisEventStream(
        kinesis.kinesis, table, kinesis.settings.stream, "worker", batch_limit=7
    )
    try:
        while len(seen) < 20:
            batch = await stream.next_batch(timeout=5)
            assert batch is not None
            seen.extend(batch.events)
            await stream.ack(batch)
        unacked = await stream.next_batch(timeout=5)  # fetched, never acknowledged: redelivered
    finally:
        await stream.close()

    async with open_event_stream("worker") as stream:
        seen.extend(await consume(stream, 60 - len(seen)))

    assert unacked is not None
    assert sorted(e.id for e in seen) == sorted(e.id for e in events)
    assert _order(seen) == _order(events)


async def test_after_a_reshard_children_are_read_once_their_parents_are_done(
    kinesis: KinesisResources, open_event_stream: OpenStream
) -> None:
    before, after = _events(0, 20), _events(20, 40)
    async with open_event_stream("worker") as stream:
        await kinesis.publisher.append(before)
        got = await consume(stream, 20)
        await kinesis.kinesis.update_shard_count(
            StreamName=kinesis.settings.stream, TargetShardCount=4, ScalingType="UNIFORM_SCALING"
        )
        await kinesis.publisher.append(after)
        got.extend(await consume(stream, 20, quiet=1.5))
        finished = stream.stats.shards_finished

    assert sorted(e.id for e in got) == sorted(e.id for e in before + after)
    assert _order(got) == _order(before + after)
    assert finished == 2  # both parents closed and handed over to their children


async def test_a_record_that_is_not_an_event_is_skipped(
    kinesis: KinesisResources, open_event_stream: OpenStream
) -> None:
    await kinesis.kinesis.put_record(
        StreamName=kinesis.settings.stream, Data=b"\x00not json", PartitionKey="cus_0"
    )
    events = _events(0, 3)
    await kinesis.publisher.append(events)

    async with open_event_stream("worker") as stream:
        got = await consume(stream, 3)

    assert sorted(e.id for e in got) == sorted(e.id for e in events)
    assert stream.stats.undecodable == 1


async def test_the_checkpoint_table_is_created_on_first_use(
    aws_env: dict[str, str], stream_name: str
) -> None:
    from adapters.kinesis.resources import ensure_stream, open_kinesis

    from .conftest import stream_url

    async with open_kinesis(stream_url(stream_name), check=False) as resources:
        await ensure_stream(resources.kinesis, stream_name, 1)
        await resources.publisher.append(_events(0, 2))
        stream = resources.stream("worker")
        got = await consume(stream, 2)
        tables = (await resources.dynamodb.list_tables())["TableNames"]

    assert len(got) == 2
    assert resources.settings.checkpoints in tables
