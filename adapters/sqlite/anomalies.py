"""Anomalies and insights in SQLite (tables of migration 6).

Each anomaly is inserted with ``ON CONFLICT DO NOTHING`` on its unique ``dedup_key``, and its
AnomalyDetected event goes into the ``events`` table in the same transaction (the outbox the
relay publishes from), so an anomaly is never stored without its event nor announced twice.
Positions are AUTOINCREMENT keys assigned by the single writer: a total order of acceptance in
which a reader never sees position n+1 before n, the cursor of ``after`` replays.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.sqlite.database import SqliteDatabase
from domain.anomalies import (
    Anomaly,
    AnomalyKind,
    Insight,
    Severity,
    anomaly_detected,
    insight_generated,
)
from domain.errors import ValidationError
from domain.pagination import Page, check_page_size, decode_cursor, encode_cursor
from domain.ports import AnomalyStore, InsightStore

_IDS = "SELECT value FROM json_each(?)"
_ANOMALY_COLUMNS = (
    "position, id, dedup_key, kind, severity, score, customer_id, subject, explanation, "
    "evidence, detected_at, source_event_id"
)
_INSERT_ANOMALY = (
    "INSERT INTO anomalies (id, dedup_key, kind, severity, score, customer_id, subject, "
    "explanation, evidence, detected_at, source_event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
_ANOMALY_BY_KEY = f"SELECT {_ANOMALY_COLUMNS} FROM anomalies WHERE dedup_key = ?"
_SAVE_STATE = (
    "INSERT INTO detector_state (name, body, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at"
)
_INSIGHT_COLUMNS = "position, id, customer_id, anomaly_id, text, created_at, model"
_INSERT_INSIGHT = (
    "INSERT INTO insights (id, customer_id, anomaly_id, text, created_at, model) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_INSIGHT_BY_ID = f"SELECT {_INSIGHT_COLUMNS} FROM insights WHERE id = ?"
_INSIGHT_BY_ANOMALY = f"SELECT {_INSIGHT_COLUMNS} FROM insights WHERE anomaly_id = ?"


def _utc(at: datetime) -> str:
    """Fixed-width UTC text, so text order is time order."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _anomaly(row: sqlite3.Row | tuple[Any, ...]) -> Anomaly:
    return Anomaly(
        position=int(row[0]),
        id=row[1],
        dedup_key=row[2],
        kind=AnomalyKind(row[3]),
        severity=Severity(row[4]),
        score=float(row[5]),
        customer_id=row[6],
        subject=row[7],
        explanation=row[8],
        evidence=json.loads(row[9]),
        detected_at=datetime.fromisoformat(row[10]),
        source_event_id=row[11],
    )


def _insight(row: sqlite3.Row | tuple[Any, ...]) -> Insight:
    return Insight(
        position=int(row[0]),
        id=row[1],
        customer_id=row[2],
        anomaly_id=row[3],
        text=row[4],
        created_at=datetime.fromisoformat(row[5]),
        model=row[6],
    )


def check_since(since: datetime | None) -> None:
    if since is not None and since.tzinfo is None:
        raise ValidationError("since needs a time zone", field="since")


def _position(cursor: str | None, kind: str) -> int | None:
    if cursor is None:
        return None
    value = decode_cursor(kind, cursor)
    if len(value) != 1 or not isinstance(value[0], int):
        raise ValidationError("malformed cursor", field="after", code="INVALID_CURSOR")
    return value[0]


