"""Customer-level forecasts with the "buy 'til you die" (BTYD) models.

Three pieces, each vectorised over whole arrays of customers so the same call serves one customer
and a million:

* **RFM summary** (:func:`rfm_summary`): turns flat transaction arrays into the sufficient
  statistics the models need, per customer: frequency ``x`` (repeat transactions), recency ``t_x``
  (time of the last transaction, measured from the first) and age ``T`` (time from the first
  transaction to the cut-off), plus the mean spend of the repeat transactions.
* **BG/NBD** (Fader, Hardie & Lee 2005, "Counting your customers the easy way: an alternative to
  the Pareto/NBD model", *Marketing Science* 24(2)): how many transactions a customer will make and
  whether they are still active (:func:`fit_bgnbd`, :func:`probability_alive`,
  :func:`conditional_expected_transactions`, :func:`expected_transactions`).
* **Gamma-Gamma** (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves for customer base
  analysis", *Journal of Marketing Research* 42(4); Fader & Hardie 2013 note "The Gamma-Gamma model
  of monetary value"): how much a customer spends per transaction (:func:`fit_gamma_gamma`,
  :func:`conditional_expected_spend`).

They combine into a discounted customer lifetime value (:func:`customer_lifetime_value`) and a
churn-risk band (:func:`churn_risk`).

Time is measured in a *model time unit* of ``time_unit_days`` days (a week by default, as in the
BG/NBD paper); every rate and horizon of the BG/NBD model is in that unit, and the unit is stored
with the fitted parameters. Money comes in as integer cents; expectations of money come out as
float cents (an expectation is not a payable amount; round at the edge that displays it).

Validated against the paper's published parameters on the CDNOW sample
(r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, log-likelihood -9582.4, weeks) and by parameter
recovery on simulated data; see ``tests/unit/analytics/test_btyd.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.linalg import eigh_tridiagonal
from scipy.optimize import OptimizeResult, minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DAYS_PER_YEAR: Final = 365.25
DAYS_PER_MONTH: Final = DAYS_PER_YEAR / 12

# Log-parameters are kept in a box so a degenerate data set (nobody ever drops out, say) ends at
# a large but finite value instead of overflowing gammaln and friends.
_LOG_PARAM_BOUNDS: Final = (-12.0, 12.0)
# The conditional expectation divides by a - 1; within this distance of 1 we evaluate it at
# a = 1 + _A_NEAR_ONE instead, where the cancellation is still far below float64 noise.
_A_NEAR_ONE: Final = 1e-6
# scipy's hyp2f1 is accurate to 1e-8 against mpmath up to here on a wide grid of parameters and
# fails (inf, nan) only beyond it; larger z goes to the quadrature.
_HYP2F1_MAX_Z: Final = 0.9
_QUADRATURE_NODES: Final = 64
_SERIES_MAX_TERMS: Final = 4096
_SERIES_TOLERANCE: Final = 1e-15


# --------------------------------------------------------------------------------------------
# RFM summary
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RfmSummary:
    """Per-customer sufficient statistics, one row per customer with a transaction by ``as_of``.

    Attributes:
        customer_idx: the customer index as given to :func:`rfm_summary`, ascending.
        frequency: number of repeat transactions ``x`` (transactions after the first).
        recency: ``t_x``, time of the last transaction minus time of the first, in model time units
            (0 when ``frequency`` is 0).
        T: time from the first transaction to ``as_of``, in model time units.
        monetary_value: mean spend of the repeat transactions in cents (0 when ``frequency`` is 0);
            the first transaction is left out, as in the Gamma-Gamma literature, because it is
            often atypical (a sign-up basket) and is not part of the repeat-buying process.
        time_unit_days: length of one model time unit in days.
    """

    customer_idx: IntArray
    frequency: IntArray
    recency: FloatArray
    T: FloatArray
    monetary_value: FloatArray
    time_unit_days: float

    def __len__(self) -> int:
        return int(self.customer_idx.shape[0])


def rfm_summary(
    customer_idx: npt.ArrayLike,
    purchased_at_days: npt.ArrayLike,
    amount_cents: npt.ArrayLike,
    *,
    as_of: float,
    time_unit_days: float = 7.0,
) -> RfmSummary:
    """Summarise flat transaction arrays into frequency, recency, age and mean repeat spend.

    Args:
        customer_idx: integer customer index of each basket (any non-negative integers).
        purchased_at_days: time of each basket in days since a fixed epoch, in the shop's local
            time, so that ``floor`` of it is the local calendar day.
        amount_cents: amount of each basket in integer cents.
        as_of: the cut-off, in the same days-since-epoch scale; baskets after it are ignored, so
            one set of arrays can be cut at several dates.
        time_unit_days: length of the model time unit in days (7 for weeks).

    All baskets of a customer on the same calendar day count as **one transaction** whose amount is
    their sum, as the BTYD literature does: a second trip for a forgotten item is not a second
    purchase occasion. Transaction times are the calendar days (``floor(purchased_at_days)``), so
    ``recency`` is a whole number of days over ``time_unit_days`` and ``T = (as_of - first day) /
    time_unit_days``.
    """
    if not time_unit_days > 0:
        raise ValueError("time_unit_days must be positive")
    cust = np.asarray(customer_idx, dtype=np.int64)
    at = np.asarray(purchased_at_days, dtype=np.float64)
    amount = np.asarray(amount_cents, dtype=np.int64)
    if not (cust.ndim == at.ndim == amount.ndim == 1) or not (
        cust.shape == at.shape == amount.shape
    ):
        raise ValueError(
            "customer_idx, purchased_at_days and amount_cents must be 1-D, same length"
        )
    if not np.all(np.isfinite(at)):
        raise ValueError("purchased_at_days must be finite")
    keep = at <= as_of
    cust, at, amount = cust[keep], at[keep], amount[keep]
    day = np.floor(at).astype(np.int64)

    order = np.lexsort((day, cust))
    cust, day, amount = cust[order], day[order], amount[order]

    # One transaction per (customer, calendar day): starts of runs in the sorted order.
    new_txn = np.ones(cust.shape[0], dtype=bool)
    new_txn[1:] = (cust[1:] != cust[:-1]) | (day[1:] != day[:-1])
    txn_start = np.flatnonzero(new_txn)
    txn_cust = cust[txn_start]
    txn_day = day[txn_start]
    txn_amount = np.add.reduceat(amount, txn_start) if txn_start.size else amount[:0]

    new_cust = np.ones(txn_cust.shape[0], dtype=bool)
    new_cust[1:] = txn_cust[1:] != txn_cust[:-1]
    cust_start = np.flatnonzero(new_cust)
    last_txn = np.ones(txn_cust.shape[0], dtype=bool)
    last_txn[:-1] = new_cust[1:]
    cust_end = np.flatnonzero(last_txn)
    n_txn = cust_end - cust_start + 1

    frequency = (n_txn - 1).astype(np.int64)
    first_day = txn_day[cust_start].astype(np.float64)
    last_day = txn_day[cust_end].astype(np.float64)
    total = np.add.reduceat(txn_amount, cust_start) if cust_start.size else txn_amount[:0]
    repeat_total = (total - txn_amount[cust_start]).astype(np.float64)
    monetary = np.zeros(frequency.shape[0], dtype=np.float64)
    np.divide(repeat_total, frequency, out=monetary, where=frequency > 0)

    return RfmSummary(
        customer_idx=txn_cust[cust_start],
        frequency=frequency,
        recency=(last_day - first_day) / time_unit_days,
        T=(as_of - first_day) / time_unit_days,
        monetary_value=monetary,
        time_unit_days=float(time_unit_days),
    )


# --------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters; rates are per ``time_unit_days`` days.

    While active, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``
    (shape ``r``, rate ``alpha``, so the mean rate is ``r / alpha`` per time unit). After each
    repeat transaction they become inactive for good with probability ``p ~ Beta(a, b)``.
    """

    r: float
    alpha: float
    a: float
    b: float
    time_unit_days: float = 7.0


