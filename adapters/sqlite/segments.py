"""Segments in SQLite (tables of migration 7): models by version, each customer's segment with
its behaviour (indexed by segment), migrations in time order and the latest KPI summary.

``apply`` checks, inside the write transaction, that each customer's stored assignment is still
the one the change replaces, then stores the assignment, its migration and its SegmentChanged
event together (the event log is the outbox), so a migration is never stored without its event
and two writers racing on one customer cannot both move them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.sqlite.database import SqliteDatabase
from domain.errors import ValidationError
from domain.pagination import Page, check_page_size, decode_cursor, encode_cursor
from domain.ports import SegmentStore
from domain.segments import (
    CustomerSegment,
    MigrationReason,
    SegmentChange,
    SegmentCode,
    SegmentMigration,
    SegmentModel,
    SegmentSummary,
)

_IDS = "SELECT value FROM json_each(?)"
_SAVE_MODEL = "INSERT OR REPLACE INTO segment_models (version, fitted_at, body) VALUES (?, ?, ?)"
_CURRENT_MODEL = "SELECT body FROM segment_models ORDER BY fitted_at DESC, version DESC LIMIT 1"
_SELECT = f"SELECT customer_id, body FROM customer_segments WHERE customer_id IN ({_IDS})"
_CURRENT = (
    f"SELECT customer_id, segment, assigned_at FROM customer_segments WHERE customer_id IN ({_IDS})"
)
_UPSERT = (
    "INSERT OR REPLACE INTO customer_segments (customer_id, segment, assigned_at, body) "
    "VALUES (?, ?, ?, ?)"
)
_INSERT_MIGRATION = (
    "INSERT OR IGNORE INTO segment_migrations "
    "(id, customer_id, from_segment, to_segment, at, reason, model_version) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_MIGRATION_COLUMNS = "id, customer_id, from_segment, to_segment, at, reason, model_version"
_SAVE_SUMMARY = "INSERT OR REPLACE INTO segment_summary (id, measured_at, body) VALUES (1, ?, ?)"


def iso(moment: datetime) -> str:
    """UTC with microseconds: fixed width, so text order is time order."""
    if moment.utcoffset() is None:
        raise ValueError(f"refusing to store a naive datetime: {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _migration(row: sqlite3.Row | tuple[Any, ...]) -> SegmentMigration:
    return SegmentMigration(
        id=row[0],
        customer_id=row[1],
        from_segment=SegmentCode(row[2]),
        to_segment=SegmentCode(row[3]),
        at=datetime.fromisoformat(row[4]),
        reason=MigrationReason(row[5]),
        model_version=row[6],
    )


def _cursor_position(kind: str, cursor: str) -> list[str]:
    position = decode_cursor(kind, cursor)
    if len(position) != 2 or not all(isinstance(part, str) for part in position):
        raise ValidationError("malformed cursor", field="after", code="INVALID_CURSOR")
    return position


def _page(fetched: list[Any], first: int, cursor: Any) -> Page[Any]:
    items = fetched[:first]
    return Page(
        items=items,
        end_cursor=cursor(items[-1]) if items else None,
        has_next_page=len(fetched) > first,
    )


class SqliteSegmentStore(SegmentStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def save_model(self, model: SegmentModel) -> None:
        row = (model.version, iso(model.fitted_at), model.to_json())
        await self._db.write(lambda conn: conn.execute(_SAVE_MODEL, row))

    async def current_model(self) -> SegmentModel | None:
        row = await self._db.fetch_one(_CURRENT_MODEL)
        return SegmentModel.from_json(row[0]) if row is not None else None

    async def get_many(self, customer_ids: Sequence[str]) -> dict[str, CustomerSegment]:
        if not customer_ids:
            return {}
        rows = await self._db.fetch_all(_SELECT, (json.dumps(list(customer_ids)),))
        found = {row[0]: CustomerSegment.from_json(row[0], row[1]) for row in rows}
        return {c: found[c] for c in customer_ids if c in found}

    async def scan(self, *, after: str | None, limit: int) -> Page[CustomerSegment]:
        params: list[Any] = []
        where = ""
        if after is not None:
            (after_id,) = decode_cursor("segments", after)
            where = " WHERE customer_id > ?"
            params.append(str(after_id))
        sql = f"SELECT customer_id, body FROM customer_segments{where} ORDER BY customer_id LIMIT ?"
        rows = await self._db.fetch_all(sql, (*params, limit + 1))
        records = [CustomerSegment.from_json(row[0], row[1]) for row in rows]
        return _page(
            records, limit, lambda r: encode_cursor("segments", [r.assignment.customer_id])
        )

    async def apply(self, changes: Sequence[SegmentChange]) -> list[SegmentChange]:
        if not changes:
            return []
        ids = json.dumps([c.record.assignment.customer_id for c in changes])

        def write(conn: sqlite3.Connection) -> list[SegmentChange]:
            current = {
                row[0]: (row[1], row[2]) for row in conn.execute(_CURRENT, (ids,)).fetchall()
            }
            applied: list[SegmentChange] = []
            for change in changes:
                a = change.record.assignment
                expected = change.expected
                stored = current.get(a.customer_id)
                wanted = (
                    None
                    if expected is None
                    else (expected.segment.value, iso(expected.assigned_at))
                )
                if stored != wanted:
                    continue
                conn.execute(
                    _UPSERT, (a.customer_id, a.segment.value, iso(a.assigned_at),
                              change.record.to_json()),
                )  # fmt: skip
                current[a.customer_id] = (a.segment.value, iso(a.assigned_at))
                if change.migration is not None:
                    m = change.migration
                    conn.execute(
                        _INSERT_MIGRATION,
                        (m.id, m.customer_id, m.from_segment.value, m.to_segment.value,
                         iso(m.at), m.reason.value, m.model_version),
                    )  # fmt: skip
                if change.event is not None:
                    self._db.insert_events(conn, (change.event,))
                applied.append(change)
            return applied

        return await self._db.write(write)

    async def migrations(
        self,
        *,
        first: int,
        after: str | None,
        from_segment: SegmentCode | None,
        to_segment: SegmentCode | None,
        since: datetime | None,
    ) -> Page[SegmentMigration]:
        check_page_size(first)
        conditions: list[str] = []
        params: list[Any] = []
        if after is not None:
            conditions.append("(at, id) > (?, ?)")
            params.extend(_cursor_position("migrations", after))
        if since is not None:
            conditions.append("at >= ?")
            params.append(iso(since))
        if from_segment is not None:
            conditions.append("from_segment = ?")
            params.append(from_segment.value)
        if to_segment is not None:
            conditions.append("to_segment = ?")
            params.append(to_segment.value)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT {_MIGRATION_COLUMNS} FROM segment_migrations{where} ORDER BY at, id LIMIT ?"
        rows = await self._db.fetch_all(sql, (*params, first + 1))
        return _page(
            [_migration(row) for row in rows],
            first,
            lambda m: encode_cursor("migrations", [iso(m.at), m.id]),
        )

    async def migration_counts(
        self, *, since: datetime | None, until: datetime | None
    ) -> dict[tuple[SegmentCode, SegmentCode], int]:
        conditions: list[str] = []
        params: list[Any] = []
        if since is not None:
            conditions.append("at >= ?")
            params.append(iso(since))
        if until is not None:
            conditions.append("at < ?")
            params.append(iso(until))
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = await self._db.fetch_all(
            f"SELECT from_segment, to_segment, count(*) FROM segment_migrations{where} "
            "GROUP BY from_segment, to_segment",
            params,
        )
        return {(SegmentCode(row[0]), SegmentCode(row[1])): int(row[2]) for row in rows}

    async def save_summary(self, summary: SegmentSummary) -> None:
        row = (iso(summary.measured_at), summary.to_json())
        await self._db.write(lambda conn: conn.execute(_SAVE_SUMMARY, row))

    async def summary(self) -> SegmentSummary | None:
        row = await self._db.fetch_one("SELECT body FROM segment_summary WHERE id = 1")
        return SegmentSummary.from_json(row[0]) if row is not None else None
