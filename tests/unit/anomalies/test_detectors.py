"""Labelled synthetic cases for each detector: it fires on its case and stays quiet on the
normal one beside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from domain.analytics.detectors import (
    SalesRateBaseline,
    StapleWindow,
    basket_spike,
    basket_spikes,
    burst,
    churn_risk,
    early_repurchase,
    overdue,
    segment_slide,
)
from domain.anomalies import AnomalyKind, Severity

T = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # a Monday
USUAL = [4200, 3900, 4600, 5100, 4000, 4400, 3700, 4800, 4300, 4100]


def staple(**kw: object) -> StapleWindow:
    last = T - timedelta(days=1)
    values: dict[str, object] = {
        "sku": "MILK", "purchases": 8, "confidence": 0.8, "last_purchased_at": last,
        "next_expected_at": last + timedelta(days=7), "window_low": last + timedelta(days=5),
        "window_high": last + timedelta(days=9),
    }  # fmt: skip
    values.update(kw)
    return StapleWindow(**values)  # type: ignore[arg-type]


def test_basket_spike_fires_on_twenty_times_the_usual_basket() -> None:
    found = basket_spike("cus_1", "pur_9", 20 * 4300, USUAL)

    assert found is not None
    assert found.kind is AnomalyKind.BASKET_SPIKE
    assert found.severity is Severity.CRITICAL
    assert found.evidence["ratio"] > 19
    assert found.dedup_key == "BASKET_SPIKE:cus_1:pur_9"


def test_basket_spike_is_quiet_on_a_large_but_ordinary_basket_and_a_short_history() -> None:
    assert basket_spike("cus_1", "pur_9", 7000, USUAL) is None
    assert basket_spike("cus_1", "pur_9", 20 * 4300, USUAL[:4]) is None


def test_one_earlier_spike_does_not_hide_the_next_and_rows_are_judged_apart() -> None:
    with_spike = [*USUAL, 90_000]
    assert basket_spike("cus_1", "pur_9", 90_000, with_spike) is not None
    history = np.array([USUAL, [np.nan] * 8 + [4000, 4000]], dtype=np.float64)
    fires, z, _ = basket_spikes(history, np.array([90_000.0, 90_000.0]))
    assert fires.tolist() == [True, False]  # the second customer has two baskets only
    assert z[0] > 40


def test_early_repurchase_fires_on_a_staple_bought_again_the_next_day() -> None:
    found = early_repurchase("cus_1", "pur_9", T, 2, staple())

    assert found is not None
    assert found.subject == "MILK"
    assert found.severity is Severity.MEDIUM
    assert found.evidence["daysEarly"] == 4.0


def test_early_repurchase_is_quiet_inside_the_window_and_on_non_staples() -> None:
    assert early_repurchase("cus_1", "pur_9", T + timedelta(days=3.5), 1, staple()) is None
    assert early_repurchase("cus_1", "pur_9", T, 1, staple(purchases=2)) is None


def test_overdue_fires_past_the_window_once_per_cycle() -> None:
    pattern = staple()
    assert overdue("cus_1", pattern, T + timedelta(days=5)) is None  # inside the window
    found = overdue("cus_1", pattern, T + timedelta(days=16))

    assert found is not None
    assert found.kind is AnomalyKind.OVERDUE
    assert found.severity is Severity.MEDIUM  # a gap past the window
    later = overdue("cus_1", pattern, T + timedelta(days=20))
    assert later is not None
    assert later.dedup_key == found.dedup_key


def test_churn_risk_fires_on_the_crossing_only() -> None:
    found = churn_risk("cus_1", 0.62, 0.05, anchor=T, clv_cents=52_000.0)

    assert found is not None
    assert found.severity is Severity.HIGH
    assert "0.62 to 0.05" in found.explanation
    assert churn_risk("cus_1", 0.62, 0.45, anchor=T) is None  # still above
    assert churn_risk("cus_1", 0.2, 0.1, anchor=T) is None  # was below already


def test_a_slide_into_at_risk_or_cant_lose_is_a_churn_risk() -> None:
    found = segment_slide("cus_1", "mig_1", "LOYAL", "CANT_LOSE")

    assert found is not None
    assert found.severity is Severity.HIGH
    assert segment_slide("cus_1", "mig_2", "AT_RISK", "CANT_LOSE") is None
    assert segment_slide("cus_1", "mig_3", "NEW", "LOYAL") is None


def test_burst_fires_on_a_run_of_purchases_minutes_apart() -> None:
    times = [T - timedelta(days=3), *(T + timedelta(minutes=3 * i) for i in range(5))]
    ids = [f"pur_{i}" for i in range(len(times))]
    found = burst("cus_1", ids, times)

    assert found is not None
    assert found.evidence["purchases"] == 5
    assert found.dedup_key == "BURST:cus_1:pur_1"


def test_burst_is_quiet_on_daily_shopping() -> None:
    times = [T + timedelta(days=i) for i in range(10)]
    assert burst("cus_1", [f"p{i}" for i in range(10)], times) is None


def _weeks(baseline: SalesRateBaseline, weeks: int, per_hour: int) -> None:
    """``weeks`` of Monday 10:00 hours with ``per_hour`` purchases at store_01."""
    n = 0
    for w in range(weeks):
        hour = T + timedelta(weeks=w)
        for i in range(per_hour):
            n += 1
            baseline.observe(f"evt_{n}", hour + timedelta(minutes=i % 60), ["store:store_01"])
        baseline.advance(hour + timedelta(hours=1))


def test_sales_rate_fires_when_an_hour_departs_from_its_baseline() -> None:
    baseline = SalesRateBaseline()
    _weeks(baseline, 4, 30)
    surge = T + timedelta(weeks=4)
    for i in range(120):
        baseline.observe(f"surge_{i}", surge + timedelta(seconds=20 * i), ["store:store_01"])
    found = baseline.advance(surge + timedelta(hours=1))

    assert [f.kind for f in found] == [AnomalyKind.SALES_RATE]
    assert found[0].subject == "store:store_01"
    assert found[0].evidence["count"] == 120


def test_sales_rate_is_quiet_on_a_usual_hour_and_counts_a_redelivery_once() -> None:
    baseline = SalesRateBaseline()
    _weeks(baseline, 4, 30)
    hour = T + timedelta(weeks=4)
    for i in range(31):
        baseline.observe(f"again_{i}", hour + timedelta(minutes=i), ["store:store_01"])
        baseline.observe(f"again_{i}", hour + timedelta(minutes=i), ["store:store_01"])
    assert baseline.advance(hour + timedelta(hours=1)) == []


def test_sales_rate_state_survives_a_restart() -> None:
    baseline = SalesRateBaseline()
    _weeks(baseline, 4, 30)
    restored = SalesRateBaseline.from_state(baseline.to_state())

    assert restored.keys == baseline.keys
    assert np.allclose(restored.mean, baseline.mean)
    assert restored.open_hour == baseline.open_hour
    hour = T + timedelta(weeks=4)
    restored.observe("x", hour, ["store:store_01"])
    assert restored.advance(hour + timedelta(hours=1))  # one purchase where ~30 are usual
