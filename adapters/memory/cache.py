"""The in-process cache: a bounded LRU of strings with a time to live per entry."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from domain.errors import ValidationError
from domain.ports import Cache


def check_ttl(ttl_seconds: float) -> None:
    """Reject a time to live no cache can honour (zero, negative, NaN or infinite)."""
    if not 0 < ttl_seconds < float("inf"):
        raise ValidationError(
            f"ttl_seconds must be a positive finite number, got {ttl_seconds!r}",
            field="ttl_seconds",
        )


class MemoryCache(Cache):
    """At most ``max_entries`` entries; setting one more evicts the least recently used.

    Expired entries read as misses and are dropped when met. ``clock`` is monotonic seconds.
    """

    def __init__(
        self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    async def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    async def set(self, key: str, value: str, *, ttl_seconds: float) -> None:
        check_ttl(ttl_seconds)
        now = self._clock()
        self._entries[key] = (now + ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            _, (expires_at, _) = self._entries.popitem(last=False)
            if expires_at > now:
                self.evictions += 1

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
