"""The Cache contract. Fixture: ``cache``, an empty cache (keys unique to the test)."""

from __future__ import annotations

import asyncio
import math

import pytest

from domain.errors import ValidationError
from domain.ports import Cache


async def test_an_unknown_key_is_a_miss(cache: Cache) -> None:
    assert await cache.get("never-set") is None


async def test_a_value_reads_back_until_it_is_replaced(cache: Cache) -> None:
    await cache.set("k", "first", ttl_seconds=60)
    assert await cache.get("k") == "first"
    await cache.set("k", "second — ünïcode ✓", ttl_seconds=60)
    assert await cache.get("k") == "second — ünïcode ✓"


async def test_keys_are_independent(cache: Cache) -> None:
    await cache.set("a", "1", ttl_seconds=60)
    await cache.set("b", "2", ttl_seconds=60)
    await cache.delete("a")
    assert await cache.get("a") is None
    assert await cache.get("b") == "2"


async def test_deleting_a_missing_key_is_fine(cache: Cache) -> None:
    await cache.delete("never-set")
    assert await cache.get("never-set") is None


async def test_an_entry_expires_after_its_ttl(cache: Cache) -> None:
    await cache.set("short", "gone soon", ttl_seconds=0.15)
    await cache.set("long", "stays", ttl_seconds=60)
    assert await cache.get("short") == "gone soon"
    await asyncio.sleep(0.3)
    assert await cache.get("short") is None
    assert await cache.get("long") == "stays"


async def test_setting_again_restarts_the_ttl(cache: Cache) -> None:
    await cache.set("k", "old", ttl_seconds=0.15)
    await cache.set("k", "new", ttl_seconds=60)
    await asyncio.sleep(0.3)
    assert await cache.get("k") == "new"


@pytest.mark.parametrize("ttl", [0, -1, math.nan, math.inf])
async def test_a_ttl_that_cannot_be_honoured_is_rejected_and_changes_nothing(
    cache: Cache, ttl: float
) -> None:
    await cache.set("k", "kept", ttl_seconds=60)
    with pytest.raises(ValidationError) as raised:
        await cache.set("k", "replaced", ttl_seconds=ttl)
    assert raised.value.field == "ttl_seconds"
    assert await cache.get("k") == "kept"


async def test_a_large_value_round_trips(cache: Cache) -> None:
    value = "x" * 200_000
    await cache.set("big", value, ttl_seconds=60)
    assert await cache.get("big") == value
