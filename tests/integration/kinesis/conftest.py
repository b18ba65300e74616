"""Kinesis fixtures: a fresh stream (two shards) and checkpoint table per test on the session's
moto_server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from adapters.kinesis.consumer import KinesisEventStream
from adapters.kinesis.publisher import KinesisEventLog
from adapters.kinesis.resources import KinesisResources, open_kinesis, provision
from domain.events import DomainEvent


def stream_url(name: str, *, shards: int = 2) -> str:
    return f"kinesis://{name}?shards={shards}&checkpoints={name}-checkpoints&poll=0.2"


@pytest.fixture
def stream_name() -> str:
    return f"omnix-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def kinesis(aws_env: dict[str, str], stream_name: str) -> AsyncIterator[KinesisResources]:
    url = stream_url(stream_name)
    await provision(url)
    async with open_kinesis(url) as resources:
        yield resources


@pytest.fixture
def event_sink(kinesis: KinesisResources) -> KinesisEventLog:
    return kinesis.publisher


@pytest.fixture
def open_event_stream(
    kinesis: KinesisResources,
) -> Callable[[str], AbstractAsyncContextManager[KinesisEventStream]]:
    @asynccontextmanager
    async def open_stream(consumer: str) -> AsyncIterator[KinesisEventStream]:
        stream = kinesis.stream(consumer, refresh_interval=0.3)
        try:
            yield stream
        finally:
            await stream.close()

    return open_stream


async def raw_records(resources: KinesisResources) -> list[dict[str, Any]]:
    """Every record in the stream, shard by shard, straight from GetRecords."""
    client, name = resources.kinesis, resources.settings.stream
    shards = (await client.list_shards(StreamName=name))["Shards"]
    records: list[dict[str, Any]] = []
    for shard in shards:
        iterator = (
            await client.get_shard_iterator(
                StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )
        )["ShardIterator"]
        while iterator:
            page = await client.get_records(ShardIterator=iterator, Limit=10_000)
            records.extend(page["Records"])
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records


async def consume(
    stream: KinesisEventStream, count: int, *, quiet: float = 0.8
) -> list[DomainEvent]:
    """Read and acknowledge until ``count`` events came and then nothing for ``quiet`` s."""
    got: list[DomainEvent] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    idle_since = loop.time()
    while loop.time() < deadline:
        batch = await stream.next_batch(timeout=0.2)
        if batch is not None:
            got.extend(batch.events)
            await stream.ack(batch)
            if batch.events:
                idle_since = loop.time()
        if len(got) >= count and loop.time() - idle_since > quiet:
            break
    return got
