"""The bus and replay contracts, run against RedisBus on the session's redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from adapters.redis.bus import RedisBus
from adapters.redis.connection import RedisOptions
from tests.contracts.bus import *  # noqa: F403
from tests.contracts.replay import *  # noqa: F403
from tests.integration.redis.conftest import open_bus

STREAM_MAXLEN = 5


@pytest.fixture
async def bus(redis_options: RedisOptions) -> AsyncIterator[RedisBus]:
    async with open_bus(redis_options) as bus:
        yield bus


@pytest.fixture
async def replay_bus(redis_options: RedisOptions) -> AsyncIterator[RedisBus]:
    async with open_bus(redis_options, stream_maxlen=STREAM_MAXLEN) as bus:
        yield bus


@pytest.fixture
def overflow() -> int:
    """MAXLEN ~ trims whole stream nodes (100 entries by default), so well past one node."""
    return 350


@pytest.fixture
def listener_count(bus: RedisBus) -> Callable[[str], Awaitable[int]]:
    async def count(channel: str) -> int:
        return bus.listener_counts().get(channel, 0)

    return count
