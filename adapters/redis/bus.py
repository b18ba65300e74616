"""The bus on Redis: pub/sub for live fan-out between processes, a Stream per channel for replay.

Keys (``P`` is the URL's ``prefix``, default ``omnix:``; ``{channel}`` is a hash tag, so one
channel's keys share a cluster slot):

- ``P bus:{channel}:stream``: the channel's history, ``XADD ... MAXLEN ~ stream_maxlen``; each
  entry has one field ``m``, the message.
- ``P bus:{channel}:epoch``: a random token drawn when the history starts. It is part of every
  cursor, so a cursor from before Redis lost its data reads as "window exceeded", not as a gap.
- ``P bus:{channel}:key:<key>``: the cursor of a message published with a dedupe ``key``,
  expiring after ``dedupe_seconds``.

Pub/sub channel ``P bus:<channel>`` carries ``<cursor>\\n<message>``. Appending to the stream,
recording the key and publishing happen in one Lua script, so a message is in the history if
and only if it was published, and a retried publish with the same key does nothing.

Cursors are ``<epoch>:<stream id>``. A cursor is still good when every entry after it is
held: its id is at least the stream's ``max-deleted-entry-id`` (Redis >= 7.0 keeps it) and its
epoch is the channel's current one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from adapters.memory.fanout import Fanout, Messages
from adapters.redis.connection import RedisOptions, call_redis, cancellable, open_client
from domain.errors import StoreUnavailableError, ValidationError
from domain.ports import ReplayBus, Replayed, ReplayWindowExceededError

log = logging.getLogger(__name__)

MIN_REDIS_VERSION = (7, 0)

_APPEND = """
if ARGV[5] == '1' then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {seen, 0} end
end
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[2], epoch)
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])
local cursor = epoch .. ':' .. id
if ARGV[5] == '1' then redis.call('SET', KEYS[3], cursor, 'PX', ARGV[6]) end
redis.call('PUBLISH', ARGV[4], cursor .. '\\n' .. ARGV[2])
return {cursor, 1}
"""

_STREAM_STATE = """
local function state()
  local s = {deleted = '0-0', last = '0-0', first = '', length = 0, added = 0}
  if redis.call('EXISTS', KEYS[1]) == 1 then
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    for i = 1, #info, 2 do
      local name, value = info[i], info[i + 1]
      if name == 'max-deleted-entry-id' then s.deleted = value end
      if name == 'last-generated-id' then s.last = value end
      if name == 'length' then s.length = value end
      if name == 'entries-added' then s.added = value end
      if name == 'first-entry' and value then s.first = value[1] end
    end
  end
  return s
end
"""

_READ = (
    _STREAM_STATE
    + """
local epoch = redis.call('GET', KEYS[2])
local s = state()
local entries = {}
if epoch and epoch == ARGV[1] then
  entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[2], '+', 'COUNT', ARGV[3])