@dataclass(frozen=True)
class BgNbdFit:
    """A maximum-likelihood BG/NBD fit."""

    params: BgNbdParams
    log_likelihood: float
    iterations: int
    converged: bool
    n_customers: int


def _history(
    frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=np.float64)
    t_x = np.asarray(recency, dtype=np.float64)
    age = np.asarray(T, dtype=np.float64)
    x, t_x, age = np.broadcast_arrays(x, t_x, age)
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("frequency must be a non-negative whole number")
    if np.any(t_x < 0) or np.any(t_x > age * (1 + 1e-12)):
        raise ValueError("recency must lie in [0, T]")
    return x, t_x, age


@dataclass(frozen=True)
class _Frequencies:
    """Customers' frequencies as distinct values plus an index into them.

    Every gamma, beta and digamma function of the model depends on the customer only through
    ``x``, and a base of a million customers has a few hundred distinct frequencies: evaluating
    those functions once per distinct value and gathering is what makes a fit on a million
    customers take seconds.
    """

    values: FloatArray
    index: npt.NDArray[np.intp]

    @classmethod
    def of(cls, x: FloatArray) -> _Frequencies:
        values, index = np.unique(x, return_inverse=True)
        return cls(values=values, index=index.reshape(x.shape))


def _bgnbd_terms(
    r: float,
    alpha: float,
    a: float,
    b: float,
    freq: _Frequencies,
    t_x: FloatArray,
    age: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The log-likelihood as ``common + logaddexp(alive, dropped)``.

    ``alive`` is the log-weight of "still active at T"; ``dropped`` of "became inactive right after
    the last transaction at t_x", which is impossible (``-inf``) when ``x = 0``.
    """
    xv, i = freq.values, freq.index
    repeat = xv > 0
    common = gammaln(r + xv) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    beta_alive = betaln(a, b + xv)
    beta_dropped = np.where(repeat, betaln(a + 1, np.where(repeat, b + xv - 1, 1.0)), -np.inf)
    k = (r + xv)[i]
    alive = beta_alive[i] - k * np.log(alpha + age)
    dropped = beta_dropped[i] - k * np.log(alpha + t_x)
    return common[i], alive, dropped


def bgnbd_log_likelihood(
    params: BgNbdParams,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """Per-customer BG/NBD log-likelihood of ``(x, t_x, T)``.

    .. math::

        L = \\frac{B(a, b + x)}{B(a, b)} \\frac{\\Gamma(r + x)\\,\\alpha^r}{\\Gamma(r)\\,
            (\\alpha + T)^{r + x}}
          + \\delta_{x > 0} \\frac{B(a + 1, b + x - 1)}{B(a, b)}
            \\frac{\\Gamma(r + x)\\,\\alpha^r}{\\Gamma(r)\\,(\\alpha + t_x)^{r + x}}

    (equation 6 of the paper). It is evaluated in logs with ``gammaln``/``betaln`` and the two
    terms combined by ``logaddexp``, so large frequencies neither overflow nor lose the smaller
    term; for ``x = 0`` the second term is absent rather than evaluated at ``B(a + 1, b - 1)``.
    With a continuous ``t_x`` this is a density, so it can be positive.
    """
    x, t_x, age = _history(frequency, recency, T)
    common, alive, dropped = _bgnbd_terms(
        params.r, params.alpha, params.a, params.b, _Frequencies.of(x), t_x, age
    )
    return np.asarray(common + np.logaddexp(alive, dropped), dtype=np.float64)


def _bgnbd_objective(
    log_params: FloatArray,
    freq: _Frequencies,
    t_x: FloatArray,
    age: FloatArray,
    weight: FloatArray,
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood and its gradient with respect to the log-parameters."""
    r, alpha, a, b = (float(v) for v in np.exp(log_params))
    common, alive, dropped = _bgnbd_terms(r, alpha, a, b, freq, t_x, age)
    total = np.logaddexp(alive, dropped)
    ll = common + total
    # Posterior shares of the two terms (they sum to 1); w_dropped is exactly 0 when x = 0.
    w_alive = np.exp(alive - total)
    w_dropped = np.exp(dropped - total)

    xv, i = freq.values, freq.index
    b_x1 = np.where(xv > 0, b + xv - 1, 1.0)
    psi_abx = digamma(a + b + xv)
    k = (r + xv)[i]
    inv_t = 1.0 / (alpha + age)
    inv_tx = 1.0 / (alpha + t_x)
    d_r = (
        (digamma(r + xv) - digamma(r) + np.log(alpha))[i]
        + w_alive * np.log(inv_t)
        + w_dropped * np.log(inv_tx)
    )
    d_alpha = r / alpha - k * (w_alive * inv_t + w_dropped * inv_tx)
    d_a = (
        (digamma(a + b) - digamma(a))
        + w_alive * (digamma(a) - psi_abx)[i]
        + w_dropped * (digamma(a + 1) - psi_abx)[i]
    )
    d_b = (
        (digamma(a + b) - digamma(b))
        + w_alive * (digamma(b + xv) - psi_abx)[i]
        + w_dropped * (digamma(b_x1) - psi_abx)[i]
    )
    n = weight.sum()
    grad = np.array(
        [
            r * np.dot(weight, d_r),
            alpha * np.dot(weight, d_alpha),
            a * np.dot(weight, d_a),
            b * np.dot(weight, d_b),
        ]
    )
    return float(-np.dot(weight, ll) / n), np.asarray(-grad / n, dtype=np.float64)


CONVERGED_GRADIENT: Final = 1e-6
"""Largest projected gradient of a mean negative log-likelihood that counts as a stationary
point when L-BFGS-B stops on line-search precision rather than its own tolerances."""


def _converged(result: OptimizeResult) -> bool:
    """Whether an L-BFGS-B run over :data:`_LOG_PARAM_BOUNDS` ended at a stationary point.

    With tolerances near machine precision the line search can give up ("ABNORMAL") at the
    optimum itself; what matters is that the gradient, ignoring components pushing against a
    bound, has vanished."""
    if result.success:
        return True
    low, high = _LOG_PARAM_BOUNDS
    grad = np.asarray(result.jac, dtype=np.float64)
    at_low = (result.x <= low) & (grad > 0)
    at_high = (result.x >= high) & (grad < 0)
    free = grad[~(at_low | at_high)]
    return bool(
        np.all(np.isfinite(grad)) and np.max(np.abs(free), initial=0.0) < CONVERGED_GRADIENT
    )


def _unique_rows(
    x: FloatArray, t_x: FloatArray, age: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Distinct histories and their counts, when that saves work.

    Histories measured in whole days repeat a lot (everyone who bought once on the same day shares
    one); continuous simulated ones do not, and then the rows are returned as they are.
    """
    order = np.lexsort((age, t_x, x))
    xs, ts, ages = x[order], t_x[order], age[order]
    new = np.ones(xs.shape[0], dtype=bool)
    new[1:] = (xs[1:] != xs[:-1]) | (ts[1:] != ts[:-1]) | (ages[1:] != ages[:-1])
    starts = np.flatnonzero(new)
    if starts.size > 0.7 * xs.size:
        return x, t_x, age, np.ones(x.shape[0], dtype=np.float64)
    counts = np.diff(np.append(starts, xs.shape[0])).astype(np.float64)
    return xs[starts], ts[starts], ages[starts], counts


def fit_bgnbd(
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    time_unit_days: float = 7.0,
    initial: BgNbdParams | None = None,
    max_iterations: int = 1000,
) -> BgNbdFit:
    """Fit the BG/NBD model by maximum likelihood.

    ``recency`` and ``T`` are in model time units of ``time_unit_days`` days (as produced by
    :func:`rfm_summary`). The log-likelihood (:func:`bgnbd_log_likelihood`) is maximised over the
    logs of ``(r, alpha, a, b)``, which keeps them positive, with L-BFGS-B and the analytic gradient

    .. math::

        \\partial_r \\ell = \\psi(r + x) - \\psi(r) + \\ln\\alpha
            - w_1 \\ln(\\alpha + T) - w_2 \\ln(\\alpha + t_x), \\qquad
        \\partial_\\alpha \\ell = \\frac{r}{\\alpha} - (r + x)\\Big(\\frac{w_1}{\\alpha + T}
            + \\frac{w_2}{\\alpha + t_x}\\Big),

        \\partial_a \\ell = \\psi(a + b) - \\psi(a) + w_1(\\psi(a) - \\psi(a + b + x))
            + w_2(\\psi(a + 1) - \\psi(a + b + x)),

        \\partial_b \\ell = \\psi(a + b) - \\psi(b) + w_1(\\psi(b + x) - \\psi(a + b + x))
            + w_2(\\psi(b + x - 1) - \\psi(a + b + x)),

    where ``w_1, w_2`` are the shares of the two terms of the likelihood (``w_2 = 0`` for
    ``x = 0``). Identical histories are evaluated once and weighted by their count. The start is
    ``r = 1``, ``a = b = 1`` and ``alpha`` so that ``r / alpha`` is the pooled repeat rate
    ``sum(x) / sum(T)``, which puts the scale right whatever the time unit.
    """
    x, t_x, age = _history(frequency, recency, T)
    x, t_x, age = x.ravel(), t_x.ravel(), age.ravel()
    if x.size == 0:
        raise ValueError("cannot fit the BG/NBD model to no customers")
    if np.any(age <= 0):
        raise ValueError("T must be positive")
    ux, utx, uage, weight = _unique_rows(x, t_x, age)

    if initial is None:
        rate = max(float(x.sum()), 1.0) / float(age.sum())
        initial = BgNbdParams(r=1.0, alpha=1.0 / rate, a=1.0, b=1.0)
    start = np.log([initial.r, initial.alpha, initial.a, initial.b])
    start = np.clip(start, *_LOG_PARAM_BOUNDS)
    result = minimize(
        _bgnbd_objective,
        start,
        args=(_Frequencies.of(ux), utx, uage, weight),
        jac=True,
        method="L-BFGS-B",
        bounds=[_LOG_PARAM_BOUNDS] * 4,
        options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-9},
    )
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    ll = -float(result.fun) * float(weight.sum())
    return BgNbdFit(
        params=BgNbdParams(r=r, alpha=alpha, a=a, b=b, time_unit_days=float(time_unit_days)),
        log_likelihood=ll,
        iterations=int(result.nit),
        converged=_converged(result),
        n_customers=int(x.size),
    )


def probability_alive(
    params: BgNbdParams,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """Probability that a customer with history ``(x, t_x, T)`` is still active at ``T``.

    .. math::

        P(\\text{alive} \\mid x, t_x, T) = \\Big[1 + \\delta_{x > 0} \\frac{a}{b + x - 1}
            \\Big(\\frac{\\alpha + T}{\\alpha + t_x}\\Big)^{r + x}\\Big]^{-1}

    (equation 11 of the paper). It is the share of the "still active" term in the likelihood, so a
    customer with no repeat purchase is active with certainty: under BG/NBD dropping out can only
    happen right after a repeat purchase. Evaluated as ``expit(-log odds)`` so that long-silent
    heavy buyers give a clean 0 instead of overflowing the power.
    """
    x, t_x, age = _history(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    b_x1 = np.where(repeat, b + x - 1, 1.0)
    log_odds = np.log(a) - np.log(b_x1) + (r + x) * (np.log(alpha + age) - np.log(alpha + t_x))
    return np.asarray(np.where(repeat, expit(-log_odds), 1.0), dtype=np.float64)


def _beta_gauss_rule(a: float, m: float, n: int) -> tuple[FloatArray, FloatArray]:
    """Gauss rule for expectations under ``Beta(a, m)``: nodes in (0, 1), weights summing to 1.

    Golub-Welsch on the three-term recurrence of the Jacobi polynomials with weight
    ``(1 - y)^(m - 1) (1 + y)^(a - 1)`` on [-1, 1], mapped by ``p = (1 + y) / 2``. The eigenvalue
    route stays accurate for the very lopsided weights of heavy buyers (``m`` in the thousands),
    where Newton iteration on the polynomials (``scipy.special.roots_jacobi``) breaks down.
    """
    al, be = m - 1.0, a - 1.0
    s = al + be
    k = np.arange(n, dtype=np.float64)
    diag = np.empty(n)
    diag[0] = (be - al) / (s + 2)
    kk = k[1:]
    diag[1:] = (be * be - al * al) / ((2 * kk + s) * (2 * kk + s + 2))
    off_sq = np.empty(n - 1)
    off_sq[0] = 4 * (1 + al) * (1 + be) / ((2 + s) ** 2 * (3 + s))
    kk = k[2:]
    off_sq[1:] = (
        4
        * kk
        * (kk + al)
        * (kk + be)
        * (kk + s)
        / ((2 * kk + s) ** 2 * (2 * kk + s + 1) * (2 * kk + s - 1))
    )
    y, vectors = eigh_tridiagonal(diag, np.sqrt(off_sq))
    weights = vectors[0] ** 2
    return np.asarray((1 + y) / 2, dtype=np.float64), np.asarray(
        weights / weights.sum(), dtype=np.float64
    )


def _expected_if_alive_by_quadrature(
    params: BgNbdParams, t: FloatArray, x: FloatArray, age: FloatArray
) -> FloatArray:
    """``E[Y(t) | x, T, active]`` as an integral over the posterior dropout probability.

    Given ``lambda`` and ``p``, an active customer makes ``(1 - exp(-lambda p t)) / p`` expected
    transactions in the next ``t``; given activity at ``T`` the posterior is
    ``lambda ~ Gamma(r + x, alpha + T)`` and ``p ~ Beta(a, b + x)``. Integrating ``lambda`` out:

    .. math::

        E = \\int_0^1 \\frac{1 - (1 + p\\,t / (\\alpha + T))^{-(r + x)}}{p}\\,
            \\mathrm{Beta}(p; a, b + x)\\,dp,

    evaluated by a Gauss rule for the Beta weight (one rule per distinct frequency). It is used only
    where the series has not converged, i.e. for light buyers with ``z`` very near 1, where the
    integrand is smooth; it is poor for heavy buyers over very long horizons (the integrand then
    drops within a tiny fraction of the Beta weight's scale), which the series covers instead.
    """
    out = np.empty(x.shape[0], dtype=np.float64)
    values, index = np.unique(x, return_inverse=True)
    for j, xv in enumerate(values):
        nodes, weights = _beta_gauss_rule(params.a, params.b + float(xv), _QUADRATURE_NODES)
        members = np.flatnonzero(index == j)
        u = (t[members] / (params.alpha + age[members]))[:, None]
        integrand = -np.expm1(-(params.r + xv) * np.log1p(nodes * u)) / nodes
        out[members] = integrand @ weights
    return out


def _hyp2f1_series(
    A: float, B: float, C: FloatArray, z: FloatArray
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Gauss's series ``sum_n (A)_n (B)_n / ((C)_n n!) z^n`` summed term by term, and where it met
    its tolerance within ``_SERIES_MAX_TERMS`` terms.

    Vectorised over customers, looping over terms: after each block of terms the converged
    customers are set aside, so heavy buyers (large ``C``, a handful of terms) cost little. The
    stopping rule bounds the remaining tail by a geometric series of ratio ``z``.
    """
    total = np.ones_like(z)
    done = np.zeros(z.shape, dtype=bool)
    active = np.arange(z.shape[0])
    term = np.ones_like(z)
    cc, zz, ss = C, z, total.copy()
    n = 0
    while active.size and n < _SERIES_MAX_TERMS:
        for _ in range(32):
            term = term * ((A + n) * (B + n) / ((cc + n) * (n + 1))) * zz
            ss = ss + term
            n += 1
        converged = np.abs(term) * zz <= _SERIES_TOLERANCE * (1 - zz) * np.abs(ss)
        total[active] = ss
        done[active[converged]] = True
        keep = ~converged
        active, term, cc, zz, ss = active[keep], term[keep], cc[keep], zz[keep], ss[keep]
    return total, done


def _expected_if_alive(
    params: BgNbdParams, t: FloatArray, x: FloatArray, age: FloatArray
) -> FloatArray:
    """``E[Y(t) | x, T, active at T]``: the numerator of equation 10 without the P(alive) factor.

    The paper writes it as

    .. math::

        \\frac{a + b + x - 1}{a - 1}\\Big[1
            - \\Big(\\frac{\\alpha + T}{\\alpha + T + t}\\Big)^{r + x}
            {}_2F_1\\big(r + x, b + x; a + b + x - 1; z\\big)\\Big],
        \\quad z = \\frac{t}{\\alpha + T + t}.

    For heavy buyers that hypergeometric function is astronomically large and multiplied by an
    astronomically small power. Euler's transformation
    ``2F1(A, B; C; z) = (1 - z)^(C - A - B) 2F1(C - A, C - B; C; z)`` folds the power in:

    .. math::

        \\frac{a + b + x - 1}{a - 1}\\Big[1 - (1 - z)^{a - 1}
            {}_2F_1\\big(a + b - 1 - r, a - 1; a + b + x - 1; z\\big)\\Big],

    whose series has a small second parameter and a large third one, so it converges quickly and
    stays near 1; scipy's ``hyp2f1`` evaluates it for ``z <= _HYP2F1_MAX_Z``. Beyond that (long
    horizons for young customers) scipy switches to a ``1 - z`` transformation that returns inf,
    nan or, rarely, a wrong finite value for large third parameters, so there the series is summed
    directly (``_hyp2f1_series``; fast for heavy buyers), and where it has not converged within
    ``_SERIES_MAX_TERMS`` terms (light buyers with ``z`` very near 1) the expectation is integrated
    numerically instead (``_expected_if_alive_by_quadrature``, accurate exactly there). Against
    mpmath at 40 digits, on a grid of parameters (a, r from 0.05 to 50, b to 100), frequencies up
    to 1,000 and horizons up to 1,000 times ``alpha + T``, the relative error is below 2e-8 for
    ``t <= 100 (alpha + T)`` and below 0.5% beyond.
    """
    shape = np.broadcast_shapes(np.shape(t), np.shape(x), np.shape(age))
    t, x, age = (np.ravel(v) for v in np.broadcast_arrays(t, x, age))
    r, alpha, b = params.r, params.alpha, params.b
    a = params.a
    if abs(a - 1.0) < _A_NEAR_ONE:
        a = 1.0 + _A_NEAR_ONE
    z = t / (alpha + age + t)
    out = np.full(t.shape[0], np.nan)
    near = np.flatnonzero(z <= _HYP2F1_MAX_Z)
    if near.size:
        c = a + b + x[near] - 1
        log_1mz = np.log(alpha + age[near]) - np.log(alpha + age[near] + t[near])
        bracket = 1.0 - np.exp((a - 1) * log_1mz) * hyp2f1(a + b - 1 - r, a - 1, c, z[near])
        out[near] = c / (a - 1) * bracket
    far = np.flatnonzero(z > _HYP2F1_MAX_Z)
    if far.size:
        c = a + b + x[far] - 1
        total, done = _hyp2f1_series(a + b - 1 - r, a - 1, c, z[far])
        log_1mz = np.log(alpha + age[far]) - np.log(alpha + age[far] + t[far])
        out[far] = np.where(done, c / (a - 1) * (1.0 - np.exp((a - 1) * log_1mz) * total), np.nan)
    rest = np.flatnonzero(~np.isfinite(out))
    if rest.size:
        out[rest] = _expected_if_alive_by_quadrature(params, t[rest], x[rest], age[rest])
    if not np.all(np.isfinite(out)):
        raise ArithmeticError("the BG/NBD conditional expectation could not be evaluated")
    return np.asarray(np.maximum(out, 0.0).reshape(shape), dtype=np.float64)


def conditional_expected_transactions(
    params: BgNbdParams,
    t: npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """Expected number of transactions in ``(T, T + t]`` given the history ``(x, t_x, T)``.

    ``t`` is in model time units and broadcasts against the history. Equation 10 of the paper:
    ``E[Y(t) | x, t_x, T] = P(alive | x, t_x, T) * E[Y(t) | x, T, alive]``, the second factor
    evaluated through Gauss's hypergeometric function as described in ``_expected_if_alive``.
    """
    x, t_x, age = _history(frequency, recency, T)
    horizon = np.asarray(t, dtype=np.float64)
    if np.any(horizon < 0):
        raise ValueError("t must be non-negative")
    horizon, x, t_x, age = np.broadcast_arrays(horizon, x, t_x, age)
    alive = probability_alive(params, x, t_x, age)
    return np.asarray(alive * _expected_if_alive(params, horizon, x, age), dtype=np.float64)


def expected_transactions(params: BgNbdParams, t: npt.ArrayLike) -> FloatArray:
    """Expected repeat transactions in ``(0, t]`` of a customer who just made a first purchase.

    .. math::

        E[X(t)] = \\frac{a + b - 1}{a - 1}\\Big[1 - \\Big(\\frac{\\alpha}{\\alpha + t}\\Big)^r
            {}_2F_1\\big(r, b; a + b - 1; \\tfrac{t}{\\alpha + t}\\big)\\Big]

    (equation 7 of the paper), which is the conditional expectation for the empty history
    ``x = t_x = T = 0`` and is evaluated the same way.
    """
    horizon = np.asarray(t, dtype=np.float64)
    if np.any(horizon < 0):
        raise ValueError("t must be non-negative")
    zeros = np.zeros_like(horizon)
    return _expected_if_alive(params, horizon, zeros, zeros)


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma spend parameters; ``v`` is in cents.

    Each transaction's value is ``Gamma(p, nu)`` (shape ``p``, rate ``nu``), so a customer's mean
    transaction value is ``p / nu``; across customers ``nu ~ Gamma(q, v)``. The population mean
    transaction value is ``p v / (q - 1)`` (finite only for ``q > 1``).
    """

    p: float
    q: float
    v: float


@dataclass(frozen=True)
class GammaGammaFit:
    """A maximum-likelihood Gamma-Gamma fit."""

    params: GammaGammaParams
    log_likelihood: float
    iterations: int
    converged: bool
    n_customers: int


def _spend_history(
    frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    x, m = np.broadcast_arrays(x, m)
    if np.any(x < 0) or np.any(m < 0):
        raise ValueError("frequency and monetary_value must be non-negative")
    return x, m


def gamma_gamma_log_likelihood(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> FloatArray:
    """Per-customer log-density of the mean repeat spend ``m`` over ``x > 0`` transactions.

    .. math::

        f(m \\mid x) = \\frac{\\Gamma(p x + q)}{\\Gamma(p x)\\,\\Gamma(q)}
            \\frac{v^q\\, m^{p x - 1}\\, x^{p x}}{(v + x m)^{p x + q}}

    Defined for ``x > 0`` and ``m > 0`` only; the caller selects those customers.
    """
    x, m = _spend_history(frequency, monetary_value)
    if np.any(x <= 0) or np.any(m <= 0):
        raise ValueError("the Gamma-Gamma likelihood needs frequency > 0 and monetary_value > 0")
    p, q, v = params.p, params.q, params.v
    px = p * x
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(v + x * m)
    )
    return np.asarray(ll, dtype=np.float64)


def _gamma_gamma_objective(
    log_params: FloatArray, x: FloatArray, m: FloatArray, scale: float
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood of spends divided by ``scale``, and its log-parameter gradient.

    Working in units of the mean spend keeps ``v`` near 1 for the optimiser; the constant Jacobian
    term that rescaling adds does not move the optimum.
    """
    p, q, v = np.exp(log_params)
    ms = m / scale
    px = p * x
    log_vxm = np.log(v + x * ms)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(ms)
        + px * np.log(x)
        - (px + q) * log_vxm
    )
    psi_pxq = digamma(px + q)
    d_p = x * (psi_pxq - digamma(px) + np.log(ms) + np.log(x) - log_vxm)
    d_q = psi_pxq - digamma(q) + np.log(v) - log_vxm
    d_v = q / v - (px + q) / (v + x * ms)
    n = x.size
    grad = np.array([p * d_p.sum(), q * d_q.sum(), v * d_v.sum()])
    return float(-ll.sum() / n), np.asarray(-grad / n, dtype=np.float64)


def fit_gamma_gamma(
    frequency: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    *,
    max_iterations: int = 1000,
) -> GammaGammaFit:
    """Fit the Gamma-Gamma spend model by maximum likelihood.

    Only customers with ``frequency > 0`` and a positive mean repeat spend carry information (a
    zero mean, e.g. fully refunded repeat baskets, has zero density under the model and is left
    out). The model assumes spend is independent of purchase frequency; check that on the data
    before relying on it. The log-likelihood (:func:`gamma_gamma_log_likelihood`) is maximised over
    ``log(p, q, v)`` with L-BFGS-B and its analytic gradient, starting from ``p = 1, q = 2`` and
    ``v`` equal to the mean spend (so the population mean ``p v / (q - 1)`` matches it).
    """
    x, m = _spend_history(frequency, monetary_value)
    use = (x > 0) & (m > 0)
    x, m = x[use].ravel(), m[use].ravel()
    if x.size == 0:
        raise ValueError("the Gamma-Gamma model needs customers with repeat transactions")
    scale = float(m.mean())
    result = minimize(
        _gamma_gamma_objective,
        np.log([1.0, 2.0, 1.0]),
        args=(x, m, scale),
        jac=True,
        method="L-BFGS-B",
        bounds=[_LOG_PARAM_BOUNDS] * 3,
        options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-9},
    )
    p, q, v_scaled = (float(v) for v in np.exp(result.x))
    params = GammaGammaParams(p=p, q=q, v=v_scaled * scale)
    return GammaGammaFit(
        params=params,
        log_likelihood=float(gamma_gamma_log_likelihood(params, x, m).sum()),
        iterations=int(result.nit),
        converged=_converged(result),
        n_customers=int(x.size),
    )


def conditional_expected_spend(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> FloatArray:
    """Expected value of a customer's future transactions, in float cents.

    .. math::

        E[Z \\mid x, m] = \\frac{p (v + x m)}{p x + q - 1}
            = \\frac{q - 1}{p x + q - 1} \\frac{p v}{q - 1} + \\frac{p x}{p x + q - 1}\\, m

    a credibility-weighted average of the population mean and the customer's own mean repeat spend
    ``m``; with ``x = 0`` it is the population mean, which needs ``q > 1``.
    """
    x, m = _spend_history(frequency, monetary_value)
    p, q, v = params.p, params.q, params.v
    denominator = p * x + q - 1
    if np.any(denominator <= 0):
        raise ValueError(
            f"expected spend is unbounded for q = {q:.3g} <= 1 with this little history"
        )
    return np.asarray(p * (v + x * m) / denominator, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Customer lifetime value and churn risk
# --------------------------------------------------------------------------------------------


def customer_lifetime_value(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    *,
    horizon_days: float = DAYS_PER_YEAR,
    annual_discount_rate: float = 0.10,
    step_days: float = DAYS_PER_MONTH,
) -> FloatArray:
    """Discounted expected spend over the next ``horizon_days``, in float cents.

    The horizon is cut into steps of ``step_days`` (a month by default; the last step may be
    shorter) ending at ``tau_1 < ... < tau_K = horizon_days``. Each step's expected transactions
    (from the BG/NBD conditional expectation) times the expected transaction value (from the
    Gamma-Gamma model) is discounted from the end of the step:

    .. math::

        \\mathrm{CLV} = E[Z \\mid x, m] \\sum_{k=1}^{K}
            \\big(E[Y(\\tau_k)] - E[Y(\\tau_{k-1})]\\big)\\,(1 + d)^{-\\tau_k / 365.25}

    with ``tau_0 = 0``, ``E[Y(tau)]`` the expected transactions in the next ``tau`` days given
    ``(x, t_x, T)``, and ``d`` the annual discount rate (0.10 = 10% a year), i.e. a per-step factor
    of ``(1 + d)^(-step_days / 365.25)``. With ``d = 0`` it is simply expected spend over the
    horizon. ``recency`` and ``T`` are in the BG/NBD model's time units. The result stays in float
    cents: it is an expectation, rounded only where it is displayed.
    """
    if not horizon_days >= 0 or not step_days > 0:
        raise ValueError("horizon_days must be non-negative and step_days positive")
    if not annual_discount_rate > -1:
        raise ValueError("annual_discount_rate must be greater than -1")
    x, t_x, age = _history(frequency, recency, T)
    spend = conditional_expected_spend(gamma_gamma, x, monetary_value)
    alive = probability_alive(bgnbd, x, t_x, age)

    n_steps = int(np.ceil(horizon_days / step_days - 1e-9))
    ends = np.minimum(np.arange(1, n_steps + 1) * step_days, horizon_days)
    discount = (1.0 + annual_discount_rate) ** (-ends / DAYS_PER_YEAR)
    value = np.zeros(np.shape(spend), dtype=np.float64)
    previous = np.zeros_like(value)
    # One vectorised evaluation per step, not per customer: a year is 12 passes over the array.
    for end, factor in zip(ends, discount, strict=True):
        horizon = np.full_like(value, end / bgnbd.time_unit_days)
        cumulative = alive * _expected_if_alive(bgnbd, horizon, x, age)
        value += np.maximum(cumulative - previous, 0.0) * factor
        previous = cumulative
    return np.asarray(value * spend, dtype=np.float64)


class ChurnRisk(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


#: ``churn_risk`` codes index this tuple: ``CHURN_RISK_BANDS[code]``.
CHURN_RISK_BANDS: Final = (ChurnRisk.LOW, ChurnRisk.MEDIUM, ChurnRisk.HIGH)
#: P(alive) at or above this is LOW risk (before overdue staples are counted).
LOW_RISK_MIN_P_ALIVE: Final = 0.7
#: P(alive) below this is HIGH risk.
HIGH_RISK_MAX_P_ALIVE: Final = 0.3
#: This many overdue staple products raise the band by one step (LOW -> MEDIUM -> HIGH): a
#: customer who stopped buying their milk and bread is leaking even if still "alive" overall.
OVERDUE_STAPLES_ESCALATION: Final = 2


def churn_risk(
    p_alive: npt.ArrayLike, overdue_staples: npt.ArrayLike | None = None
) -> npt.NDArray[np.int8]:
    """Churn-risk band codes (0 LOW, 1 MEDIUM, 2 HIGH; see :data:`CHURN_RISK_BANDS`).

    The band is LOW for ``p_alive >= LOW_RISK_MIN_P_ALIVE``, HIGH for
    ``p_alive < HIGH_RISK_MAX_P_ALIVE`` and MEDIUM in between; with ``overdue_staples`` given,
    customers with at least ``OVERDUE_STAPLES_ESCALATION`` overdue staple products move up one band
    (HIGH stays HIGH). Codes rather than enum members keep it vectorised.
    """
    p = np.asarray(p_alive, dtype=np.float64)
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p_alive must lie in [0, 1]")
    code = np.where(p >= LOW_RISK_MIN_P_ALIVE, 0, np.where(p < HIGH_RISK_MAX_P_ALIVE, 2, 1))
    if overdue_staples is not None:
        overdue = np.asarray(overdue_staples)
        code = np.minimum(code + (overdue >= OVERDUE_STAPLES_ESCALATION), 2)
    return np.asarray(code, dtype=np.int8)
