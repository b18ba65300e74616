"""The relay lease on Redis, and two relays sharing one event log and one Redis bus: every
event reaches a subscriber exactly once, also when the holder dies and the other takes over."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.redis.connection import RedisOptions
from adapters.redis.lease import RedisRelayLease
from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.event_log import SqliteEventLog
from domain.events import DomainEvent, channel_for
from domain.services.relay import EventRelay
from tests.integration.redis.conftest import open_bus
from tests.unit.domain.test_event_relay import _events

CHANNEL = channel_for("Tested")


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SqliteEventLog]:
    async with SqliteDatabase(tmp_path / "omnix.db", readers=2, timeout=5.0) as db:
        yield SqliteEventLog(db)


async def test_the_lease_is_a_compare_and_set_on_its_holder(redis_options: RedisOptions) -> None:
    async with open_bus(redis_options) as bus:
        lease = RedisRelayLease(bus.client, redis_options)
        assert await lease.position() is None
        assert await lease.acquire("a", ttl_seconds=5)
        assert not await lease.acquire("b", ttl_seconds=5)
        assert await lease.advance("a", 7, ttl_seconds=5)
        assert not await lease.advance("b", 9, ttl_seconds=5)
        assert await lease.position() == 7
        await lease.release("b")  # not the holder: nothing happens
        assert await lease.holder() == "a"
        await lease.release("a")
        assert await lease.acquire("b", ttl_seconds=0.1)
        await asyncio.sleep(0.2)
        assert await lease.acquire("a", ttl_seconds=5)  # b stopped renewing
        assert await lease.position() == 7


async def test_two_relays_deliver_each_event_once_across_a_takeover(
    redis_options: RedisOptions, log: SqliteEventLog
) -> None:
    async with (
        open_bus(redis_options) as bus_a,
        open_bus(redis_options) as bus_b,
        bus_b.subscribe(CHANNEL) as messages,
    ):
        lease_a = RedisRelayLease(bus_a.client, redis_options)
        lease_b = RedisRelayLease(bus_b.client, redis_options)
        relay_a = EventRelay(log, bus_a, lease=lease_a, holder="a", lease_seconds=0.5,
                             poll_interval=0.05)  # fmt: skip
        relay_b = EventRelay(log, bus_b, lease=lease_b, holder="b", lease_seconds=0.5,
                             poll_interval=0.05)  # fmt: skip
        await relay_a.start()
        await relay_b.start()
        task_a = asyncio.create_task(relay_a.run())
        await asyncio.sleep(0.1)  # a takes the lease first
        task_b = asyncio.create_task(relay_b.run())
        try:
            await log.append(_events(0, 5))
            received = [await _next_n(messages) for _ in range(5)]
            await _stop(task_a)  # dies without releasing the lease: b waits it out
            await log.append(_events(5, 5))
            received += [await _next_n(messages, timeout=5) for _ in range(5)]
            with pytest.raises(TimeoutError):
                await _next_n(messages, timeout=0.5)
        finally:
            await _stop(task_a)
            await _stop(task_b)
        assert received == list(range(10))
        assert (relay_a.takeovers, relay_b.takeovers) == (1, 1)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _next_n(messages: AsyncIterator[str], timeout: float = 2.0) -> int:
    async with asyncio.timeout(timeout):
        n = DomainEvent.from_json(await anext(messages)).payload["n"]
    assert isinstance(n, int)
    return n
