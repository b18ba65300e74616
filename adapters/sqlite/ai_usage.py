"""AI usage in SQLite: one row per analyst call, summed per (UTC day, model) in SQL.

Cost is held as integer nano-dollars, so totals over millions of calls stay exact.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from adapters.sqlite.database import SqliteDatabase
from domain.analysis import NANO, AiUsage, AiUsageGroup, AiUsageTotals
from domain.ports import AiUsageStore

_INSERT = (
    "INSERT INTO ai_usage (id, occurred_at, day, customer_id, model, prompt_version, "
    "input_tokens, output_tokens, cost_nanousd, latency_ms, success, cached, fallback, error) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
_TOTALS = (
    "SELECT day, model, count(*), sum(1 - success), sum(cached), sum(fallback), "
    "sum(input_tokens), sum(output_tokens), sum(cost_nanousd), sum(latency_ms) "
    "FROM ai_usage WHERE occurred_at >= ? AND occurred_at < ? GROUP BY day, model "
    "ORDER BY day, model"
)
_EARLIEST = "0000"
_LATEST = "9999"


def _instant(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("AI usage times must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


class SqliteAiUsageStore(AiUsageStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def record(self, usage: AiUsage) -> None:
        """Insert the record; recording the same id twice keeps the first (a retried write)."""
        at = usage.occurred_at.astimezone(UTC)
        row = (
            usage.id,
            _instant(at),
            at.date().isoformat(),
            usage.customer_id,
            usage.model,
            usage.prompt_version,
            usage.input_tokens,
            usage.output_tokens,
            int(usage.cost_usd / NANO),
            usage.latency_ms,
            int(usage.success),
            int(usage.cached),
            int(usage.fallback),
            usage.error,
        )
        await self._db.write(lambda conn: conn.execute(_INSERT, row))

    async def totals(self, *, since: datetime | None, until: datetime | None) -> list[AiUsageGroup]:
        low = _instant(since) if since else _EARLIEST
        high = _instant(until) if until else _LATEST
        rows = await self._db.fetch_all(_TOTALS, (low, high))
        return [
            AiUsageGroup(
                day=date.fromisoformat(r[0]),
                model=r[1],
                totals=AiUsageTotals(
                    calls=r[2],
                    failures=r[3],
                    cached=r[4],
                    fallbacks=r[5],
                    input_tokens=r[6],
                    output_tokens=r[7],
                    cost_usd=Decimal(r[8]) * NANO,
                    latency_ms_total=float(r[9]),
                ),
            )
            for r in rows
        ]
