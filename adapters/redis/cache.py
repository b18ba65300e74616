"""The TTL cache on Redis: plain string keys under the configured prefix, expiring on Redis's
own clock (``SET ... PX``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapters.memory.cache import check_ttl
from adapters.redis.connection import RedisOptions, cancellable, open_client
from domain.ports import Cache

log = logging.getLogger(__name__)

T = TypeVar("T")


class RedisCache(Cache):
    """A cache that never fails its caller: when Redis cannot be reached or answers too slowly
    (``timeout`` seconds), a read is a miss and a write or delete is skipped. After a failure
    the cache stops asking Redis for ``retry_after`` seconds, so an outage costs each request
    nothing rather than a timeout. The first failure of an outage is logged as a warning and
    the recovery at info; ``errors`` and ``skipped`` count what the outage cost."""

    def __init__(
        self,
        options: RedisOptions,
        *,
        timeout: float = 0.25,
        retry_after: float = 1.0,
        max_connections: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._options = options
        self._prefix = f"{options.prefix}cache:"
        self._client: Redis = open_client(options, max_connections=max_connections, timeout=timeout)
        self._retry_after = retry_after
        self._clock = clock
        self._down_until: float | None = None
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self.skipped = 0

    async def get(self, key: str) -> str | None:
        value = await self._call("get", lambda: self._client.get(self._prefix + key), None)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        return str(value)

    async def set(self, key: str, value: str, *, ttl_seconds: float) -> None:
        check_ttl(ttl_seconds)
        milliseconds = max(1, round(ttl_seconds * 1000))
        await self._call(
            "set", lambda: self._client.set(self._prefix + key, value, px=milliseconds), None
        )

    async def delete(self, key: str) -> None:
        await self._call("delete", lambda: self._client.delete(self._prefix + key), None)

    async def close(self) -> None:
        await self._client.aclose()

    @property
    def available(self) -> bool:
        """False while the cache is skipping Redis after a failure."""
        return self._down_until is None

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]], fallback: T) -> T:
        if self._down_until is not None and self._clock() < self._down_until:
            self.skipped += 1
            return fallback
        try:
            result = await cancellable(call())
        except (RedisError, OSError) as e:
            self.errors += 1
            if self._down_until is None:
                log.warning(
                    "cache at %s unavailable (%s on %s: %s); reading misses and skipping "
                    "writes, retrying every %.1f s",
                    self._options.safe_url,
                    type(e).__name__,
                    operation,
                    e,
                    self._retry_after,
                )
            self._down_until = self._clock() + self._retry_after
            return fallback
        if self._down_until is not None:
            log.info("cache at %s is back", self._options.safe_url)
            self._down_until = None
        return result
