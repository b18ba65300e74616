"""The relay lease on Redis: which process publishes the event log onto the shared bus.

Keys (``P`` is the URL's ``prefix``): ``P relay:{name}:holder`` (the holder's id, expiring
after the lease's time to live) and ``P relay:{name}:position`` (the last event log position
the holder published). Both are read and written by Lua scripts, so recording a position is a
compare-and-set on the holder: a process that lost the lease cannot move the position.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from adapters.redis.connection import RedisOptions, call_redis
from domain.ports import RelayLease

_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_ADVANCE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisRelayLease(RelayLease):
    def __init__(self, client: Redis, options: RedisOptions, *, name: str = "bus") -> None:
        self._client = client
        self._options = options
        self._holder_key = f"{options.prefix}relay:{{{name}}}:holder"
        self._position_key = f"{options.prefix}relay:{{{name}}}:position"
        self._acquire = client.register_script(_ACQUIRE)
        self._advance = client.register_script(_ADVANCE)
        self._release = client.register_script(_RELEASE)

    async def acquire(self, holder: str, *, ttl_seconds: float) -> bool:
        args: list[str | int] = [holder, _milliseconds(ttl_seconds)]
        return bool(await self._call(self._acquire(keys=[self._holder_key], args=args)))

    async def position(self) -> int | None:
        value = await self._call(self._client.get(self._position_key))
        return None if value is None else int(value)

    async def advance(self, holder: str, position: int, *, ttl_seconds: float) -> bool:
        keys = [self._holder_key, self._position_key]
        args: list[str | int] = [holder, _milliseconds(ttl_seconds), position]
        return bool(await self._call(self._advance(keys=keys, args=args)))

    async def release(self, holder: str) -> None:
        await self._call(self._release(keys=[self._holder_key], args=[holder]))

    async def holder(self) -> str | None:
        """Who holds the lease now (for operators and tests)."""
        value = await self._call(self._client.get(self._holder_key))
        return None if value is None else str(value)

    async def _call(self, call: Any) -> Any:
        return await call_redis(call, f"relay lease at {self._options.safe_url}")


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))
