"""Consumption cycles: when will this customer buy this product again?

A customer who buys a staple runs it down and comes back for more. The model follows each
(customer, sku) *pair* through its purchase events and learns how long one unit lasts.

**Events.** All lines of a pair on the same calendar day (UTC days since the epoch) form one
purchase event at the time of the day's first line, with the quantities summed.

**Time per unit.** For consecutive events the gap divided by the units bought at the earlier
event is one sample of *days per unit*: buying two packs predicts a gap about twice as long.
On the log scale, ``x = log(gap / quantity)`` is modelled as normal with a pair-specific mean
``mu`` and spread ``sigma``, so the next gap is log-normal:
``log(next gap) ~ Normal(mu + log(last quantity), sigma^2 + var(mu))``, where ``var(mu)`` is the
remaining uncertainty of ``mu`` itself.

**Borrowing strength (empirical Bayes).** Sparse histories lean on the population. For every
sku, and above it every category and the whole base, the method of moments gives the typical
pair mean (prior mean), the spread of pair means between customers (``tau^2``) and the pooled
spread within a pair (``sigma_w^2``); each level is shrunk toward the level above with
:data:`PRIOR_PAIRS` pseudo-pairs, so a rarely bought sku takes its category's figures. A pair
with ``n`` intervals then gets the precision-weighted combination

    ``mu = w * mean(x) + (1 - w) * prior mean``,  ``w = (n / sigma^2) / (n / sigma^2 + 1 / tau^2)``

so one interval (two purchases) already gives a usable estimate, pulled toward the sku's
population, and the weight grows toward 1 as intervals accumulate. The pair's own ``sigma^2``
is the pooled ``sigma_w^2`` updated with its squared deviations (:data:`PRIOR_DEGREES` degrees of
freedom of prior). A pair bought only once has no interval: it gets the population prior of its
sku, with confidence 0, so the product can still say "people usually rebuy this in about X days"
and filter such pairs out by confidence.

**Conditional prediction.** The prediction is conditional on the time already elapsed since the
last event, ``t``: given no purchase by ``t``, the ``p``-quantile of the gap ``G`` solves
``S(g) = (1 - p) * S(t)`` with ``S`` the log-normal survival function (computed in log space, so it
stays exact far in the tail). The next expected purchase is the conditional median and the 80%
window runs from the conditional 10th to the 90th percentile, so an overdue customer is never
predicted in the past. The probability of a purchase within ``N`` days is
``1 - S(t + N) / S(t)``.

**Status** (from the *unconditional* gap quantiles ``q10``, ``q90`` at the last quantity):

* ``LAPSED``: ``t > LAPSED_AFTER * q90``; the habit has most likely stopped;
* ``OVERDUE``: ``t > q90``;
* ``DUE_SOON``: ``t >= q10 - DUE_SOON_LEAD_DAYS``; the usual window has opened or opens within
  a day;
* ``ON_TRACK``: otherwise.

**Confidence** in [0, 1] is the weight ``w`` of the pair's own data (0 with no interval, toward 1
with many) times a regularity factor ``1 / (1 + (s / REGULAR_SIGMA)^2)`` of the predictive
log-spread ``s``: many intervals of a regular habit give a confident prediction.

Everything is computed on flat arrays for all pairs at once (sorting, ``bincount`` and ufuncs;
no Python loop over customers), so the same call serves one customer or a million.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt
from scipy import special

from domain.purchases import Purchase

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
StatusArray = npt.NDArray[np.int8]

SECONDS_PER_DAY = 86_400.0

MIN_GAP_DAYS = 0.25
"""Gaps shorter than this (two events either side of midnight) count as this long."""

PRIOR_PAIRS = 3.0
"""Pseudo-pairs with which a sku's (a category's) population figures are shrunk toward its
category's (the whole base's)."""

PRIOR_DEGREES = 4.0
"""Degrees of freedom of the pooled within-pair spread in a pair's own spread estimate."""

DEFAULT_SIGMA = 0.5
"""Within-pair log-spread used when no pair anywhere has two intervals (CV of about 50%)."""

DEFAULT_TAU = 0.6
"""Between-pair log-spread used when too few pairs have intervals to estimate it."""

MIN_TAU = 0.05
"""Floor of the between-pair log-spread: customers always differ a little."""

MIN_SIGMA = 0.05
"""Floor of a pair's log-spread: no habit is clockwork."""

