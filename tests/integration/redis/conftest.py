"""Redis adapters against the session's private redis-server. Each test gets its own key
prefix, so tests never see each other's keys, channels or streams."""

from __future__ import annotations

import uuid

import pytest

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
