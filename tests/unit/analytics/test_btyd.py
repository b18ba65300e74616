"""BG/NBD, Gamma-Gamma and CLV: the published CDNOW figures, recovery on simulated data, and the
properties the formulas must have."""

import time
from pathlib import Path

import numpy as np
import pytest
from scipy.special import hyp2f1

from domain.analytics.btyd import (
    CHURN_RISK_BANDS,
    HIGH_RISK_MAX_P_ALIVE,
    LOW_RISK_MIN_P_ALIVE,
    BgNbdParams,
    ChurnRisk,
    GammaGammaParams,
    _bgnbd_objective,
    _bgnbd_terms,
    _Frequencies,
    _gamma_gamma_objective,
    bgnbd_log_likelihood,
    churn_risk,
    conditional_expected_spend,
    conditional_expected_transactions,
    customer_lifetime_value,
    expected_transactions,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood,
    probability_alive,
    rfm_summary,
)

CDNOW = Path(__file__).parents[2] / "data" / "cdnow_customers_summary.csv"
# Fader, Hardie & Lee (2005), Marketing Science 24(2), p. 281: weeks, 2,357 customers.
PAPER = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426, time_unit_days=7.0)
PAPER_LOG_LIKELIHOOD = -9582.4
TRUE = BgNbdParams(r=0.6, alpha=5.0, a=0.8, b=2.5)
TRUE_SPEND = GammaGammaParams(p=6.25, q=3.74, v=1544.0)  # the papers' CDNOW values, in cents


@pytest.fixture(scope="module")
def cdnow() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = np.genfromtxt(CDNOW, delimiter=",", names=True)
    return data["frequency"], data["recency"], data["T"]


