"""The SQLite ``events`` table read as an outbox, for when the event log is a stream elsewhere.

The published mark is a position kept as an ``event_checkpoints`` row: everything up to it has
reached the stream. Marks that arrive out of order (an event the stream refused is still
pending before them) are held in memory until the gap closes, so this process does not publish
them again; after a restart they are published once more, which readers de-duplicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from adapters.sqlite.event_log import SqliteEventLog
from domain.events import DomainEvent
from domain.ports import Outbox

OUTBOX_CONSUMER = "outbox"


class SqliteOutbox(Outbox):
    def __init__(self, log: SqliteEventLog, *, consumer: str = OUTBOX_CONSUMER) -> None:
        self._log = log
        self._consumer = consumer
        self._marked_ahead: set[str] = set()
        self._lock = asyncio.Lock()

    async def pending(self, *, limit: int) -> list[DomainEvent]:
        if limit < 1:
            return []
        mark = await self._log.checkpoint(self._consumer)
        logged = await self._log.read(after=mark, limit=limit + len(self._marked_ahead))
        return [e.event for e in logged if e.event.id not in self._marked_ahead][:limit]

    async def mark_published(self, event_ids: Sequence[str]) -> None:
        async with self._lock:
            self._marked_ahead.update(event_ids)
            mark = start = await self._log.checkpoint(self._consumer)
            while self._marked_ahead:
                logged = await self._log.read(after=mark, limit=len(self._marked_ahead))
                for entry in logged:
                    if entry.event.id not in self._marked_ahead:
                        break
                    self._marked_ahead.discard(entry.event.id)
                    mark = entry.position
                else:
                    if logged:
                        continue
                break
            if mark != start:
                await self._log.save_checkpoint(self._consumer, mark)
