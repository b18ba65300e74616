"""What RedisCache promises beyond the contract: an unreachable Redis never fails the caller."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from adapters.redis.cache import RedisCache
from adapters.redis.connection import RedisOptions, parse_redis_url
from tests.servers import ServerProcess, free_port


async def test_an_unreachable_redis_reads_as_a_miss_and_skips_writes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = RedisCache(parse_redis_url(f"redis://127.0.0.1:{free_port()}/0"), retry_after=60)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="adapters.redis.cache"):
        await cache.set("k", "v", ttl_seconds=60)
        assert await cache.get("k") is None
        await cache.delete("k")
    assert time.monotonic() - started < 1.0
    assert (cache.errors, cache.skipped) == (1, 2)
    assert not cache.available
    assert [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    await cache.close()


async def test_the_cache_comes_back_with_redis(
    redis: ServerProcess, redis_options: RedisOptions
) -> None:
    cache = RedisCache(redis_options, retry_after=0.05)
    await cache.set("k", "before", ttl_seconds=60)
    redis.stop(kill=True)
    try:
        assert await cache.get("k") is None
        await cache.set("k", "during", ttl_seconds=60)
        assert cache.errors >= 1
    finally:
        redis.start()
    await asyncio.sleep(0.1)
    await cache.set("k", "after", ttl_seconds=60)
    assert await cache.get("k") == "after"
    assert cache.available
    await cache.close()
