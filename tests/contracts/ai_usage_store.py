"""The AiUsageStore contract. Fixture: ``ai_usage_store``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.analysis import AiUsage, AiUsageSummary
from domain.ports import AiUsageStore

DAY_ONE = datetime(2026, 11, 21, 23, 30, tzinfo=UTC)


def _usage(n: int, at: datetime, model: str, **changes: object) -> AiUsage:
    values: dict[str, object] = {
        "id": f"aiu_{n}",
        "occurred_at": at,
        "customer_id": f"cus_{n}",
        "model": model,
        "prompt_version": "customer_analysis.v1",
        "input_tokens": 1000 + n,
        "output_tokens": 200,
        "cost_usd": Decimal("0.000500123"),
        "latency_ms": 100.0,
        "success": True,
        "cached": False,
        "fallback": False,
    }
    values.update(changes)
    return AiUsage(**values)  # type: ignore[arg-type]


async def test_totals_per_day_and_model_with_exact_cost(ai_usage_store: AiUsageStore) -> None:
    haiku, local = "anthropic.claude-3-haiku-20240307-v1:0", "omnix-local-statistics"
    records = [
        _usage(1, DAY_ONE, haiku),
        _usage(2, DAY_ONE + timedelta(minutes=10), haiku, success=False, error="THROTTLED"),
        _usage(3, DAY_ONE + timedelta(minutes=11), local, fallback=True, cost_usd=Decimal(0)),
        # 00:30 at UTC+02:00 is 22:30 UTC on day one
        _usage(4, datetime(2026, 11, 22, 0, 30, tzinfo=timezone(timedelta(hours=2))), haiku),
        _usage(5, DAY_ONE + timedelta(hours=1), haiku, cached=True, input_tokens=0),
    ]
    for r in records:
        await ai_usage_store.record(r)
    await ai_usage_store.record(records[0])  # a retried write is not counted twice

    groups = await ai_usage_store.totals(since=None, until=None)
    summary = AiUsageSummary.of(groups, None, None)
    assert summary.total.calls == 5
    assert summary.total.failures == 1
    assert summary.total.fallbacks == 1
    assert summary.total.cached == 1
    assert summary.total.cost_usd == Decimal("0.000500123") * 4
    assert summary.total.input_tokens == 1001 + 1002 + 1003 + 1004
    by_day = {d.isoformat(): t.calls for d, t in summary.by_day}
    assert by_day == {"2026-11-21": 4, "2026-11-22": 1}
    assert dict(summary.by_model)[local].calls == 1

    window = await ai_usage_store.totals(
        since=DAY_ONE + timedelta(minutes=10), until=DAY_ONE + timedelta(hours=1)
    )
    assert sum(g.totals.calls for g in window) == 2


async def test_empty_range(ai_usage_store: AiUsageStore) -> None:
    assert await ai_usage_store.totals(since=DAY_ONE, until=DAY_ONE + timedelta(days=1)) == []


async def test_naive_times_are_refused(ai_usage_store: AiUsageStore) -> None:
    with pytest.raises(ValueError, match="timezone"):
        await ai_usage_store.totals(since=DAY_ONE.replace(tzinfo=None), until=None)
