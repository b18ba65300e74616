"""Redis adapters against the session's private redis-server. Each test gets its own key
prefix, so tests never see each other's keys, channels or streams."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from adapters.redis.bus import RedisBus
from adapters.redis.connection import RedisOptions, parse_redis_url
from tests.servers import ServerProcess


def redis_url(server: ServerProcess, **query: str) -> str:
    url = f"redis://127.0.0.1:{server.port}/0"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


@pytest.fixture
def redis_options(redis: ServerProcess) -> RedisOptions:
    return parse_redis_url(redis_url(redis, prefix=f"test-{uuid.uuid4().hex[:12]}:"))


@asynccontextmanager
async def open_bus(options: RedisOptions, **changes: Any) -> AsyncIterator[RedisBus]:
    """A RedisBus on ``options`` (with ``changes`` to them), opened and closed around the test;
    fast backoff so fault tests do not wait long."""
    bus = RedisBus(replace(options, **changes), backoff_base=0.05, backoff_cap=0.5)
    await bus.open()
    try:
        yield bus
    finally:
        await bus.close()