class SqliteAnomalyStore(AnomalyStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def record(
        self, anomalies: Sequence[Anomaly], *, state: tuple[str, str] | None = None
    ) -> list[Anomaly]:
        if not anomalies and state is None:
            return []
        db = self._db

        def write(conn: sqlite3.Connection) -> list[Anomaly]:
            stored: list[Anomaly] = []
            for a in anomalies:
                cursor = conn.execute(
                    _INSERT_ANOMALY,
                    (
                        a.id, a.dedup_key, a.kind.value, int(a.severity), a.score, a.customer_id,
                        a.subject, a.explanation, json.dumps(a.evidence, separators=(",", ":")),
                        _utc(a.detected_at), a.source_event_id,
                    ),
                )  # fmt: skip
                row = conn.execute(_ANOMALY_BY_KEY, (a.dedup_key,)).fetchone()
                found = _anomaly(row)
                if cursor.rowcount == 1:
                    db.insert_events(conn, [anomaly_detected(found)])
                stored.append(found)
            if state is not None:
                conn.execute(_SAVE_STATE, (state[0], state[1], _utc(datetime.now(UTC))))
            return stored

        return await db.write(write)

    async def get_many(self, anomaly_ids: Sequence[str]) -> dict[str, Anomaly]:
        if not anomaly_ids:
            return {}
        rows = await self._db.fetch_all(
            f"SELECT {_ANOMALY_COLUMNS} FROM anomalies WHERE id IN ({_IDS})",
            (json.dumps(list(anomaly_ids)),),
        )
        return {row[1]: _anomaly(row) for row in rows}

    async def recent(
        self,
        *,
        first: int,
        after: str | None,
        min_severity: Severity | None,
        since: datetime | None,
    ) -> Page[Anomaly]:
        check_page_size(first)
        check_since(since)
        before = _position(after, "anomaly")
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if before is not None:
            where.append("position < ?")
            params.append(before)
        if min_severity is not None:
            where.append("severity >= ?")
            params.append(int(min_severity))
        if since is not None:
            where.append("detected_at >= ?")
            params.append(_utc(since))
        rows = await self._db.fetch_all(
            f"SELECT {_ANOMALY_COLUMNS} FROM anomalies WHERE {' AND '.join(where)} "
            "ORDER BY position DESC LIMIT ?",
            (*params, first + 1),
        )
        items = [_anomaly(r) for r in rows[:first]]
        end = encode_cursor("anomaly", [items[-1].position]) if items else None
        return Page(items, end, len(rows) > first)

    async def after(
        self,
        position: int,
        *,
        limit: int,
        min_severity: Severity | None = None,
        customer_id: str | None = None,
    ) -> list[Anomaly]:
        if limit < 1:
            return []
        where: list[str] = ["position > ?"]
        params: list[Any] = [position]
        if min_severity is not None:
            where.append("severity >= ?")
            params.append(int(min_severity))
        if customer_id is not None:
            where.append("customer_id = ?")
            params.append(customer_id)
        rows = await self._db.fetch_all(
            f"SELECT {_ANOMALY_COLUMNS} FROM anomalies WHERE {' AND '.join(where)} "
            "ORDER BY position LIMIT ?",
            (*params, limit),
        )
        return [_anomaly(r) for r in rows]

    async def load_state(self, name: str) -> str | None:
        row = await self._db.fetch_one("SELECT body FROM detector_state WHERE name = ?", (name,))
        return str(row[0]) if row is not None else None


class SqliteInsightStore(InsightStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def record(self, insights: Sequence[Insight]) -> list[Insight]:
        if not insights:
            return []
        db = self._db

        def write(conn: sqlite3.Connection) -> list[Insight]:
            stored: list[Insight] = []
            for i in insights:
                cursor = conn.execute(
                    _INSERT_INSIGHT,
                    (i.id, i.customer_id, i.anomaly_id, i.text, _utc(i.created_at), i.model),
                )
                row = conn.execute(_INSIGHT_BY_ID, (i.id,)).fetchone()
                if row is None and i.anomaly_id is not None:
                    row = conn.execute(_INSIGHT_BY_ANOMALY, (i.anomaly_id,)).fetchone()
                found = _insight(row)
                if cursor.rowcount == 1:
                    db.insert_events(conn, [insight_generated(found)])
                stored.append(found)
            return stored

        return await db.write(write)

    async def for_anomalies(self, anomaly_ids: Sequence[str]) -> dict[str, Insight]:
        if not anomaly_ids:
            return {}
        rows = await self._db.fetch_all(
            f"SELECT {_INSIGHT_COLUMNS} FROM insights WHERE anomaly_id IN ({_IDS})",
            (json.dumps(list(anomaly_ids)),),
        )
        return {row[3]: _insight(row) for row in rows}

    async def for_customer(
        self, customer_id: str, *, first: int, after: str | None
    ) -> Page[Insight]:
        check_page_size(first)
        before = _position(after, "insight")
        rows = await self._db.fetch_all(
            f"SELECT {_INSIGHT_COLUMNS} FROM insights WHERE customer_id = ? AND position < ? "
            "ORDER BY position DESC LIMIT ?",
            (customer_id, before if before is not None else 2**63 - 1, first + 1),
        )
        items = [_insight(r) for r in rows[:first]]
        end = encode_cursor("insight", [items[-1].position]) if items else None
        return Page(items, end, len(rows) > first)

    async def after(
        self, position: int, *, limit: int, customer_id: str | None = None
    ) -> list[Insight]:
        if limit < 1:
            return []
        params: tuple[Any, ...]
        if customer_id is None:
            sql, params = "position > ?", (position, limit)
        else:
            sql, params = "customer_id = ? AND position > ?", (customer_id, position, limit)
        rows = await self._db.fetch_all(
            f"SELECT {_INSIGHT_COLUMNS} FROM insights WHERE {sql} ORDER BY position LIMIT ?",
            params,
        )
        return [_insight(r) for r in rows]
