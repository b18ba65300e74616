"""What MemoryCache promises beyond the Cache contract: a bounded size, least recently used
entries evicted first, expiry on its clock."""

from __future__ import annotations

from adapters.memory.cache import MemoryCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_least_recently_used_entry_goes_when_full() -> None:
    cache = MemoryCache(max_entries=2)
    await cache.set("a", "1", ttl_seconds=60)
    await cache.set("b", "2", ttl_seconds=60)
    assert await cache.get("a") == "1"  # a is now the most recently used

    await cache.set("c", "3", ttl_seconds=60)

    assert len(cache) == 2
    assert await cache.get("b") is None
    assert await cache.get("a") == "1"
    assert await cache.get("c") == "3"
    assert cache.evictions == 1


async def test_expiry_follows_the_clock_and_frees_the_entry() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.set("k", "v", ttl_seconds=10)
    clock.now += 9.9
    assert await cache.get("k") == "v"
    clock.now += 0.1
    assert await cache.get("k") is None
    assert len(cache) == 0
    assert (cache.hits, cache.misses) == (1, 1)


async def test_an_expired_entry_at_the_old_end_is_not_counted_as_an_eviction() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_entries=1, clock=clock)
    await cache.set("old", "v", ttl_seconds=1)
    clock.now += 2
    await cache.set("new", "v", ttl_seconds=1)
    assert cache.evictions == 0
    assert await cache.get("new") == "v"


async def test_size_stays_bounded_under_many_writes() -> None:
    cache = MemoryCache(max_entries=100)
    for n in range(10_000):
        await cache.set(f"k{n}", str(n), ttl_seconds=60)
    assert len(cache) == 100
    assert await cache.get("k9999") == "9999"
    assert await cache.get("k0") is None
