"""The composition root picks the cache and the bus by URL, and refuses what it cannot build."""

from __future__ import annotations

from dataclasses import replace

import pytest

from adapters.memory.bus import MemoryBus
from adapters.memory.cache import MemoryCache
from adapters.redis.cache import RedisCache
from schema.app import open_container
from schema.settings import Settings, SettingsError


async def test_the_default_cache_is_in_process(settings: Settings) -> None:
    async with open_container(settings) as container:
        assert isinstance(container.cache, MemoryCache)
        assert isinstance(container.bus, MemoryBus)


async def test_a_redis_cache_url_builds_a_redis_cache_without_connecting(
    settings: Settings,
) -> None:
    redis_settings = replace(settings, cache_url="redis://127.0.0.1:1/0?prefix=t:")
    async with open_container(redis_settings) as container:
        assert isinstance(container.cache, RedisCache)
        assert await container.cache.get("anything") is None  # unreachable: a miss, no error


@pytest.mark.parametrize(
    ("field", "url", "message"),
    [
        ("cache_url", "memcached://localhost", "OMNIX_CACHE"),
        ("cache_url", "redis://localhost/0?stream_maxlen=lots", "stream_maxlen"),
    ],
)
async def test_an_unsupported_url_is_a_settings_error(
    settings: Settings, field: str, url: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        async with open_container(replace(settings, **{field: url})):
            pass
