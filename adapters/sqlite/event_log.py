"""The event log in SQLite: the ``events`` table the stores write their outbox into.

Positions come from an AUTOINCREMENT key assigned by the single writer, and a transaction's
events become visible together, so a reader never sees position n+1 before position n.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.rows import EVENT_COLUMNS, logged_event_from_row
from domain.events import DomainEvent, LoggedEvent
from domain.ports import EventLog

_READ = f"SELECT {EVENT_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
_HEAD = "SELECT coalesce(max(position), 0) FROM events"
_CHECKPOINT = "SELECT position FROM event_checkpoints WHERE consumer = ?"
_SAVE_CHECKPOINT = (
    "INSERT INTO event_checkpoints (consumer, position) VALUES (?, ?) "
    "ON CONFLICT (consumer) DO UPDATE SET position = excluded.position"
)


class SqliteEventLog(EventLog):
    """Appending an event id that is already logged is a no-op. ``wait`` wakes as soon as this
    process commits new events and otherwise polls: it returns after ``timeout``, so events
    written by another process are seen on the caller's next read."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def append(self, events: Sequence[DomainEvent]) -> None:
        if events:
            await self._db.write(lambda conn: self._db.insert_events(conn, events))

    async def read(self, *, after: int, limit: int) -> list[LoggedEvent]:
        if limit < 1:
            return []
        rows = await self._db.fetch_all(_READ, (after, limit))
        return [logged_event_from_row(row) for row in rows]

    async def head(self) -> int:
        row = await self._db.fetch_one(_HEAD)
        return int(row[0]) if row is not None else 0

    async def wait(self, *, after: int, timeout: float) -> None:
        await self._db.wait_for_events(after=after, timeout=timeout)

    async def checkpoint(self, consumer: str) -> int:
        row = await self._db.fetch_one(_CHECKPOINT, (consumer,))
        return int(row[0]) if row is not None else 0

    async def save_checkpoint(self, consumer: str, position: int) -> None:
        await self._db.write(lambda conn: conn.execute(_SAVE_CHECKPOINT, (consumer, position)))