WINDOW = (0.1, 0.9)
"""The prediction window: 10th to 90th percentile, an 80% interval."""

DUE_SOON_LEAD_DAYS = 1.0
"""A pair is DUE_SOON from this many days before its unconditional 10th percentile."""

LAPSED_AFTER = 2.0
"""A pair is LAPSED once the elapsed time exceeds this multiple of its unconditional 90th
percentile gap."""

REGULAR_SIGMA = 0.35
"""The predictive log-spread at which regularity halves the confidence (a CV of about 35%)."""


class Status(IntEnum):
    """Where a pair stands in its cycle at ``as_of``. ``NO_HISTORY``: never bought before it."""

    NO_HISTORY = -1
    ON_TRACK = 0
    DUE_SOON = 1
    OVERDUE = 2
    LAPSED = 3


@dataclass(frozen=True, slots=True)
class PurchaseLines:
    """Purchase lines as flat arrays, the input of :func:`predict_cycles`.

    ``pair``, ``purchased_at`` (days, e.g. since the epoch) and ``quantity`` (units, >= 1) have one
    entry per line, in any order. ``pair_sku`` and ``pair_category`` have one entry per pair,
    indexing the sku and the category the pair's population prior comes from.
    """

    pair: IntArray
    purchased_at: FloatArray
    quantity: IntArray
    pair_sku: IntArray
    pair_category: IntArray

    def __post_init__(self) -> None:
        n = len(self.pair)
        if len(self.purchased_at) != n or len(self.quantity) != n:
            raise ValueError("pair, purchased_at and quantity must have one entry per line")
        if len(self.pair_sku) != len(self.pair_category):
            raise ValueError("pair_sku and pair_category must have one entry per pair")
        if n and (self.pair.min() < 0 or self.pair.max() >= len(self.pair_sku)):
            raise ValueError("pair indexes must lie in 0 .. len(pair_sku) - 1")
        if n and self.quantity.min() < 1:
            raise ValueError("quantities must be at least 1")

    @property
    def n_pairs(self) -> int:
        return len(self.pair_sku)

    def select(self, keep: npt.NDArray[np.bool_]) -> PurchaseLines:
        """The same pairs with only the lines where ``keep`` is true."""
        return PurchaseLines(
            self.pair[keep],
            self.purchased_at[keep],
            self.quantity[keep],
            self.pair_sku,
            self.pair_category,
        )


@dataclass(frozen=True, slots=True)
class PairKeys:
    """What the pair, sku and category indexes of a :class:`PurchaseLines` stand for."""

    customer_ids: tuple[str, ...]  # by pair
    skus: tuple[str, ...]  # by pair
    categories: tuple[str, ...]  # by category index