def simulate_bgnbd(
    params: BgNbdParams, n: int, rng: np.random.Generator, *, holdout: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw (x, t_x, T) and the transactions in (T, T + holdout] straight from the model.

    Each customer buys at Poisson times with rate lambda until the J-th repeat purchase, J
    geometric with parameter p. Given N arrivals in [0, T + holdout] their times are uniform, so
    the calibration count is binomial and the x-th of N_T uniform arrivals is T * Beta(x, N_T - x + 1).
    """
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    age = rng.uniform(20.0, 60.0, n)
    dropout_after = rng.geometric(p)
    arrivals = rng.poisson(lam * (age + holdout))
    in_calibration = rng.binomial(arrivals, age / (age + holdout))
    x = np.minimum(in_calibration, dropout_after)
    total = np.minimum(arrivals, dropout_after)
    t_x = np.zeros(n)
    repeat = x > 0
    t_x[repeat] = age[repeat] * rng.beta(x[repeat], in_calibration[repeat] - x[repeat] + 1)
    return x, t_x, age, total - x


# --- (1) the published CDNOW figures -------------------------------------------------------


def test_cdnow_fit_reproduces_the_paper(cdnow: tuple[np.ndarray, ...]) -> None:
    fit = fit_bgnbd(*cdnow, time_unit_days=7.0)

    assert fit.converged
    assert fit.n_customers == 2357
    got = fit.params
    for name in ("r", "alpha", "a", "b"):
        assert getattr(got, name) == pytest.approx(getattr(PAPER, name), rel=0.01), name
    assert fit.log_likelihood == pytest.approx(PAPER_LOG_LIKELIHOOD, abs=0.5)
    assert got.time_unit_days == 7.0


def test_cdnow_predictions_match_the_paper(cdnow: tuple[np.ndarray, ...]) -> None:
    """The paper's worked example: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in the
    next 39 weeks; and a new customer expects about 1.2 in 39 weeks (Figure 2, cumulative)."""
    fit = fit_bgnbd(*cdnow)

    conditional = conditional_expected_transactions(fit.params, 39.0, 2, 30.43, 38.86)
    assert float(conditional) == pytest.approx(1.226, abs=0.002)
    # Summed over the 2,357 customers, E[X(t)] at their own ages tracks the observed repeat total.
    _, _, age = cdnow
    assert expected_transactions(fit.params, age).sum() == pytest.approx(cdnow[0].sum(), rel=0.03)


# --- (2) parameter recovery ---------------------------------------------------------------


def test_bgnbd_recovers_known_parameters() -> None:
    x, t_x, age, _ = simulate_bgnbd(TRUE, 5_000, np.random.default_rng(20050301))

    fit = fit_bgnbd(x, t_x, age)

    assert fit.converged
    # r and alpha are pinned down tightly by 5,000 customers; a and b by the fewer dropouts seen.
    assert fit.params.r == pytest.approx(TRUE.r, rel=0.08)
    assert fit.params.alpha == pytest.approx(TRUE.alpha, rel=0.10)
    assert fit.params.a == pytest.approx(TRUE.a, rel=0.20)
    assert fit.params.b == pytest.approx(TRUE.b, rel=0.25)
    # And whatever the parameter noise, the fitted mean rate r / alpha is close.
    assert fit.params.r / fit.params.alpha == pytest.approx(TRUE.r / TRUE.alpha, rel=0.05)


def test_fit_does_not_depend_on_the_time_unit() -> None:
    x, t_x, age, _ = simulate_bgnbd(TRUE, 2_000, np.random.default_rng(7))

    weeks = fit_bgnbd(x, t_x, age, time_unit_days=7.0)
    days = fit_bgnbd(x, t_x * 7, age * 7, time_unit_days=1.0)

    assert days.params.r == pytest.approx(weeks.params.r, rel=1e-4)
    assert days.params.alpha == pytest.approx(weeks.params.alpha * 7, rel=1e-4)
    assert days.params.a == pytest.approx(weeks.params.a, rel=1e-4)
    assert days.params.b == pytest.approx(weeks.params.b, rel=1e-4)


def test_analytic_gradient_matches_finite_differences() -> None:
    x, t_x, age, _ = simulate_bgnbd(TRUE, 500, np.random.default_rng(3))
    weight = np.ones_like(age)
    point = np.log([0.4, 3.0, 1.3, 2.0])

    freq = _Frequencies.of(x.astype(float))
    _, grad = _bgnbd_objective(point, freq, t_x, age, weight)

    h = 1e-6
    for i in range(4):
        step = np.zeros(4)
        step[i] = h
        up, _ = _bgnbd_objective(point + step, freq, t_x, age, weight)
        down, _ = _bgnbd_objective(point - step, freq, t_x, age, weight)
        assert grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_gamma_gamma_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(1, 10, 300).astype(float)
    m = rng.gamma(5.0, 300.0, 300)
    point = np.log([3.0, 2.5, 0.8])

    _, grad = _gamma_gamma_objective(point, x, m, float(m.mean()))

    h = 1e-6
    for i in range(3):
        step = np.zeros(3)
        step[i] = h
        up, _ = _gamma_gamma_objective(point + step, x, m, float(m.mean()))
        down, _ = _gamma_gamma_objective(point - step, x, m, float(m.mean()))
        assert grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_log_likelihood_is_finite_for_extreme_histories() -> None:
    ll = bgnbd_log_likelihood(PAPER, [0, 1, 5_000, 5_000], [0, 0, 1e-3, 500], [1e-3, 1e4, 500, 500])
    assert np.all(np.isfinite(ll))
    # Without repeat purchases the likelihood is a probability; with them, t_x has a density.
    assert ll[0] <= 0


# --- (3) P(alive) properties ---------------------------------------------------------------


def test_p_alive_is_one_without_repeat_purchases() -> None:
    """A BG/NBD property, not a special case: dropout can only follow a repeat purchase."""
    p = probability_alive(PAPER, 0, 0.0, [0.5, 10.0, 100.0, 1e4])
    np.testing.assert_array_equal(p, 1.0)


def test_p_alive_is_the_share_of_the_alive_term_of_the_likelihood() -> None:
    x = np.array([1.0, 2.0, 7.0, 30.0])
    t_x = np.array([3.0, 30.43, 12.0, 38.0])
    age = np.full(4, 38.86)

    _, alive, dropped = _bgnbd_terms(
        PAPER.r, PAPER.alpha, PAPER.a, PAPER.b, _Frequencies.of(x), t_x, age
    )

    expected = np.exp(alive - np.logaddexp(alive, dropped))
    np.testing.assert_allclose(probability_alive(PAPER, x, t_x, age), expected, rtol=1e-12)


def test_p_alive_falls_with_silence_and_rises_with_recency() -> None:
    longer = probability_alive(PAPER, 3, 10.0, np.linspace(10.0, 200.0, 50))
    assert np.all(np.diff(longer) < 0)
    assert longer[0] == pytest.approx(1 / (1 + PAPER.a / (PAPER.b + 3 - 1)))

    later = probability_alive(PAPER, 3, np.linspace(0.0, 50.0, 50), 50.0)
    assert np.all(np.diff(later) > 0)

    # With the same silence, the customer who used to buy more often is the likelier lost.
    heavier = probability_alive(PAPER, np.arange(1, 30), 10.0, 40.0)
    assert np.all(np.diff(heavier) < 0)
    assert np.all((heavier > 0) & (heavier < 1))


def test_p_alive_underflows_cleanly() -> None:
    p = probability_alive(PAPER, 1_000, 1.0, 1_000.0)
    assert float(p) == 0.0


def test_p_alive_matches_monte_carlo_over_the_posterior() -> None:
    _, _, weight, alive = _posterior_draws(2, 30.43, 38.86)
    assert float(probability_alive(PAPER, 2, 30.43, 38.86)) == pytest.approx(
        np.dot(weight, alive) / weight.sum(), abs=0.01
    )


# --- (4) conditional expectation ----------------------------------------------------------


def _posterior_draws(
    x: int, t_x: float, age: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Prior draws of (lambda, p) weighted by the likelihood of the history, with P(alive | lambda,
    p, history) for each: an importance sample of the posterior that uses none of the closed forms."""
    rng = np.random.default_rng(11)
    n = 1_000_000
    lam = rng.gamma(PAPER.r, 1 / PAPER.alpha, n)
    drop = rng.beta(PAPER.a, PAPER.b, n)
    still = (1 - drop) ** x * lam**x * np.exp(-lam * age)
    gone = drop * (1 - drop) ** (x - 1) * lam**x * np.exp(-lam * t_x) if x > 0 else 0.0
    weight = still + gone
    return lam, drop, weight, still / weight


def test_conditional_expectation_matches_monte_carlo() -> None:
    """E[Y(t) | lambda, p, alive] = (1 - exp(-lambda p t)) / p, averaged over the posterior."""
    t = 39.0
    lam, drop, weight, alive = _posterior_draws(2, 30.43, 38.86)
    monte_carlo = np.dot(weight, alive * -np.expm1(-lam * drop * t) / drop) / weight.sum()

    closed_form = float(conditional_expected_transactions(PAPER, t, 2, 30.43, 38.86))

    assert closed_form == pytest.approx(monte_carlo, rel=0.02)


def test_conditional_expectation_matches_simulated_holdout() -> None:
    """Tower property: the mean prediction per calibration frequency equals the mean of what the
    simulated customers went on to do."""
    horizon = 26.0
    x, t_x, age, future = simulate_bgnbd(TRUE, 200_000, np.random.default_rng(99), holdout=horizon)

    predicted = conditional_expected_transactions(TRUE, horizon, x, t_x, age)

    assert predicted.sum() == pytest.approx(future.sum(), rel=0.02)
    for k in (0, 1, 2, 3):
        group = x == k
        assert predicted[group].mean() == pytest.approx(future[group].mean(), rel=0.06), k


def test_conditional_expectation_is_non_negative_and_grows_with_t() -> None:
    t = np.linspace(0.0, 500.0, 60)[:, None]
    x = np.array([0, 1, 2, 10, 100, 2_000])
    t_x = np.array([0.0, 5.0, 30.43, 20.0, 38.0, 38.8])

    e = conditional_expected_transactions(PAPER, t, x, t_x, 38.86)

    assert e.shape == (60, 6)
    assert np.all(np.isfinite(e))
    np.testing.assert_array_equal(e[0], 0.0)
    assert np.all(np.diff(e, axis=0) > 0)


def test_unconditional_expectation_is_the_papers_equation_7() -> None:
    t = np.array([0.5, 1.0, 10.0, 39.0, 78.0])
    p = PAPER
    z = t / (p.alpha + t)
    direct = (
        (p.a + p.b - 1)
        / (p.a - 1)
        * (1 - (p.alpha / (p.alpha + t)) ** p.r * hyp2f1(p.r, p.b, p.a + p.b - 1, z))
    )

    np.testing.assert_allclose(expected_transactions(p, t), direct, rtol=1e-9)
    assert float(expected_transactions(p, 0.0)) == 0.0


# E[Y(t) | x, T, alive] at z = t / (alpha + T + t) > 0.9, where scipy's hyp2f1 returns inf or nan;
# reference values from mpmath.hyp2f1 at 40 digits.
MPMATH = [
    # a, b, r, alpha, x, T, t, expected
    (0.05, 0.5, 0.05, 0.1, 100, 10, 104, 948.429387293756),
    (0.3, 2.426, 20, 0.1, 300, 0.5, 52, 9853.51201381112),
    (50, 100, 1, 4.4, 3, 0.5, 520, 3.10203850508787),
    (0.793, 2.426, 0.243, 4.414, 0, 0.5, 520, 4.73973948293429),
    (0.793, 2.426, 0.243, 4.414, 2, 1, 104, 12.763521894475),
    (5, 10, 1, 0.1, 1000, 10, 104, 253.483685013714),
]


@pytest.mark.parametrize(("a", "b", "r", "alpha", "x", "T", "t", "expected"), MPMATH)
def test_long_horizons_match_mpmath(
    a: float, b: float, r: float, alpha: float, x: int, T: float, t: float, expected: float
) -> None:
    params = BgNbdParams(r=r, alpha=alpha, a=a, b=b)
    got = conditional_expected_transactions(params, t, x, 0.0 if x == 0 else T, T)
    alive = probability_alive(params, x, 0.0 if x == 0 else T, T)
    assert float(got / alive) == pytest.approx(expected, rel=1e-8)


def test_expectation_survives_a_equal_to_one() -> None:
    near = BgNbdParams(r=0.5, alpha=4.0, a=1.0 + 1e-3, b=2.0)
    exactly = BgNbdParams(r=0.5, alpha=4.0, a=1.0, b=2.0)

    assert float(expected_transactions(exactly, 30.0)) == pytest.approx(
        float(expected_transactions(near, 30.0)), rel=1e-3
    )


# --- (5) RFM summary ----------------------------------------------------------------------


def test_same_day_baskets_are_one_transaction() -> None:
    # Customer 7: day 10 (two baskets), day 17, day 24 (two baskets); customer 3: one day only.
    summary = rfm_summary(
        customer_idx=[7, 7, 3, 7, 7, 3, 7, 9],
        purchased_at_days=[10.2, 10.9, 5.1, 17.5, 24.0, 5.8, 24.99, 40.5],
        amount_cents=[500, 250, 1000, 1200, 300, 1, 400, 999],
        as_of=38.0,
        time_unit_days=7.0,
    )

    np.testing.assert_array_equal(summary.customer_idx, [3, 7])  # 9 bought after as_of
    np.testing.assert_array_equal(summary.frequency, [0, 2])
    np.testing.assert_allclose(summary.recency, [0.0, 14 / 7])
    np.testing.assert_allclose(summary.T, [(38 - 5) / 7, (38 - 10) / 7])
    np.testing.assert_allclose(summary.monetary_value, [0.0, (1200 + 700) / 2])
    assert len(summary) == 2


def test_rfm_summary_of_nothing_is_empty() -> None:
    summary = rfm_summary([], [], [], as_of=10.0)
    assert len(summary) == 0


# --- (6) Gamma-Gamma ----------------------------------------------------------------------


def test_gamma_gamma_recovers_known_parameters() -> None:
    rng = np.random.default_rng(1913)
    n = 5_000
    x = rng.integers(1, 15, n)
    nu = rng.gamma(TRUE_SPEND.q, 1 / TRUE_SPEND.v, n)
    # The mean of x Gamma(p, nu) spends is Gamma(p x, x nu).
    m = rng.gamma(TRUE_SPEND.p * x, 1 / (x * nu))

    fit = fit_gamma_gamma(x, m)

    assert fit.converged
    assert fit.params.p == pytest.approx(TRUE_SPEND.p, rel=0.10)
    assert fit.params.q == pytest.approx(TRUE_SPEND.q, rel=0.10)
    assert fit.params.v == pytest.approx(TRUE_SPEND.v, rel=0.15)
    assert fit.log_likelihood == pytest.approx(gamma_gamma_log_likelihood(fit.params, x, m).sum())


def test_conditional_spend_shrinks_towards_the_population_mean() -> None:
    p = TRUE_SPEND
    population = p.p * p.v / (p.q - 1)

    spend = conditional_expected_spend(p, [0, 1, 10, 1_000], 5_000.0)

    assert spend[0] == pytest.approx(population)
    assert np.all(np.diff(spend) > 0)
    assert population < spend[1] < 5_000
    assert spend[-1] == pytest.approx(5_000, rel=0.01)


# --- (7) CLV ------------------------------------------------------------------------------


def test_clv_discounting_and_horizon() -> None:
    x, t_x, age = np.array([0, 2, 10]), np.array([0.0, 30.43, 38.0]), np.full(3, 38.86)
    m = np.array([0.0, 2_500.0, 4_000.0])
    args = (PAPER, TRUE_SPEND, x, t_x, age, m)

    flat = customer_lifetime_value(*args, horizon_days=365.25, annual_discount_rate=0.0)
    discounted = customer_lifetime_value(*args, horizon_days=365.25, annual_discount_rate=0.10)
    two_years = customer_lifetime_value(*args, horizon_days=730.5, annual_discount_rate=0.10)

    # Undiscounted, CLV is expected transactions over the horizon times expected spend.
    undiscounted = conditional_expected_transactions(
        PAPER, 365.25 / 7, x, t_x, age
    ) * conditional_expected_spend(TRUE_SPEND, x, m)
    np.testing.assert_allclose(flat, undiscounted, rtol=1e-9)
    assert np.all(discounted < flat)
    assert np.all(discounted > flat / 1.10)  # every cash flow is discounted by at most a year
    assert np.all(two_years >= discounted)
    assert np.all(customer_lifetime_value(*args, horizon_days=0.0) == 0.0)


# --- churn risk ---------------------------------------------------------------------------


def test_churn_risk_bands() -> None:
    p = np.array([0.95, LOW_RISK_MIN_P_ALIVE, 0.5, HIGH_RISK_MAX_P_ALIVE, 0.1])
    codes = churn_risk(p)
    assert [CHURN_RISK_BANDS[c] for c in codes] == [
        ChurnRisk.LOW, ChurnRisk.LOW, ChurnRisk.MEDIUM, ChurnRisk.MEDIUM, ChurnRisk.HIGH,
    ]  # fmt: skip

    escalated = churn_risk(p, overdue_staples=[2, 0, 5, 1, 3])
    assert [CHURN_RISK_BANDS[c] for c in escalated] == [
        ChurnRisk.MEDIUM, ChurnRisk.LOW, ChurnRisk.HIGH, ChurnRisk.MEDIUM, ChurnRisk.HIGH,
    ]  # fmt: skip


# --- (8) one customer and a million -------------------------------------------------------


def test_one_customer_scalars() -> None:
    assert np.shape(probability_alive(PAPER, 1, 2.0, 10.0)) == ()
    assert np.shape(conditional_expected_transactions(PAPER, 4.0, 1, 2.0, 10.0)) == ()
    one = fit_bgnbd([3], [10.0], [20.0])
    assert np.isfinite(one.log_likelihood)


def test_a_million_customers() -> None:
    rng = np.random.default_rng(2026)
    x, t_x, age, _ = simulate_bgnbd(TRUE, 1_000_000, rng)

    started = time.perf_counter()
    ll = bgnbd_log_likelihood(TRUE, x, t_x, age)
    alive = probability_alive(TRUE, x, t_x, age)
    evaluated = time.perf_counter() - started

    assert ll.shape == alive.shape == (1_000_000,)
    assert np.all(np.isfinite(ll))
    assert np.all((alive > 0) & (alive <= 1))
    assert evaluated < 10.0  # about 0.3 s here; the bound only catches a lost vectorisation

    fit = fit_bgnbd(x[:100_000], t_x[:100_000], age[:100_000])
    assert fit.converged
    assert fit.params.r == pytest.approx(TRUE.r, rel=0.05)
