from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest

from domain.analytics.btyd import HIGH_RISK_MAX_P_ALIVE, LOW_RISK_MIN_P_ALIVE
from domain.analytics.consumption import Status
from domain.demo import DemoData, generate
from domain.services.forecasting import (
    STAPLE_MIN_PURCHASES,
    Forecast,
    ForecastError,
    Transactions,
    evaluate_forecasts,
    forecast,
)

END = datetime(2026, 3, 14, 15, 30, tzinfo=UTC)
END_DAYS = END.timestamp() / 86_400
HOLDOUT_DAYS = 60.0
AS_OF = END_DAYS - HOLDOUT_DAYS


@dataclass(frozen=True)
class Demo:
    data: DemoData
    transactions: Transactions
    customer_ids: np.ndarray  # by customer index


@pytest.fixture(scope="module")
def demo() -> Demo:
    data = generate(as_of=END, n_customers=200, seed=42)
    category_of = {p.sku: p.category for p in data.products}
    rows = [
        (p.customer_id, p.purchased_at.timestamp() / 86_400, line.sku, line.quantity, line.amount)
        for p in data.purchases
        for line in p.lines
    ]
    ids, customer = np.unique([r[0] for r in rows], return_inverse=True)
    skus, sku = np.unique([r[2] for r in rows], return_inverse=True)
    _, sku_category = np.unique([category_of[s] for s in skus], return_inverse=True)
    transactions = Transactions(
        customer=customer.astype(np.int64),
        purchased_at=np.array([r[1] for r in rows]),
        amount=np.array([r[4] for r in rows], dtype=np.int64),
        sku=sku.astype(np.int64),
        quantity=np.array([r[3] for r in rows], dtype=np.int64),
        sku_category=sku_category.astype(np.int64),
    )
    return Demo(data, transactions, ids)


@pytest.fixture(scope="module")
def result(demo: Demo) -> Forecast:
    return forecast(demo.transactions, as_of=AS_OF)


def test_forecasts_every_customer_and_pair_with_sane_values(demo: Demo, result: Forecast) -> None:
    c = result.customers
    assert len(c) == result.rows.customers == 200
    assert np.all(np.diff(c.customer) > 0)
    for column in (c.frequency, c.recency_days, c.t_days, c.p_alive, c.clv, c.churn_risk):
        assert column.shape == (200,)
    assert np.all((c.p_alive >= 0) & (c.p_alive <= 1))
    assert np.all(c.clv >= 0)
    assert np.all(c.expected_spend > 0)
    assert np.all(c.expected_transactions >= 0)
    assert np.all((c.recency_days >= 0) & (c.recency_days <= c.t_days))
    assert result.rows.used == int(np.sum(demo.transactions.purchased_at <= AS_OF))
    assert result.rows.transactions == len(c) + int(c.frequency.sum())

    k = result.consumption
    assert k is not None
    assert len(k) == result.rows.pairs
    assert np.all(k.cycles.purchases >= 1)
    assert np.all(k.cycles.last_purchased_at <= AS_OF)
    assert np.all(k.cycles.next_expected_at >= AS_OF)
    assert np.all(k.cycles.window_low <= k.cycles.next_expected_at)
    assert np.all(k.cycles.next_expected_at <= k.cycles.window_high)
    assert np.all((k.probability_within_7d >= 0) & (k.probability_within_7d <= 1))
    assert not np.any(k.cycles.status == Status.NO_HISTORY)

    assert result.bgnbd.n_customers == 200
    assert all(v > 0 for v in (result.bgnbd.params.r, result.bgnbd.params.alpha))
    assert result.gamma_gamma.params.q > 1
    assert np.isfinite(result.bgnbd.log_likelihood)
    assert result.seconds.bgnbd >= 0


def test_churn_bands_follow_p_alive_raised_by_overdue_staples(demo: Demo, result: Forecast) -> None:
    c, k = result.customers, result.consumption
    assert k is not None

    late = (k.cycles.purchases >= STAPLE_MIN_PURCHASES) & np.isin(
        k.cycles.status, [Status.OVERDUE, Status.LAPSED]
    )
    expected_overdue = np.bincount(np.searchsorted(c.customer, k.customer[late]), minlength=len(c))
    np.testing.assert_array_equal(c.overdue_staples, expected_overdue)

    base = np.where(
        c.p_alive >= LOW_RISK_MIN_P_ALIVE, 0, np.where(c.p_alive < HIGH_RISK_MAX_P_ALIVE, 2, 1)
    )
    assert np.all(c.churn_risk >= base)
    assert np.all(c.churn_risk <= np.minimum(base + 1, 2))
    assert set(np.unique(c.churn_risk).tolist()) <= {0, 1, 2}

    lapsed = np.array([demo.data.habits[str(i)].lapsed_at is not None for i in demo.customer_ids])
    lapsed = lapsed[c.customer]
    assert lapsed.any()
    assert c.p_alive[lapsed].mean() < c.p_alive[~lapsed].mean()
    assert np.mean(c.churn_risk[lapsed] == 2) > np.mean(c.churn_risk[~lapsed] == 2)


def test_rows_after_as_of_change_nothing(demo: Demo, result: Forecast) -> None:
    tx = demo.transactions
    full = result
    cut = forecast(tx.select(tx.purchased_at <= AS_OF), as_of=AS_OF)

    np.testing.assert_array_equal(full.customers.p_alive, cut.customers.p_alive)
    np.testing.assert_array_equal(full.customers.clv, cut.customers.clv)
    assert full.rows.rows > cut.rows.rows == cut.rows.used == full.rows.used


