"""A crash between the store write and the publish, with a SQLite store and a Kinesis log: the
relay publishes on restart, nothing is lost, and the consumer drops the duplicates."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from adapters.kinesis.publisher import KinesisEventLog
from adapters.kinesis.resources import KinesisResources
from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.event_log import SqliteEventLog
from adapters.sqlite.outbox import SqliteOutbox
from adapters.sqlite.stores import SqliteCustomerStore
from domain.events import DomainEvent, customer_registered
from domain.services.outbox import OutboxRelay
from tests.contracts.builders import customer

from .conftest import consume, raw_records


class DiesAfterAppending:
    """The publisher, in a process that dies right after PutRecords answered."""

    def __init__(self, publisher: KinesisEventLog) -> None:
        self._publisher = publisher

    async def append(self, events: Sequence[DomainEvent]) -> None:
        await self._publisher.append(events)
        raise asyncio.CancelledError


async def test_the_relay_publishes_after_a_crash_and_the_consumer_deduplicates(
    kinesis: KinesisResources, tmp_path: Path
) -> None:
    async with SqliteDatabase(tmp_path / "omnix.db", readers=1) as db:
        store = SqliteCustomerStore(db)
        people = [customer(f"cus_{n}") for n in range(6)]
        for person in people:
            await store.add(person, customer_registered(person), None)
        # The process died right after these writes: nothing reached Kinesis.
        assert await raw_records(kinesis) == []

        log = SqliteEventLog(db)
        with pytest.raises(asyncio.CancelledError):
            await OutboxRelay(SqliteOutbox(log), DiesAfterAppending(kinesis.publisher)).relay_once()

        restarted = OutboxRelay(SqliteOutbox(log), kinesis.publisher)
        assert await restarted.relay_once() == 6
        assert await restarted.relay_once() == 0
        assert await SqliteOutbox(log).pending(limit=10) == []

    assert len(await raw_records(kinesis)) == 12  # every event twice in the stream
    stream = kinesis.stream("worker", refresh_interval=0.3)
    received = await consume(stream, 6)
    assert sorted(e.customer_id for e in received) == sorted(p.id for p in people)
    assert stream.stats.duplicates == 6
