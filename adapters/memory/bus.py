"""The in-process bus: live fan-out between tasks of one process, no broker needed, with a
bounded history per channel for replay."""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from adapters.memory.fanout import Fanout, ListenerOverflowError, Messages
from domain.errors import ValidationError
from domain.ports import ReplayBus, Replayed, ReplayWindowExceededError

__all__ = ["ListenerOverflowError", "MemoryBus"]


@dataclass(slots=True)
class _History:
    entries: deque[tuple[int, str | None, str]]
    last: int = 0
    keys: dict[str, int] = field(default_factory=dict)


class MemoryBus(ReplayBus):
    """Fan-out to every listener subscribed at the moment of publishing, each with its own
    bounded queue of ``queue_size`` messages (see Fanout for what happens to a slow one).

    Each channel keeps its last ``history_size`` messages in a ring for ``read_since``. Cursors
    are ``<epoch>-<n>``: ``n`` counts the channel's messages and ``epoch`` is drawn when the bus
    is built, so a cursor from another process or an earlier run of this one is recognised as
    history this bus does not hold. A ``key`` is remembered while its message is in the ring.
    Leaving the ``subscribe`` context removes the listener; ``close`` ends every iterator once
    it has drained what it already holds.
    """

    def __init__(self, *, queue_size: int = 10_000, history_size: int = 1_000) -> None:
        if history_size < 1:
            raise ValueError(f"history_size must be at least 1, got {history_size}")
        self._fanout = Fanout(queue_size)
        self._history_size = history_size
        self._histories: dict[str, _History] = {}
        self._epoch = secrets.token_hex(6)

    async def publish(self, channel: str, message: str) -> None:
        await self.append(channel, message)

    async def append(self, channel: str, message: str, *, key: str | None = None) -> str:
        history = self._histories.get(channel)
        if history is None:
            history = self._histories[channel] = _History(deque())
        if key is not None and (seen := history.keys.get(key)) is not None:
            return self._cursor(seen)
        history.last += 1
        if len(history.entries) == self._history_size:
            _, dropped_key, _ = history.entries.popleft()
            if dropped_key is not None:
                history.keys.pop(dropped_key, None)
        history.entries.append((history.last, key, message))
        if key is not None:
            history.keys[key] = history.last
        cursor = self._cursor(history.last)
        self._fanout.offer(channel, Replayed(cursor, message))
        return cursor

    async def read_since(self, channel: str, cursor: str, *, limit: int) -> list[Replayed]:
        after = self._position(cursor)
        history = self._histories.get(channel)
        last = history.last if history is not None else 0
        if after > last:
            raise ValidationError(f"{cursor!r} is not a cursor of {channel!r}", field="cursor")
        if history is None or after == last:
            return []
        oldest = history.entries[0][0]
        if after < oldest - 1:
            raise ReplayWindowExceededError(
                f"messages {after + 1}..{oldest - 1} of {channel!r} are no longer held "
                f"(the history keeps {self._history_size})"
            )
        start = after - oldest + 1
        return [
            Replayed(self._cursor(n), message)
            for n, _, message in list(history.entries)[start : start + max(limit, 0)]
        ]

    async def latest(self, channel: str) -> str:
        history = self._histories.get(channel)
        return self._cursor(history.last if history is not None else 0)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        async with self.subscribe_with_cursors(channel) as listener:
            yield Messages(listener)

    @asynccontextmanager
    async def subscribe_with_cursors(self, channel: str) -> AsyncIterator[AsyncIterator[Replayed]]:
        listener = self._fanout.add(channel)
        try:
            yield listener
        finally:
            self._fanout.remove(channel, listener)

    def listener_counts(self) -> dict[str, int]:
        """Active listeners per channel; channels nobody listens to are absent."""
        return self._fanout.counts()

    async def close(self) -> None:
        self._fanout.close()

    def _cursor(self, n: int) -> str:
        return f"{self._epoch}-{n}"

    def _position(self, cursor: str) -> int:
        epoch, _, n = cursor.rpartition("-")
        if not epoch or not n.isdigit() or len(epoch) != len(self._epoch):
            raise ValidationError(f"{cursor!r} is not a replay cursor", field="cursor")
        if epoch != self._epoch:
            raise ReplayWindowExceededError(
                "the cursor comes from another process's or an earlier run's history"
            )
        return int(n)