def test_clv_grows_with_the_horizon_and_shrinks_with_the_discount_rate(
    demo: Demo, result: Forecast
) -> None:
    year = result.customers.clv
    undiscounted = forecast(demo.transactions, as_of=AS_OF, annual_discount_rate=0.0).customers.clv
    half_year = forecast(demo.transactions, as_of=AS_OF, horizon_days=182).customers.clv

    assert np.all(undiscounted >= year)
    assert np.all(half_year <= year)
    assert half_year.sum() < year.sum() < undiscounted.sum()


def test_without_skus_only_the_customer_models_run(demo: Demo, result: Forecast) -> None:
    tx = demo.transactions
    plain = forecast(Transactions(tx.customer, tx.purchased_at, tx.amount), as_of=AS_OF)

    assert plain.consumption is None
    assert plain.rows.pairs == plain.rows.skus == 0
    assert not plain.customers.overdue_staples.any()
    np.testing.assert_array_equal(plain.customers.p_alive, result.customers.p_alive)


def test_quantity_defaults_to_one_unit_a_row() -> None:
    # Two customers buying one sku every 7 days; the second also buys a second sku.
    days = np.arange(0.0, 70.0, 7.0) + 20_000.5
    tx = Transactions(
        customer=np.array([0] * 10 + [1] * 10 + [1] * 10, dtype=np.int64),
        purchased_at=np.concatenate([days, days + 1, days + 2]),
        amount=np.full(30, 500, dtype=np.int64),
        sku=np.array([0] * 20 + [1] * 10, dtype=np.int64),
    )
    result = forecast(tx, as_of=20_070.0)

    assert result.consumption is not None
    np.testing.assert_array_equal(result.consumption.customer, [0, 1, 1])
    np.testing.assert_array_equal(result.consumption.sku, [0, 0, 1])
    np.testing.assert_allclose(result.consumption.cycles.mean_interval_days, 7.0, rtol=0.1)
    np.testing.assert_allclose(result.consumption.cycles.units_per_day, 1 / 7.0, rtol=0.1)


def test_evaluation_beats_the_naive_baselines_on_demo_data(demo: Demo) -> None:
    result = evaluate_forecasts(demo.transactions, as_of=AS_OF, holdout_end=END_DAYS)
    c, k = result.customers, result.consumption
    assert k is not None
    print(
        f"\ncustomers={c.customers} holdout={c.holdout_days:g} days "
        f"actual={c.actual_total} predicted={c.predicted_total:.1f} "
        f"naive={c.naive_predicted_total:.1f}\n"
        f"  MAE {c.mae:.3f} (naive {c.naive_mae:.3f})  RMSE {c.rmse:.3f} "
        f"(naive {c.naive_rmse:.3f})\n"
        f"consumption pairs={k.pairs} MAE {k.mae_days:.2f} days (naive {k.naive_mae_days:.2f}, "
        f"ratio {k.mae_ratio:.3f}) coverage {k.coverage:.1%} width {k.mean_window_days:.1f} days"
    )

    assert c.customers == 200
    assert c.holdout_days == pytest.approx(HOLDOUT_DAYS)
    assert c.actual_total > 0
    assert abs(c.predicted_total - c.actual_total) < 0.1 * c.actual_total
    assert c.mae < c.naive_mae
    assert c.rmse < c.naive_rmse
    assert 0 < c.mae <= c.rmse
    assert k.pairs > 500
    assert k.mae_ratio <= 0.7
    assert 0.75 <= k.coverage <= 0.85
    assert k.mean_window_days > 0


def test_holdout_counts_only_new_transaction_days() -> None:
    # One customer: days 0, 10, 20 before as-of (20.5); later rows on day 20 (same day, after
    # as-of), 25 and 25 again, 30 -> two new transaction days.
    at = np.array([0.1, 10.1, 20.1, 20.9, 25.1, 25.6, 30.1, 99.0]) + 20_000
    n = len(at)
    tx = Transactions(
        customer=np.array([0] * n, dtype=np.int64),
        purchased_at=at,
        amount=np.full(n, 100, dtype=np.int64),
    )
    other = Transactions(
        customer=np.array([1, 1, 1], dtype=np.int64),
        purchased_at=np.array([3.2, 9.2, 14.2]) + 20_000,
        amount=np.array([200, 250, 300], dtype=np.int64),
    )
    both = Transactions(
        np.concatenate([tx.customer, other.customer]),
        np.concatenate([tx.purchased_at, other.purchased_at]),
        np.concatenate([tx.amount, other.amount]),
    )
    result = evaluate_forecasts(both, as_of=20_020.5, holdout_end=20_040.0)
    assert result.customers.actual_total == 2
    assert result.consumption is None


def test_bad_requests_are_refused(demo: Demo) -> None:
    with pytest.raises(ForecastError, match="no transactions on or before"):
        forecast(demo.transactions, as_of=float(demo.transactions.purchased_at.min()) - 1)
    with pytest.raises(ValueError, match="holdout_end must be after as_of"):
        evaluate_forecasts(demo.transactions, as_of=END_DAYS, holdout_end=AS_OF)
    with pytest.raises(ValueError, match="horizon_days"):
        forecast(demo.transactions, as_of=AS_OF, horizon_days=0)
    with pytest.raises(ValueError, match="quantities must be at least 1"):
        Transactions(
            np.zeros(1, np.int64), np.zeros(1), np.zeros(1, np.int64), np.zeros(1, np.int64),
            np.zeros(1, np.int64),
        )  # fmt: skip
    with pytest.raises(ValueError, match="quantity needs sku"):
        Transactions(
            np.zeros(1, np.int64), np.zeros(1), np.zeros(1, np.int64), quantity=np.ones(1, np.int64)
        )
    with pytest.raises(ValueError, match="one entry per row"):
        Transactions(np.zeros(2, np.int64), np.zeros(1), np.zeros(2, np.int64))
