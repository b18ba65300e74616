"""Forecasts for a whole customer base from flat transaction arrays, and their accuracy.

One call runs every model the product has on rows cut at ``as_of``:

* the **consumption cycles** of each (customer, sku) pair (:mod:`domain.analytics.consumption`),
  when the rows name their skus;
* the **customer-level** models (:mod:`domain.analytics.btyd`): BG/NBD for P(alive) and the
  expected transactions over a horizon, Gamma-Gamma for the expected spend per transaction, the
  discounted CLV over the horizon, and a churn-risk band from P(alive) raised by overdue staples.

:func:`evaluate_forecasts` scores the same models against what happened in
``(as_of, holdout_end]``, each beside a naive baseline, so a user can check them on their own
data before trusting them.

Times are days since the Unix epoch in UTC (``floor`` of them is the calendar day); money is
integer cents in, float cents out (expectations, rounded only where displayed). Everything is
computed on whole arrays, so the same call serves ten customers or a million.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from domain.analytics.btyd import (
    BgNbdFit,
    GammaGammaFit,
    RfmSummary,
    conditional_expected_spend,
    conditional_expected_transactions,
    customer_lifetime_value,
    fit_bgnbd,
    fit_gamma_gamma,
    probability_alive,
    rfm_summary,
)
from domain.analytics.btyd import churn_risk as churn_risk_band
from domain.analytics.consumption import (
    ConsumptionCycles,
    CycleAccuracy,
    PopulationPriors,
    PurchaseLines,
    Status,
    evaluate_cycles,
    population_priors,
    predict_cycles,
)
from domain.errors import DomainError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

DEFAULT_HORIZON_DAYS = 365.0
DEFAULT_DISCOUNT_RATE = 0.10
TIME_UNIT_DAYS = 7.0
"""The BG/NBD time unit: a week, as in the paper, so fitted parameters compare with it."""

STAPLE_MIN_PURCHASES = 3
"""A pair is a *staple* once bought on this many days: two purchases of an impulse item are
not a habit, and an "overdue" impulse item says nothing about churn."""


class ForecastError(DomainError):
    """The data cannot support the models (too few customers or repeat purchases)."""

    code = "FORECAST_ERROR"


@dataclass(frozen=True, slots=True)
class Transactions:
    """Purchase rows as flat arrays, one entry per row, in any order.

    ``customer`` and ``sku`` are non-negative indexes (into the caller's own id lists),
    ``purchased_at`` days since the epoch (UTC), ``amount`` integer cents (a row may be a whole
    basket or one line of it: rows of a customer's day are summed). ``sku`` is optional; with it,
    ``quantity`` defaults to one unit a row, and ``sku_category`` (one entry per sku index) lets
    rarely bought skus borrow strength from their category rather than from the whole base.
    """

    customer: IntArray
    purchased_at: FloatArray
    amount: IntArray
    sku: IntArray | None = None
    quantity: IntArray | None = None
    sku_category: IntArray | None = None

    def __post_init__(self) -> None:
        n = len(self.customer)
        columns = [self.purchased_at, self.amount, self.sku, self.quantity]
        if any(c is not None and len(c) != n for c in columns):
            raise ValueError("every column must have one entry per row")
        if self.quantity is not None and self.sku is None:
            raise ValueError("quantity needs sku")
        if self.sku_category is not None and self.sku is None:
            raise ValueError("sku_category needs sku")
        if n and self.customer.min() < 0:
            raise ValueError("customer indexes must be non-negative")
        if n and self.sku is not None and self.sku.min() < 0:
            raise ValueError("sku indexes must be non-negative")
        if n and self.quantity is not None and self.quantity.min() < 1:
            raise ValueError("quantities must be at least 1")
        if n and not np.all(np.isfinite(self.purchased_at)):
            raise ValueError("purchased_at must be finite")
        if (
            n
            and self.sku is not None
            and self.sku_category is not None
            and self.sku.max() >= len(self.sku_category)
        ):
            raise ValueError("sku_category needs an entry for every sku index")

    def __len__(self) -> int:
        return len(self.customer)

    @property
    def has_skus(self) -> bool:
        return self.sku is not None

    def select(self, keep: npt.NDArray[np.bool_]) -> Transactions:
        """The rows where ``keep`` is true."""
        return Transactions(
            self.customer[keep],
            self.purchased_at[keep],
            self.amount[keep],
            None if self.sku is None else self.sku[keep],
            None if self.quantity is None else self.quantity[keep],
            self.sku_category,
        )


@dataclass(frozen=True, slots=True)
class Pairs:
    """The (customer, sku) pairs of the consumption model and their lines."""

    customer: IntArray  # by pair
    sku: IntArray  # by pair
    lines: PurchaseLines


@dataclass(frozen=True, slots=True)
class ConsumptionForecast:
    """Consumption cycles at ``as_of`` of every pair bought by then; arrays indexed by pair."""

    customer: IntArray
    sku: IntArray
    cycles: ConsumptionCycles
    probability_within_7d: FloatArray

    def __len__(self) -> int:
        return len(self.customer)


@dataclass(frozen=True, slots=True)
class CustomerForecasts:
    """One row per customer with a transaction by ``as_of``, ascending ``customer`` index.

    ``expected_transactions`` are over the horizon; ``expected_spend`` is per future
    transaction and ``clv`` the discounted spend over the horizon, both in float cents.
    ``churn_risk`` codes index :data:`domain.analytics.btyd.CHURN_RISK_BANDS`.
    ``overdue_staples`` counts the customer's OVERDUE or LAPSED staples (0 without skus).
    """

    customer: IntArray
    frequency: IntArray
    recency_days: FloatArray
    t_days: FloatArray
    p_alive: FloatArray
    expected_transactions: FloatArray
    expected_spend: FloatArray
    clv: FloatArray
    churn_risk: npt.NDArray[np.int8]
    overdue_staples: IntArray
    monetary: FloatArray  # mean repeat spend per transaction, cents (0 without repeats)

    def __len__(self) -> int:
        return len(self.customer)


@dataclass(frozen=True, slots=True)
class RowCounts:
    rows: int  # given
    used: int  # on or before as_of
    customers: int
    transactions: int  # distinct (customer, day)
    skus: int
    pairs: int


@dataclass(frozen=True, slots=True)
class FitSeconds:
    consumption: float
    bgnbd: float
    gamma_gamma: float
    predictions: float


@dataclass(frozen=True, slots=True)
class FittedModels:
    """The population-level fits a forecast applies: stored after a batch run, passed back to
    :func:`forecast` to predict a few customers exactly as the batch would, without refitting.
    ``consumption`` is indexed by the rows' sku indexes."""

    consumption: PopulationPriors | None
    bgnbd: BgNbdFit
    gamma_gamma: GammaGammaFit


@dataclass(frozen=True, slots=True)
class Forecast:
    """Everything :func:`forecast` computed, with the fitted models."""

    as_of: float
    horizon_days: float
    annual_discount_rate: float
    customers: CustomerForecasts
    consumption: ConsumptionForecast | None
    bgnbd: BgNbdFit
    gamma_gamma: GammaGammaFit
    seconds: FitSeconds
    rows: RowCounts
    consumption_priors: PopulationPriors | None = None


def _fit_bgnbd(rfm: RfmSummary) -> BgNbdFit:
    """BG/NBD on the customers the fit can learn from: one first seen at the very instant of
    as_of has T = 0 and tells it nothing."""
    informative = rfm.T > 0
    if informative.sum() < 2:
        raise ForecastError("the BG/NBD model needs at least two customers seen before as-of")
    return fit_bgnbd(
        rfm.frequency[informative],
        rfm.recency[informative],
        rfm.T[informative],
        time_unit_days=TIME_UNIT_DAYS,
    )


def forecast(
    transactions: Transactions,
    *,
    as_of: float,
    horizon_days: float = DEFAULT_HORIZON_DAYS,
    annual_discount_rate: float = DEFAULT_DISCOUNT_RATE,
    fitted: FittedModels | None = None,
) -> Forecast:
    """Fit every model on the rows up to ``as_of`` (inclusive) and forecast every customer and,
    when the rows name skus, every (customer, sku) pair. With ``fitted`` models nothing is
    fitted: the stored population levels are applied to these rows (the incremental update of a
    few customers after their purchases).

    CLV is the expected spend over the next ``horizon_days``, each month's share discounted at
    ``annual_discount_rate`` a year (0.10 = 10%; see
    :func:`domain.analytics.btyd.customer_lifetime_value`). Raises :class:`ForecastError` when
    the data cannot support the models.
    """
    if not horizon_days > 0:
        raise ValueError("horizon_days must be positive")
    if not annual_discount_rate > -1:
        raise ValueError("annual_discount_rate must be greater than -1")
    rows = transactions.select(transactions.purchased_at <= as_of)
    if not len(rows):
        raise ForecastError("no transactions on or before the as-of date")

    started = time.perf_counter()
    consumption: ConsumptionForecast | None = None
    priors: PopulationPriors | None = None
    if rows.has_skus:
        pairs = _pairs(rows)
        if fitted is not None and fitted.consumption is not None:
            priors = fitted.consumption
        else:
            priors = population_priors(pairs.lines, as_of)
        cycles = predict_cycles(pairs.lines, as_of, priors=priors)
        bought = cycles.purchases > 0
        consumption = ConsumptionForecast(
            customer=pairs.customer[bought],
            sku=pairs.sku[bought],
            cycles=_take(cycles, bought),
            probability_within_7d=cycles.probability_within(7.0)[bought],
        )
    consumption_seconds = time.perf_counter() - started

    rfm = rfm_summary(
        rows.customer, rows.purchased_at, rows.amount, as_of=as_of, time_unit_days=TIME_UNIT_DAYS
    )
    # Refunds can take a customer's mean repeat spend below zero; the spend model knows none.
    monetary = np.maximum(rfm.monetary_value, 0.0)
    started = time.perf_counter()
    bgnbd = fitted.bgnbd if fitted is not None else _fit_bgnbd(rfm)
    bgnbd_seconds = time.perf_counter() - started
    started = time.perf_counter()
    if fitted is not None:
        gamma_gamma = fitted.gamma_gamma
    else:
        if not np.any((rfm.frequency > 0) & (monetary > 0)):
            raise ForecastError(
                "the spend model needs customers who bought on at least two different days"
            )
        gamma_gamma = fit_gamma_gamma(rfm.frequency, monetary)
    gamma_gamma_seconds = time.perf_counter() - started
    if gamma_gamma.params.q <= 1:
        raise ForecastError(
            f"the spend model has no finite mean (q = {gamma_gamma.params.q:.3g} <= 1): "
            "spend per transaction is too heavy-tailed"
        )

    started = time.perf_counter()
    params = bgnbd.params
    p_alive = probability_alive(params, rfm.frequency, rfm.recency, rfm.T)
    expected = conditional_expected_transactions(
        params, horizon_days / TIME_UNIT_DAYS, rfm.frequency, rfm.recency, rfm.T
    )
    spend = conditional_expected_spend(gamma_gamma.params, rfm.frequency, monetary)
    clv = customer_lifetime_value(
        params,
        gamma_gamma.params,
        rfm.frequency,
        rfm.recency,
        rfm.T,
        monetary,
        horizon_days=horizon_days,
        annual_discount_rate=annual_discount_rate,
    )
    overdue = np.zeros(len(rfm), dtype=np.int64)
    if consumption is not None:
        overdue = _overdue_staples(consumption, rfm.customer_idx)
    customers = CustomerForecasts(
        customer=rfm.customer_idx,
        frequency=rfm.frequency,
        recency_days=rfm.recency * TIME_UNIT_DAYS,
        t_days=rfm.T * TIME_UNIT_DAYS,
        p_alive=p_alive,
        expected_transactions=expected,
        expected_spend=spend,
        clv=clv,
        churn_risk=churn_risk_band(p_alive, overdue if consumption is not None else None),
        overdue_staples=overdue,
        monetary=monetary,
    )
    predictions_seconds = time.perf_counter() - started

    return Forecast(
        as_of=float(as_of),
        horizon_days=float(horizon_days),
        annual_discount_rate=float(annual_discount_rate),
        customers=customers,
        consumption=consumption,
        bgnbd=bgnbd,
        gamma_gamma=gamma_gamma,
        seconds=FitSeconds(
            consumption_seconds, bgnbd_seconds, gamma_gamma_seconds, predictions_seconds
        ),
        rows=RowCounts(
            rows=len(transactions),
            used=len(rows),
            customers=len(rfm),
            transactions=int(len(rfm) + rfm.frequency.sum()),
            skus=0 if rows.sku is None else len(np.unique(rows.sku)),
            pairs=0 if consumption is None else len(consumption),
        ),
        consumption_priors=priors,
    )


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransactionAccuracy:
    """Customer-level accuracy over the holdout ``(as_of, holdout_end]``.

    ``customers`` are those with a transaction by ``as_of``; ``actual_total`` counts their
    transactions (distinct customer days not already in the calibration data) in the holdout.
    The naive baseline predicts each customer's repeat rate so far, ``frequency / T``, times the
    holdout length.
    """

    customers: int
    holdout_days: float
    actual_total: int
    predicted_total: float
    mae: float
    rmse: float
    naive_predicted_total: float
    naive_mae: float
    naive_rmse: float


@dataclass(frozen=True, slots=True)
class Evaluation:
    as_of: float
    holdout_end: float
    customers: TransactionAccuracy
    consumption: CycleAccuracy | None  # None when the rows name no skus


def evaluate_forecasts(
    transactions: Transactions, *, as_of: float, holdout_end: float
) -> Evaluation:
    """Fit on the rows up to ``as_of`` and score against those in ``(as_of, holdout_end]``:
    transactions per customer (BG/NBD beside the naive rate baseline) and, with skus, the next
    purchase date of each pair (:func:`domain.analytics.consumption.evaluate_cycles`). Rows after
    ``holdout_end`` are ignored."""
    if not holdout_end > as_of:
        raise ValueError("holdout_end must be after as_of")
    rows = transactions.select(transactions.purchased_at <= holdout_end)
    calibration = rows.select(rows.purchased_at <= as_of)
    if not len(calibration):
        raise ForecastError("no transactions on or before the as-of date")

    rfm = rfm_summary(
        calibration.customer,
        calibration.purchased_at,
        calibration.amount,
        as_of=as_of,
        time_unit_days=TIME_UNIT_DAYS,
    )
    fit = _fit_bgnbd(rfm)
    holdout_days = float(holdout_end - as_of)
    predicted = conditional_expected_transactions(
        fit.params, holdout_days / TIME_UNIT_DAYS, rfm.frequency, rfm.recency, rfm.T
    )
    actual = _holdout_transactions(rows, as_of, rfm.customer_idx)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(rfm.T > 0, rfm.frequency / rfm.T, 0.0) / TIME_UNIT_DAYS
    naive = rate * holdout_days

    consumption = None
    if rows.has_skus:
        consumption = evaluate_cycles(_pairs(rows).lines, as_of, holdout_end)
    return Evaluation(
        as_of=float(as_of),
        holdout_end=float(holdout_end),
        customers=TransactionAccuracy(
            customers=len(rfm),
            holdout_days=holdout_days,
            actual_total=int(actual.sum()),
            predicted_total=float(predicted.sum()),
            mae=_mae(predicted, actual),
            rmse=_rmse(predicted, actual),
            naive_predicted_total=float(naive.sum()),
            naive_mae=_mae(naive, actual),
            naive_rmse=_rmse(naive, actual),
        ),
        consumption=consumption,
    )


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _pairs(rows: Transactions) -> Pairs:
    """Number the (customer, sku) pairs of the rows and build the consumption model's lines."""
    assert rows.sku is not None
    n_skus = int(rows.sku.max()) + 1 if len(rows) else 0
    if rows.sku_category is not None:
        category_of_sku = rows.sku_category
        n_skus = max(n_skus, len(category_of_sku))
    else:
        category_of_sku = np.zeros(n_skus, dtype=np.int64)
    key = rows.customer.astype(np.int64) * max(n_skus, 1) + rows.sku
    pair_key, pair = np.unique(key, return_inverse=True)
    pair_sku = (pair_key % max(n_skus, 1)).astype(np.int64)
    quantity = rows.quantity if rows.quantity is not None else np.ones(len(rows), dtype=np.int64)
    return Pairs(
        customer=(pair_key // max(n_skus, 1)).astype(np.int64),
        sku=pair_sku,
        lines=PurchaseLines(
            pair=pair.astype(np.int64).reshape(-1),
            purchased_at=rows.purchased_at,
            quantity=quantity.astype(np.int64),
            pair_sku=pair_sku,
            pair_category=category_of_sku[pair_sku].astype(np.int64),
        ),
    )


def _take(cycles: ConsumptionCycles, keep: npt.NDArray[np.bool_]) -> ConsumptionCycles:
    return ConsumptionCycles(
        as_of=cycles.as_of,
        purchases=cycles.purchases[keep],
        intervals=cycles.intervals[keep],
        mean_interval_days=cycles.mean_interval_days[keep],
        units_per_day=cycles.units_per_day[keep],
        last_purchased_at=cycles.last_purchased_at[keep],
        last_quantity=cycles.last_quantity[keep],
        next_expected_at=cycles.next_expected_at[keep],
        window_low=cycles.window_low[keep],
        window_high=cycles.window_high[keep],
        status=cycles.status[keep],
        confidence=cycles.confidence[keep],
        log_days_per_unit=cycles.log_days_per_unit[keep],
        log_spread=cycles.log_spread[keep],
    )


def _overdue_staples(consumption: ConsumptionForecast, customers: IntArray) -> IntArray:
    """Per customer of ``customers`` (ascending): staples that are OVERDUE or LAPSED."""
    cycles = consumption.cycles
    late = (cycles.purchases >= STAPLE_MIN_PURCHASES) & (
        (cycles.status == Status.OVERDUE) | (cycles.status == Status.LAPSED)
    )
    position = np.searchsorted(customers, consumption.customer[late])
    return np.bincount(position, minlength=len(customers)).astype(np.int64)


def _holdout_transactions(rows: Transactions, as_of: float, customers: IntArray) -> IntArray:
    """Per customer of ``customers`` (ascending): distinct days with a purchase after ``as_of``,
    not counting a day already counted as a transaction before it."""
    day = np.floor(rows.purchased_at).astype(np.int64)
    day -= day.min()
    n_days = np.int64(day.max() + 1)
    key = rows.customer * n_days + day
    later = rows.purchased_at > as_of
    before = np.unique(key[~later])
    key = np.unique(key[later])
    key = key[~np.isin(key, before)]
    owner = key // n_days
    known = np.isin(owner, customers)
    position = np.searchsorted(customers, owner[known])
    return np.bincount(position, minlength=len(customers)).astype(np.int64)


def _mae(predicted: FloatArray, actual: IntArray) -> float:
    return float(np.mean(np.abs(predicted - actual))) if len(actual) else math.nan


def _rmse(predicted: FloatArray, actual: IntArray) -> float:
    return float(np.sqrt(np.mean((predicted - actual) ** 2))) if len(actual) else math.nan
