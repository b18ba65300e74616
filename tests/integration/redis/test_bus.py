"""What RedisBus promises beyond the contracts: one Redis connection and one subscription per
channel per process, delivery across processes, and surviving a Redis restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from adapters.redis.bus import RedisBus
from adapters.redis.connection import RedisOptions, parse_redis_url
from domain.errors import StoreUnavailableError
from tests.integration.redis.conftest import open_bus
from tests.servers import ServerProcess, free_port


@pytest.fixture
async def admin(redis: ServerProcess) -> AsyncIterator[Redis]:
    client = Redis(port=redis.port, decode_responses=True)
    yield client
    await client.aclose()


async def _next(messages: AsyncIterator[str], timeout: float = 5.0) -> str:
    async with asyncio.timeout(timeout):
        return await anext(messages)


async def _subscriptions(admin: Redis, bus_options: RedisOptions, channel: str) -> int:
    wire = f"{bus_options.prefix}bus:{channel}"
    counts = dict(await admin.pubsub_numsub(wire))
    return int(counts[wire])


async def test_one_redis_subscription_per_channel_however_many_listeners(
    redis_options: RedisOptions, admin: Redis
) -> None:
    async with open_bus(redis_options) as bus:
        async with bus.subscribe("c") as first, bus.subscribe("c") as second:
            async with bus.subscribe("other"):
                assert await _subscriptions(admin, redis_options, "c") == 1
                assert bus.subscribed_channels() == ["c", "other"]
                await bus.publish("c", "to both")
                assert await _next(first) == "to both"
                assert await _next(second) == "to both"
            assert bus.subscribed_channels() == ["c"]
        assert bus.subscribed_channels() == []
        await asyncio.sleep(0.05)  # UNSUBSCRIBE is processed by Redis after it is sent
        assert await _subscriptions(admin, redis_options, "c") == 0
        assert await _subscriptions(admin, redis_options, "other") == 0


async def test_all_channels_share_one_pubsub_connection(
    redis_options: RedisOptions, admin: Redis
) -> None:
    async with (
        open_bus(redis_options) as bus,
        bus.subscribe("x1"),
        bus.subscribe("x2"),
        bus.subscribe("x3"),
    ):
        subscribers = [c for c in await admin.client_list() if int(c["sub"]) > 0]
        assert [int(c["sub"]) for c in subscribers] == [3]


async def test_a_message_reaches_subscribers_of_another_process(
    redis_options: RedisOptions,
) -> None:
    async with (
        open_bus(redis_options) as a,
        open_bus(redis_options) as b,
        b.subscribe("shared") as on_b,
    ):
        cursor = await a.append("shared", "from a")
        assert await _next(on_b) == "from a"
        assert await b.latest("shared") == cursor


async def test_the_same_key_from_two_processes_is_delivered_once(
    redis_options: RedisOptions,
) -> None:
    async with open_bus(redis_options) as a, open_bus(redis_options) as b:
        async with a.subscribe("events") as messages:
            first = await a.append("events", "evt-1 body", key="evt-1")
            second = await b.append("events", "evt-1 body", key="evt-1")
            await b.append("events", "evt-2 body", key="evt-2")
            assert first == second
            assert await _next(messages) == "evt-1 body"
            assert await _next(messages) == "evt-2 body"
        assert (a.published, b.published, b.duplicates) == (1, 1, 1)


async def test_the_stream_stays_near_its_maxlen(redis_options: RedisOptions, admin: Redis) -> None:
    async with open_bus(redis_options, stream_maxlen=10) as bus:
        for n in range(500):
            await bus.publish("bounded", str(n))
    length = await admin.xlen(f"{redis_options.prefix}bus:{{bounded}}:stream")
    assert 10 <= length <= 110  # MAXLEN ~ trims whole nodes of 100 entries


async def test_an_unreachable_redis_fails_opening_and_publishing_loudly() -> None:
    bus = RedisBus(parse_redis_url(f"redis://127.0.0.1:{free_port()}/0"), timeout=0.5)
    with pytest.raises(StoreUnavailableError, match="unreachable"):
        await bus.open()
    with pytest.raises(StoreUnavailableError, match=r"publish at .* failed"):
        await bus.publish("c", "nobody")
    await bus.close()


async def test_subscribers_keep_receiving_after_redis_is_killed_and_restarted(
    redis: ServerProcess, redis_options: RedisOptions, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        open_bus(redis_options) as bus,
        bus.subscribe("live") as first,
        bus.subscribe("live") as second,
    ):
        await bus.publish("live", "before")
        assert await _next(first) == "before"
        assert await _next(second) == "before"

        redis.stop(kill=True)
        with pytest.raises(StoreUnavailableError):
            await bus.publish("live", "while down")
        redis.start()

        deadline = time.monotonic() + 15
        while not (bus.connected and bus.reconnects >= 1):
            assert time.monotonic() < deadline, "the bus did not reconnect"
            await asyncio.sleep(0.05)
        await bus.publish("live", "after")
        assert await _next(first) == "after"
        assert await _next(second) == "after"
    assert bus.reconnects >= 1
    assert any("reconnected" in r.getMessage() for r in caplog.records)


async def test_cancelling_a_publisher_mid_command_always_cancels_it(
    redis_options: RedisOptions,
) -> None:
    """redis-py can lose a cancellation that lands mid-command; the bus must not (a relay that
    ignored its cancellation would keep a shutting-down process alive)."""
    async with open_bus(redis_options) as bus:

        async def publish_forever() -> None:
            while True:
                await bus.append("c", "m", key=uuid.uuid4().hex)

        for n in range(100):
            task = asyncio.create_task(publish_forever())
            await asyncio.sleep(0.001 * (n % 7))
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=1)
            assert done, f"the publisher ignored its cancellation (attempt {n})"