end
return {epoch or '', s.deleted, s.last, s.first, s.length, s.added, entries}
"""
)

_LATEST = (
    _STREAM_STATE
    + """
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[2], epoch)
end
return epoch .. ':' .. state().last
"""
)


def _stream_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    if not (ms.isdigit() and seq.isdigit() and ms.isascii() and seq.isascii()):
        raise ValueError(text)
    return int(ms), int(seq)


@dataclass(eq=False)
class _Channel:
    """One channel's Redis subscription: ``ready`` once Redis has confirmed every SUBSCRIBE
    sent for it on the current connection."""

    ready: asyncio.Event = field(default_factory=asyncio.Event)
    pending: int = 0


class RedisBus(ReplayBus):
    """One pub/sub connection per process for every channel, fanned out in-process to each
    local subscriber's bounded queue; publishing and replay go over a small connection pool.

    When the pub/sub connection breaks (Redis restarted, network cut, or silent for two ping
    intervals) the bus reconnects with jittered exponential backoff and subscribes again to
    every channel that still has listeners. Subscribers see nothing of it but the messages
    published while the connection was down, which they can replay from the channel's history.
    ``publish`` and ``append`` raise StoreUnavailableError while Redis is unreachable.
    """

    def __init__(
        self,
        options: RedisOptions,
        *,
        queue_size: int = 10_000,
        pool_size: int = 8,
        timeout: float = 2.0,
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
        ping_interval: float = 5.0,
    ) -> None:
        self._options = options
        self._client: Redis = open_client(options, max_connections=pool_size, timeout=timeout)
        self._append = self._client.register_script(_APPEND)
        self._read = self._client.register_script(_READ)
        self._latest = self._client.register_script(_LATEST)
        self._fanout = Fanout(queue_size)
        self._channels: dict[str, _Channel] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._ping_interval = ping_interval
        self._wire_prefix = f"{options.prefix}bus:"
        self.published = 0
        self.duplicates = 0
        self.reconnects = 0
        # True while the pub/sub connection is up and Redis has confirmed every subscription.
        self.connected = False

    @property
    def client(self) -> Redis:
        """The publishing pool, for other adapters on the same Redis (the relay lease)."""
        return self._client

    # --- lifecycle ---

    async def open(self) -> None:
        """Check that Redis answers and is new enough, then start the subscriber connection.
        Raises StoreUnavailableError when it does not answer."""
        try:
            info = await cancellable(self._client.info("server"))
        except (RedisError, OSError) as e:
            raise StoreUnavailableError(
                f"Redis bus at {self._options.safe_url} is unreachable: {e}"
            ) from e
        version = tuple(int(p) for p in str(info.get("redis_version", "0.0")).split(".")[:2])
        if version < MIN_REDIS_VERSION:
            raise StoreUnavailableError(
                f"Redis at {self._options.safe_url} is {info.get('redis_version')}; the bus "
                "needs 7.0 or newer (streams record max-deleted-entry-id)"
            )
        self._reader = asyncio.create_task(self._read_forever(), name="redis-bus-subscriber")

    async def close(self) -> None:
        self._fanout.close()
        reader, self._reader = self._reader, None
        if reader is not None:
            # The loop also checks _fanout.closed, so it ends within a ping interval even if
            # redis-py loses the cancellation mid-read.
            reader.cancel()
            await asyncio.wait({reader}, timeout=self._ping_interval + 1)
        await self._client.aclose()

    # --- publishing and replay ---

    async def publish(self, channel: str, message: str) -> None:
        await self.append(channel, message)

    async def append(self, channel: str, message: str, *, key: str | None = None) -> str:
        keys = [
            self._key(channel, "stream"),
            self._key(channel, "epoch"),
            self._key(channel, f"key:{key or ''}"),
        ]
        args: list[str | int] = [
            self._options.stream_maxlen,
            message,
            secrets.token_hex(6),
            self._wire(channel),
            "1" if key is not None else "0",
            round(self._options.dedupe_seconds * 1000),
        ]
        cursor, fresh = await self._call("publish", self._append(keys=keys, args=args))
        if fresh:
            self.published += 1
        else:
            self.duplicates += 1
        return str(cursor)

    async def read_since(self, channel: str, cursor: str, *, limit: int) -> list[Replayed]:
        epoch, after = self._parse(cursor)
        keys = [self._key(channel, "stream"), self._key(channel, "epoch")]
        args: list[str | int] = [epoch, f"{after[0]}-{after[1]}", max(limit, 1)]
        current, deleted, last, first, length, added, entries = await self._call(
            "read", self._read(keys=keys, args=args)
        )
        if current == epoch and after > _stream_id(last):
            raise ValidationError(f"{cursor!r} is not a cursor of {channel!r}", field="cursor")
        if current != epoch or not _held(after, _stream_id(deleted), first, length, added, last):
            raise ReplayWindowExceededError(
                f"the history of {channel!r} no longer holds everything after this cursor "
                f"(it keeps about {self._options.stream_maxlen} messages)"
            )
        if limit < 1:
            return []
        return [Replayed(f"{epoch}:{entry_id}", _field(fields)) for entry_id, fields in entries]

    async def latest(self, channel: str) -> str:
        keys = [self._key(channel, "stream"), self._key(channel, "epoch")]
        cursor = await self._call("latest", self._latest(keys=keys, args=[secrets.token_hex(6)]))
        return str(cursor)

    # --- subscribing ---

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        async with self.subscribe_with_cursors(channel) as items:
            yield Messages(items)

    @asynccontextmanager
    async def subscribe_with_cursors(self, channel: str) -> AsyncIterator[AsyncIterator[Replayed]]:
        """Returns once Redis has confirmed the subscription (after the reconnection, when
        Redis is away), so everything published afterwards reaches the listener."""
        listener = self._fanout.add(channel)
        state = self._channels.get(channel)
        if state is None and not self._fanout.closed:
            state = self._channels[channel] = _Channel()
            await self._send_subscribe(channel, state)
        try:
            if state is not None:
                await state.ready.wait()
            yield listener
        finally:
            if self._fanout.remove(channel, listener) and self._channels.get(channel) is state:
                del self._channels[channel]
                await self._send_unsubscribe(channel)

    def listener_counts(self) -> dict[str, int]:
        """Active local listeners per channel; channels nobody listens to are absent."""
        return self._fanout.counts()

    def subscribed_channels(self) -> list[str]:
        """Channels this process holds a Redis subscription for."""
        return list(self._channels)

    async def _send_subscribe(self, channel: str, state: _Channel) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return  # the reader subscribes every live channel once it (re)connects
        state.pending += 1
        try:
            await cancellable(pubsub.subscribe(self._wire(channel)))
        except (RedisError, OSError) as e:
            log.debug("SUBSCRIBE %s not sent (%s); it is sent again on reconnect", channel, e)

    async def _send_unsubscribe(self, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return
        try:
            await cancellable(pubsub.unsubscribe(self._wire(channel)))
        except (RedisError, OSError) as e:
            log.debug("UNSUBSCRIBE %s not sent (%s); a reconnect drops it anyway", channel, e)

    async def _read_forever(self) -> None:
        failures = 0
        while not self._fanout.closed:
            pubsub = self._client.pubsub()
            try:
                await pubsub.ping()  # connects; the PONG comes back through _dispatch
                self._pubsub = pubsub
                channels = list(self._channels.items())
                for _, state in channels:
                    state.pending = 1
                if channels:
                    await pubsub.subscribe(*(self._wire(name) for name, _ in channels))
                self.connected = not channels
                if failures:
                    self.reconnects += 1
                    log.warning(
                        "Redis bus at %s reconnected after %d attempt(s); resubscribed to %d "
                        "channel(s)",
                        self._options.safe_url,
                        failures,
                        len(channels),
                    )
                failures = 0
                await self._dispatch(pubsub)
            except (RedisError, OSError) as e:
                failures += 1
                delay = random.uniform(0, min(self._backoff_cap, self._backoff_base * 2**failures))
                log.warning(
                    "Redis bus subscriber connection to %s lost (%s: %s); reconnecting in "
                    "%.2f s (attempt %d)",
                    self._options.safe_url,
                    type(e).__name__,
                    e,
                    delay,
                    failures,
                )
                self._disconnected()
                await _close_quietly(pubsub)
                await asyncio.sleep(delay)
            except BaseException:
                self._disconnected()
                await _close_quietly(pubsub)
                raise

    def _disconnected(self) -> None:
        self._pubsub = None
        self.connected = False
        for state in self._channels.values():
            state.pending = 0

    async def _dispatch(self, pubsub: PubSub) -> None:
        pinged_at: float | None = None
        while not self._fanout.closed:
            message = await pubsub.get_message(timeout=self._ping_interval)
            if message is None:
                if pinged_at is not None and time.monotonic() - pinged_at >= self._ping_interval:
                    raise ConnectionError("Redis did not answer PING on the pub/sub connection")
                if pinged_at is None:
                    pinged_at = time.monotonic()
                    await pubsub.ping()
                continue
            pinged_at = None
            kind = message.get("type")
            if kind == "message":
                self._deliver(str(message["channel"]), str(message["data"]))
            elif kind == "subscribe":
                state = self._channels.get(self._unwire(str(message["channel"])))
                if state is not None:
                    state.pending -= 1
                    if state.pending <= 0:
                        state.ready.set()
                self.connected = all(s.pending <= 0 for s in self._channels.values())

    def _deliver(self, wire_channel: str, data: str) -> None:
        cursor, separator, body = data.partition("\n")
        if not separator:
            log.warning("message without a cursor on %s dropped", wire_channel)
            return
        self._fanout.offer(self._unwire(wire_channel), Replayed(cursor, body))

    # --- names and errors ---

    def _key(self, channel: str, suffix: str) -> str:
        return f"{self._options.prefix}bus:{{{channel}}}:{suffix}"

    def _wire(self, channel: str) -> str:
        return self._wire_prefix + channel

    def _unwire(self, wire_channel: str) -> str:
        return wire_channel.removeprefix(self._wire_prefix)

    def _parse(self, cursor: str) -> tuple[str, tuple[int, int]]:
        epoch, separator, stream_id = cursor.partition(":")
        try:
            if not separator or not epoch:
                raise ValueError(cursor)
            return epoch, _stream_id(stream_id)
        except ValueError:
            raise ValidationError(f"{cursor!r} is not a replay cursor", field="cursor") from None

    async def _call(self, operation: str, call: Any) -> Any:
        return await call_redis(call, f"Redis bus {operation} at {self._options.safe_url}")


def _held(
    after: tuple[int, int],
    deleted: tuple[int, int],
    first: str,
    length: int,
    added: int,
    last: str,
) -> bool:
    """Whether every entry after ``after`` is still in the stream. Trimming removes entries
    from the oldest end and XDEL records the newest id it removed, so that holds when ``after``
    is no older than the oldest entry held and no newer entry was deleted. A cursor whose own
    entry was trimmed counts as out of the window even if its successor is still held."""
    if after < deleted:
        return False
    if after == (0, 0):
        return int(added) == int(length)
    if not first:
        return after == _stream_id(last)
    return after >= _stream_id(first)


def _field(fields: Any) -> str:
    if isinstance(fields, dict):
        return str(fields["m"])
    pairs = list(fields)
    return str(pairs[pairs.index("m") + 1])


async def _close_quietly(pubsub: PubSub) -> None:
    with contextlib.suppress(RedisError, OSError):
        await pubsub.aclose()  # type: ignore[no-untyped-call]