@dataclass(frozen=True, slots=True)
class ConsumptionCycles:
    """The predicted cycle of every pair at ``as_of``; arrays indexed by pair.

    Times are in the days of the input. ``mean_interval_days`` is the expected gap at the pair's
    average quantity per purchase and ``units_per_day`` its reciprocal rate per unit;
    ``next_expected_at``, ``window_low`` and ``window_high`` are the conditional median, 10th and
    90th percentiles of the next purchase given none by ``as_of``. ``log_days_per_unit`` and
    ``log_spread`` define the fitted log-normal. Pairs with no purchase up to ``as_of`` hold NaN
    and ``Status.NO_HISTORY``.
    """

    as_of: float
    purchases: IntArray
    intervals: IntArray
    mean_interval_days: FloatArray
    units_per_day: FloatArray
    last_purchased_at: FloatArray
    last_quantity: IntArray
    next_expected_at: FloatArray
    window_low: FloatArray
    window_high: FloatArray
    status: StatusArray
    confidence: FloatArray
    log_days_per_unit: FloatArray
    log_spread: FloatArray

    def __len__(self) -> int:
        return len(self.purchases)

    def probability_within(self, days: float | FloatArray) -> FloatArray:
        """Probability of a purchase within ``days`` after ``as_of``, given none by then."""
        elapsed = self.as_of - self.last_purchased_at
        log_scale = self.log_days_per_unit + np.log(np.maximum(self.last_quantity, 1))
        with np.errstate(invalid="ignore"):
            now = _log_survival(elapsed, log_scale, self.log_spread)
            later = _log_survival(elapsed + np.asarray(days), log_scale, self.log_spread)
            p = -np.expm1(later - now)
        return np.asarray(np.clip(p, 0.0, 1.0), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class CycleAccuracy:
    """How well predictions at ``as_of`` matched the first purchase of each pair after it.

    ``pairs`` counts the pairs evaluated: bought at least ``min_purchases`` times up to
    ``as_of`` and again after it, up to the holdout end. ``naive_mae_days`` is the baseline
    "last purchase + the pair's mean observed interval", taken as it is even when that date has
    already passed (that is what the rule says); ``clipped_naive_mae_days`` moves such dates to
    ``as_of``, a stronger baseline reported beside it.
    """

    pairs: int
    mae_days: float
    naive_mae_days: float
    clipped_naive_mae_days: float
    coverage: float
    mean_window_days: float

    @property
    def mae_ratio(self) -> float:
        """Model MAE over naive MAE: below 1 the model wins."""
        return self.mae_days / self.naive_mae_days if self.naive_mae_days > 0 else math.nan


@dataclass(frozen=True, slots=True)
class PopulationPriors:
    """The fitted population level of the model: prior mean of log days per unit, between-pair
    variance ``tau2`` and pooled within-pair variance ``sigma2``, by sku index, by category index
    and for the whole base (one entry each). Stored with the model version, it lets one
    customer's pairs be predicted later exactly as in the batch fit, without refitting the base."""

    sku_mean: FloatArray
    sku_tau2: FloatArray
    sku_sigma2: FloatArray
    category_mean: FloatArray
    category_tau2: FloatArray
    category_sigma2: FloatArray
    base_mean: float
    base_tau2: float
    base_sigma2: float

    def _for_pairs(self, pair_sku: IntArray) -> _Prior:
        return _Prior(self.sku_mean[pair_sku], self.sku_tau2[pair_sku], self.sku_sigma2[pair_sku])


def population_priors(lines: PurchaseLines, as_of: float) -> PopulationPriors:
    """Fit the population level on the lines up to ``as_of``: the first half of
    :func:`predict_cycles`, to store and reuse."""
    n_pairs = lines.n_pairs
    stats = _pair_statistics(_Events.of(_up_to(lines, as_of), n_pairs), n_pairs)
    return _population_levels(stats, lines.pair_sku, lines.pair_category)


def predict_cycles(
    lines: PurchaseLines, as_of: float, *, priors: PopulationPriors | None = None
) -> ConsumptionCycles:
    """Predict every pair from the lines up to ``as_of`` (inclusive). Without ``priors`` the
    population level is fitted on these lines; with stored ones (indexed by the lines'
    ``pair_sku``) only the pairs' own histories are read, so one customer costs what their
    history costs."""
    n_pairs = lines.n_pairs
    stats = _pair_statistics(_Events.of(_up_to(lines, as_of), n_pairs), n_pairs)
    if priors is None:
        priors = _population_levels(stats, lines.pair_sku, lines.pair_category)
    prior = priors._for_pairs(lines.pair_sku)
    del priors
    purchases, intervals, mean_quantity = stats.purchases, stats.intervals, stats.mean_quantity
    last_at, last_quantity = stats.last_purchased_at, stats.last_quantity
    squares, mean_log = stats.squares, stats.mean_log
    del stats  # and with it the statistics not needed here

    # Per-pair intermediates are freed (or overwritten in place) as soon as they are used: on
    # millions of pairs each one is tens of megabytes.
    n = intervals.astype(np.float64)
    sigma2 = (squares + PRIOR_DEGREES * prior.sigma2) / (np.maximum(n - 1.0, 0.0) + PRIOR_DEGREES)
    del squares
    sigma2 = np.maximum(sigma2, MIN_SIGMA**2)
    data_precision = n / sigma2
    del n
    precision = data_precision + 1.0 / prior.tau2
    weight = data_precision / precision
    del data_precision
    own_mean = np.where(intervals > 0, mean_log, 0.0)
    mu = weight * own_mean + (1.0 - weight) * prior.mean
    del own_mean, mean_log, prior
    spread = np.sqrt(sigma2 + 1.0 / precision)
    del precision

    bought = purchases > 0
    log_scale = mu + np.log(np.maximum(last_quantity, 1))
    elapsed = np.maximum(as_of - last_at, 0.0)
    conditional = {p: _conditional_quantile(p, elapsed, log_scale, spread) for p in (0.5, *WINDOW)}
    for q in conditional.values():
        q += last_at
    status = _status(elapsed, log_scale, spread, bought)
    del elapsed, log_scale

    nan = np.where(bought, 1.0, np.nan)
    mean_days_per_unit = np.exp(mu + sigma2 / 2.0)
    del sigma2
    mean_interval_days = mean_days_per_unit * mean_quantity
    mean_interval_days *= nan
    del mean_quantity
    units_per_day = 1.0 / mean_days_per_unit
    units_per_day *= nan
    del mean_days_per_unit
    regularity = 1.0 / (1.0 + (spread / REGULAR_SIGMA) ** 2)
    confidence = np.where(bought, weight * regularity, 0.0)
    del regularity, weight, bought
    mu *= nan
    spread *= nan
    return ConsumptionCycles(
        as_of=float(as_of),
        purchases=purchases,
        intervals=intervals,
        mean_interval_days=mean_interval_days,
        units_per_day=units_per_day,
        last_purchased_at=last_at,
        last_quantity=last_quantity,
        next_expected_at=conditional[0.5],
        window_low=conditional[WINDOW[0]],
        window_high=conditional[WINDOW[1]],
        status=status,
        confidence=confidence,
        log_days_per_unit=mu,
        log_spread=spread,
    )


@dataclass(frozen=True, slots=True)
class CycleTiming:
    """Time-dependent readings of fitted pairs at ``as_of``: the conditional median and 80%
    window of the next purchase, the status, and the probability of a purchase within the given
    days; arrays by pair."""

    next_expected_at: FloatArray
    window_low: FloatArray
    window_high: FloatArray
    status: StatusArray
    probability_within: FloatArray


def cycle_timing(
    log_days_per_unit: npt.ArrayLike,
    log_spread: npt.ArrayLike,
    last_purchased_at: npt.ArrayLike,
    last_quantity: npt.ArrayLike,
    as_of: float,
    within_days: float | npt.ArrayLike = 7.0,
) -> CycleTiming:
    """Re-read stored pairs at a later ``as_of`` (no purchase since ``last_purchased_at``):
    what :func:`predict_cycles` would say now, without the history."""
    mu = np.asarray(log_days_per_unit, dtype=np.float64)
    spread = np.asarray(log_spread, dtype=np.float64)
    last_at = np.asarray(last_purchased_at, dtype=np.float64)
    log_scale = mu + np.log(np.maximum(np.asarray(last_quantity, dtype=np.float64), 1.0))
    elapsed = np.maximum(as_of - last_at, 0.0)
    median, low, high = (
        _conditional_quantile(p, elapsed, log_scale, spread) + last_at for p in (0.5, *WINDOW)
    )
    with np.errstate(invalid="ignore"):
        now = _log_survival(elapsed, log_scale, spread)
        later = _log_survival(
            elapsed + np.asarray(within_days, dtype=np.float64), log_scale, spread
        )
        p = np.clip(-np.expm1(later - now), 0.0, 1.0)
    status = _status(elapsed, log_scale, spread, np.isfinite(mu))
    return CycleTiming(median, low, high, status, np.asarray(p, dtype=np.float64))


def _up_to(lines: PurchaseLines, as_of: float) -> PurchaseLines:
    """The lines up to ``as_of`` (inclusive); ``lines`` itself, not a copy, when none is later."""
    keep = lines.purchased_at <= as_of
    return lines if keep.all() else lines.select(keep)


def _status(
    elapsed: FloatArray, log_scale: FloatArray, spread: FloatArray, bought: npt.NDArray[np.bool_]
) -> StatusArray:
    """Each pair's :class:`Status` from the unconditional gap quantiles at its last quantity."""
    status = np.full(len(elapsed), Status.ON_TRACK, dtype=np.int8)
    low = np.exp(log_scale + spread * special.ndtri(WINDOW[0]))
    status[elapsed >= low - DUE_SOON_LEAD_DAYS] = Status.DUE_SOON
    del low
    high = np.exp(log_scale + spread * special.ndtri(WINDOW[1]))
    status[elapsed > high] = Status.OVERDUE
    status[elapsed > LAPSED_AFTER * high] = Status.LAPSED
    status[~bought] = Status.NO_HISTORY
    return status


def evaluate_cycles(
    lines: PurchaseLines, as_of: float, holdout_end: float, *, min_purchases: int = 2
) -> CycleAccuracy:
    """Predict at ``as_of`` from the lines up to it and score against the first purchase of
    each pair in ``(as_of, holdout_end]``: next-date MAE in days beside the naive baseline,
    coverage of the 80% window and its mean width. The lines may run past ``holdout_end``."""
    cycles = predict_cycles(lines, as_of)
    after = (lines.purchased_at > as_of) & (lines.purchased_at <= holdout_end)
    first_after = np.full(lines.n_pairs, np.inf)
    np.minimum.at(first_after, lines.pair[after], lines.purchased_at[after])

    before = _Events.of(_up_to(lines, as_of), lines.n_pairs)
    stats = _pair_statistics(before, lines.n_pairs)
    scored = (cycles.purchases >= max(min_purchases, 2)) & np.isfinite(first_after)
    if not scored.any():
        return CycleAccuracy(0, math.nan, math.nan, math.nan, math.nan, math.nan)

    actual = first_after[scored]
    last = cycles.last_purchased_at[scored]
    naive = last + stats.mean_gap[scored]
    low, high = cycles.window_low[scored], cycles.window_high[scored]
    return CycleAccuracy(
        pairs=int(scored.sum()),
        mae_days=float(np.mean(np.abs(cycles.next_expected_at[scored] - actual))),
        naive_mae_days=float(np.mean(np.abs(naive - actual))),
        clipped_naive_mae_days=float(np.mean(np.abs(np.maximum(naive, as_of) - actual))),
        coverage=float(np.mean((actual >= low) & (actual <= high))),
        mean_window_days=float(np.mean(high - low)),
    )


def lines_from_purchases(
    purchases: Iterable[Purchase], category_of_sku: Mapping[str, str]
) -> tuple[PurchaseLines, PairKeys]:
    """Flatten purchases into :class:`PurchaseLines` (times in days since the epoch) and the keys
    the indexes stand for. Skus missing from ``category_of_sku`` share the category ``""``."""
    rows = [
        (p.customer_id, line.sku, p.purchased_at.timestamp(), line.quantity)
        for p in purchases
        for line in p.lines
    ]
    customer = np.array([r[0] for r in rows], dtype=object)
    sku = np.array([r[1] for r in rows], dtype=object)
    at = np.array([r[2] for r in rows], dtype=np.float64) / SECONDS_PER_DAY
    quantity = np.array([r[3] for r in rows], dtype=np.int64)

    customer_names, customer_code = np.unique(customer, return_inverse=True)
    sku_names, sku_code = np.unique(sku, return_inverse=True)
    pair_code, pair = np.unique(
        customer_code.astype(np.int64) * len(sku_names) + sku_code, return_inverse=True
    )
    pair_sku = pair_code % max(len(sku_names), 1)
    category_names, sku_category = np.unique(
        np.array([category_of_sku.get(s, "") for s in sku_names.tolist()], dtype=object),
        return_inverse=True,
    )
    pair_customer = pair_code // max(len(sku_names), 1)
    keys = PairKeys(
        customer_ids=tuple(str(c) for c in customer_names[pair_customer].tolist()),
        skus=tuple(str(s) for s in sku_names[pair_sku].tolist()),
        categories=tuple(str(c) for c in category_names.tolist()),
    )
    return (
        PurchaseLines(
            pair=pair.astype(np.int64).reshape(-1),
            purchased_at=at,
            quantity=quantity,
            pair_sku=pair_sku.astype(np.int64),
            pair_category=sku_category.astype(np.int64).reshape(-1)[pair_sku],
        ),
        keys,
    )


@dataclass(frozen=True, slots=True)
class _Events:
    """Purchase events (one per pair and day) sorted by pair, then time."""

    pair: IntArray
    at: FloatArray
    quantity: FloatArray

    @classmethod
    def of(cls, lines: PurchaseLines, n_pairs: int) -> _Events:
        if not len(lines.pair):
            return cls(lines.pair[:0], lines.purchased_at[:0], np.zeros(0))
        # One sort on a single integer key, (pair, day): an event is a run of equal keys, at
        # the time of its earliest line. Events come out by pair, then day, i.e. then time.
        day = np.floor(lines.purchased_at)
        first_day = float(day.min())
        n_days = int(day.max() - first_day) + 1
        if n_days * max(n_pairs, 1) >= 2**62:  # far beyond any real history; keep it exact
            return cls._by_lexsort(lines)
        day -= first_day
        key = lines.pair * n_days
        key += day.astype(np.int64)
        del day
        order = np.argsort(key)
        key = key[order]
        starts = np.empty(len(key), dtype=bool)
        starts[0] = True
        np.not_equal(key[1:], key[:-1], out=starts[1:])
        first = np.flatnonzero(starts)
        del starts
        pair = key[first] // n_days
        del key
        at = np.minimum.reduceat(lines.purchased_at[order], first)
        quantity = np.add.reduceat(lines.quantity[order], first).astype(np.float64)
        return cls(pair, at, quantity)

    @classmethod
    def _by_lexsort(cls, lines: PurchaseLines) -> _Events:
        order = np.lexsort((lines.purchased_at, lines.pair))
        pair, at = lines.pair[order], lines.purchased_at[order]
        day = np.floor(at)
        starts = np.ones(len(pair), dtype=bool)
        starts[1:] = (pair[1:] != pair[:-1]) | (day[1:] != day[:-1])
        first = np.flatnonzero(starts)
        quantity = np.add.reduceat(lines.quantity[order], first).astype(np.float64)
        return cls(pair[first], at[first], quantity)


@dataclass(frozen=True, slots=True)
class _PairStatistics:
    purchases: IntArray
    intervals: IntArray
    mean_log: FloatArray  # mean log days per unit (NaN without an interval)
    squares: FloatArray  # sum of squared deviations from it
    mean_gap: FloatArray  # mean days between events (NaN without an interval)
    mean_quantity: FloatArray
    last_purchased_at: FloatArray
    last_quantity: IntArray


def _pair_statistics(events: _Events, n_pairs: int) -> _PairStatistics:
    purchases = np.bincount(events.pair, minlength=n_pairs).astype(np.int64)
    same = events.pair[1:] == events.pair[:-1]
    of = events.pair[:-1][same]
    gap = np.diff(events.at)[same]
    np.maximum(gap, MIN_GAP_DAYS, out=gap)
    x = gap / events.quantity[:-1][same]
    np.log(x, out=x)
    intervals = np.bincount(of, minlength=n_pairs).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_log = np.bincount(of, weights=x, minlength=n_pairs) / intervals
        mean_gap = np.bincount(of, weights=gap, minlength=n_pairs) / intervals
        mean_quantity = np.bincount(events.pair, weights=events.quantity, minlength=n_pairs) / (
            purchases
        )
    del gap
    deviation = mean_log[of]
    np.subtract(x, deviation, out=deviation)
    del x
    deviation *= deviation
    squares = np.bincount(of, weights=deviation, minlength=n_pairs).astype(np.float64)
    del deviation, of

    last_at = np.full(n_pairs, np.nan)
    last_quantity = np.zeros(n_pairs, dtype=np.int64)
    is_last = np.ones(len(events.pair), dtype=bool)
    is_last[:-1] = ~same
    last_at[events.pair[is_last]] = events.at[is_last]
    last_quantity[events.pair[is_last]] = events.quantity[is_last].astype(np.int64)
    return _PairStatistics(
        purchases, intervals, mean_log, squares, mean_gap, mean_quantity, last_at, last_quantity
    )


@dataclass(frozen=True, slots=True)
class _Prior:
    """Per pair: the population's prior mean of log days per unit, the between-pair variance of
    pair means and the pooled within-pair variance of its sku."""

    mean: FloatArray
    tau2: FloatArray
    sigma2: FloatArray


def _population_levels(
    stats: _PairStatistics, sku: IntArray, category: IntArray
) -> PopulationPriors:
    """Empirical-Bayes priors: moments by sku, shrunk toward those by category, shrunk toward
    the whole base's."""
    fitted = stats.intervals > 0
    n = stats.intervals[fitted].astype(np.float64)
    means, squares = stats.mean_log[fitted], stats.squares[fitted]
    base = _moments(np.zeros(int(fitted.sum()), dtype=np.int64), 1, n, means, squares)
    base_mean = float(base.mean[0]) if base.pairs[0] > 0 else 0.0
    base_sigma2 = float(base.sigma2[0]) if base.dof[0] > 0 else DEFAULT_SIGMA**2
    base_tau2 = float(base.tau2[0]) if base.pairs[0] > 2 else DEFAULT_TAU**2
    top = _Prior(np.array([base_mean]), np.array([base_tau2]), np.array([base_sigma2]))

    n_categories = int(category.max()) + 1 if len(category) else 0
    category_of_sku = np.zeros(int(sku.max()) + 1 if len(sku) else 0, dtype=np.int64)
    category_of_sku[sku] = category
    by_category = _shrink(
        _moments(category[fitted], n_categories, n, means, squares),
        top,
        np.zeros(n_categories, dtype=np.int64),
    )
    by_sku = _shrink(
        _moments(sku[fitted], len(category_of_sku), n, means, squares),
        by_category,
        category_of_sku,
    )
    return PopulationPriors(
        sku_mean=by_sku.mean,
        sku_tau2=by_sku.tau2,
        sku_sigma2=by_sku.sigma2,
        category_mean=by_category.mean,
        category_tau2=by_category.tau2,
        category_sigma2=by_category.sigma2,
        base_mean=base_mean,
        base_tau2=base_tau2,
        base_sigma2=base_sigma2,
    )


@dataclass(frozen=True, slots=True)
class _Moments:
    pairs: FloatArray  # pairs with at least one interval
    dof: FloatArray  # sum over pairs of (intervals - 1)
    mean: FloatArray
    tau2: FloatArray
    sigma2: FloatArray


def _moments(
    group: IntArray, n_groups: int, n: FloatArray, means: FloatArray, squares: FloatArray
) -> _Moments:
    """Method-of-moments population figures of pair log means within each group."""
    pairs = np.bincount(group, minlength=n_groups).astype(np.float64)
    dof = np.bincount(group, weights=n - 1.0, minlength=n_groups).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma2 = np.bincount(group, weights=squares, minlength=n_groups) / dof
        mean = np.bincount(group, weights=means, minlength=n_groups) / pairs
        spread = np.bincount(group, weights=(means - mean[group]) ** 2, minlength=n_groups) / (
            pairs - 1.0
        )
        # The spread of pair means includes each pair's sampling noise, sigma^2 / n.
        noise = np.bincount(group, weights=1.0 / n, minlength=n_groups) / pairs
    tau2 = spread - np.where(np.isfinite(sigma2), sigma2, DEFAULT_SIGMA**2) * noise
    return _Moments(pairs, dof, mean, np.maximum(tau2, MIN_TAU**2), sigma2)


def _shrink(own: _Moments, parent: _Prior, parent_of: IntArray) -> _Prior:
    """Each group's figures, shrunk toward its parent's with PRIOR_PAIRS pseudo-pairs (the
    spreads by their own degrees of freedom); a group without data takes its parent's."""

    def blend(value: FloatArray, count: FloatArray, prior: FloatArray) -> FloatArray:
        known = np.isfinite(value) & (count > 0)
        value, count = np.where(known, value, 0.0), np.where(known, count, 0.0)
        return np.asarray((count * value + PRIOR_PAIRS * prior) / (count + PRIOR_PAIRS))

    return _Prior(
        mean=blend(own.mean, own.pairs, parent.mean[parent_of]),
        tau2=blend(own.tau2, own.pairs - 1.0, parent.tau2[parent_of]),
        sigma2=blend(own.sigma2, own.dof, parent.sigma2[parent_of]),
    )


def _log_survival(elapsed: FloatArray, log_scale: FloatArray, spread: FloatArray) -> FloatArray:
    """log P(gap > elapsed) under the log-normal; 0 for elapsed <= 0."""
    with np.errstate(divide="ignore"):
        z = (np.log(np.maximum(elapsed, 0.0)) - log_scale) / spread
    return np.asarray(special.log_ndtr(-z), dtype=np.float64)


def _conditional_quantile(
    p: float, elapsed: FloatArray, log_scale: FloatArray, spread: FloatArray
) -> FloatArray:
    """The ``p``-quantile of the gap given that it exceeds ``elapsed``: S(g) = (1 - p) S(t)."""
    with np.errstate(invalid="ignore"):
        log_s = math.log1p(-p) + _log_survival(elapsed, log_scale, spread)
        z = -special.ndtri_exp(log_s)
        return np.asarray(np.exp(log_scale + spread * z), dtype=np.float64)
