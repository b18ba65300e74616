"""The cache contract, run against RedisCache."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.redis.cache import RedisCache
from adapters.redis.connection import RedisOptions
from tests.contracts.cache import *  # noqa: F403


@pytest.fixture
async def cache(redis_options: RedisOptions) -> AsyncIterator[RedisCache]:
    cache = RedisCache(redis_options)
    yield cache
    await cache.close()
