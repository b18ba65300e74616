"""Redis URLs and clients.

A URL is what redis-py understands (``redis://``, ``rediss://``, ``unix://``, with ``db`` and
socket options in the query) plus OMNIX's own options, removed before redis-py sees the URL:

- ``prefix``: the start of every key this service writes (default ``omnix:``), so several
  deployments can share one Redis.
- ``stream_maxlen``: how many messages each channel's replay stream keeps, approximately
  (``XADD ... MAXLEN ~ N``; default 10000).
- ``dedupe_seconds``: how long a published message's key is remembered, so a retried publish
  is not delivered twice (default 600).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from domain.errors import StoreUnavailableError

T = TypeVar("T")

DEFAULT_PREFIX = "omnix:"
DEFAULT_STREAM_MAXLEN = 10_000
DEFAULT_DEDUPE_SECONDS = 600.0


class RedisUrlError(ValueError):
    """A Redis URL or one of its options is malformed."""


@dataclass(frozen=True, slots=True)
class RedisOptions:
    url: str
    prefix: str = DEFAULT_PREFIX
    stream_maxlen: int = DEFAULT_STREAM_MAXLEN
    dedupe_seconds: float = DEFAULT_DEDUPE_SECONDS

    @property
    def safe_url(self) -> str:
        """The URL without its password, for logs."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        if parts.username:
            host = f"{parts.username}:***@{host}"
        elif parts.password:
            host = f":***@{host}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_redis_url(url: str) -> RedisOptions:
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise RedisUrlError(f"not a Redis URL (redis://, rediss:// or unix://): {url!r}")
    own: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _OWN:
            own[name] = value
        else:
            rest.append((name, value))
    options = RedisOptions(url=urlunsplit(parts._replace(query=urlencode(rest))))
    if "prefix" in own:
        options = replace(options, prefix=own["prefix"])
    if "stream_maxlen" in own:
        options = replace(options, stream_maxlen=_number(own, "stream_maxlen", int, 1, 10**9))
    if "dedupe_seconds" in own:
        options = replace(
            options, dedupe_seconds=_number(own, "dedupe_seconds", float, 1.0, 7 * 86400.0)
        )
    return options


_OWN = frozenset({"prefix", "stream_maxlen", "dedupe_seconds"})


def _number(own: dict[str, str], name: str, kind: type[Any], low: float, high: float) -> Any:
    try:
        value = kind(own[name])
    except ValueError as e:
        raise RedisUrlError(f"Redis URL option {name} is not a number: {own[name]!r}") from e
    if not low <= value <= high:
        raise RedisUrlError(f"Redis URL option {name} must be between {low:g} and {high:g}")
    return value


def open_client(
    options: RedisOptions,
    *,
    max_connections: int,
    timeout: float,
) -> Redis:
    """A client over at most ``max_connections`` connections (a caller waits up to ``timeout``
    for a free one) whose calls fail after ``timeout`` seconds instead of retrying inside
    redis-py: each adapter decides what a failure means. Socket options given in the URL's
    query (``socket_timeout`` and the like) take precedence."""
    pool = BlockingConnectionPool.from_url(
        options.url,
        decode_responses=True,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    return Redis.from_pool(pool)


async def cancellable(call: Awaitable[T]) -> T:
    """Await a redis-py call so that cancelling the caller always cancels the caller.

    A cancellation that lands while redis-py is mid-command can be lost inside it (the command
    then completes and the caller carries on), which would leave a cancelled relay or request
    running. The call runs as its own task behind a shield: the caller gets CancelledError at
    once, and the command is cancelled too (its outcome, if it still completes, is dropped)."""
    task = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        raise


async def call_redis(call: Awaitable[T], what: str) -> T:
    """``cancellable(call)``, with Redis failures turned into StoreUnavailableError naming
    ``what`` failed (a retryable outage to the domain)."""
    try:
        return await cancellable(call)
    except (RedisError, OSError) as e:
        raise StoreUnavailableError(f"{what} failed: {type(e).__name__}: {e}") from e
