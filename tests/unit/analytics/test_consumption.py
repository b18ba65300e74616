import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest

from domain.analytics.consumption import (
    LAPSED_AFTER,
    ConsumptionCycles,
    PairKeys,
    PurchaseLines,
    Status,
    cycle_timing,
    evaluate_cycles,
    lines_from_purchases,
    population_priors,
    predict_cycles,
)
from domain.demo import DemoData, generate
from domain.purchases import Purchase, PurchaseLine

END = datetime(2026, 3, 14, 15, 30, tzinfo=UTC)
END_DAYS = END.timestamp() / 86_400
HOLDOUT_DAYS = 60.0


@dataclass(frozen=True)
class Demo:
    data: DemoData
    lines: PurchaseLines
    keys: PairKeys
    staple: np.ndarray  # by pair: a true staple habit
    true_interval: np.ndarray  # by pair: the habit's mean interval (NaN if no habit)
    regularity: np.ndarray
    lapsed: np.ndarray  # by pair: the customer's habits stopped


@pytest.fixture(scope="module")
def demo() -> Demo:
    data = generate(as_of=END, n_customers=500, seed=42)
    lines, keys = lines_from_purchases(data.purchases, {p.sku: p.category for p in data.products})
    habits = {(h.customer_id, s.sku): s for h in data.habits.values() for s in h.staples}
    found = [habits.get(k) for k in zip(keys.customer_ids, keys.skus, strict=True)]
    return Demo(
        data=data,
        lines=lines,
        keys=keys,
        staple=np.array([h is not None for h in found]),
        true_interval=np.array([h.mean_interval_days if h else np.nan for h in found]),
        regularity=np.array([h.regularity if h else np.nan for h in found]),
        lapsed=np.array([data.habits[c].lapsed_at is not None for c in keys.customer_ids]),
    )


def crafted(events: list[tuple[int, float, int]], sku: list[int] | None = None) -> PurchaseLines:
    """Lines from (pair, day, quantity); every pair in one sku and category unless told."""
    pair = np.array([e[0] for e in events], dtype=np.int64)
    n_pairs = int(pair.max()) + 1
    skus = np.array(sku if sku is not None else [0] * n_pairs, dtype=np.int64)
    return PurchaseLines(
        pair=pair,
        purchased_at=np.array([e[1] for e in events], dtype=np.float64),
        quantity=np.array([e[2] for e in events], dtype=np.int64),
        pair_sku=skus,
        pair_category=np.zeros(n_pairs, dtype=np.int64),
    )


def regular_population(
    n_pairs: int, interval: float, purchases: int, rng: np.random.Generator, jitter: float = 0.05
) -> list[tuple[int, float, int]]:
    """``n_pairs`` customers buying one unit every ``interval`` days (relative jitter ``jitter``),
    the last purchase on day 1000."""
    events = []
    for p in range(n_pairs):
        gaps = interval * np.exp(rng.normal(0.0, jitter, purchases - 1))
        days = 1000.0 - np.concatenate([[0.0], np.cumsum(gaps)])[::-1]
        events += [(p, float(d), 1) for d in days]
    return events


# The quality bars of the issue, on the seeded demo data.


def test_next_date_accuracy_beats_the_naive_baseline_and_the_window_is_calibrated(
    demo: Demo,
) -> None:
    accuracy = evaluate_cycles(demo.lines, END_DAYS - HOLDOUT_DAYS, END_DAYS)

    print(
        f"\nconsumption, {accuracy.pairs} pairs bought again in the {HOLDOUT_DAYS:.0f}-day holdout:"
        f" MAE {accuracy.mae_days:.2f} d vs naive {accuracy.naive_mae_days:.2f} d"
        f" (ratio {accuracy.mae_ratio:.2f}; naive moved up to as_of:"
        f" {accuracy.clipped_naive_mae_days:.2f} d), 80% window coverage {accuracy.coverage:.1%},"
        f" mean width {accuracy.mean_window_days:.1f} d"
    )
    assert accuracy.pairs > 3_000
    assert accuracy.mae_days <= 0.7 * accuracy.naive_mae_days
    assert 0.75 <= accuracy.coverage <= 0.85


def test_staples_alone_are_predicted_within_days_and_calibrated(demo: Demo) -> None:
    keep = demo.staple[demo.lines.pair]
    accuracy = evaluate_cycles(demo.lines.select(keep), END_DAYS - HOLDOUT_DAYS, END_DAYS)

    print(
        f"\nstaples only, {accuracy.pairs} pairs: MAE {accuracy.mae_days:.2f} d vs naive"
        f" {accuracy.naive_mae_days:.2f} d (moved up to as_of: {accuracy.clipped_naive_mae_days:.2f} d),"
        f" coverage {accuracy.coverage:.1%}, mean width {accuracy.mean_window_days:.1f} d"
    )
    assert accuracy.mae_days < accuracy.naive_mae_days
    assert accuracy.mae_days < 4.0
    assert 0.75 <= accuracy.coverage <= 0.85


def test_estimated_mean_intervals_match_the_true_habits(demo: Demo) -> None:
    cycles = predict_cycles(demo.lines, END_DAYS)
    regular = demo.staple & (demo.regularity >= 6) & (cycles.purchases >= 5)
    error = np.abs(cycles.mean_interval_days[regular] / demo.true_interval[regular] - 1)

    print(
        f"\ntrue mean interval, {regular.sum()} regular staples: median relative error"
        f" {np.median(error):.1%}, 90th percentile {np.quantile(error, 0.9):.1%}"
    )
    assert regular.sum() > 1_000
    assert np.median(error) < 0.2


def test_lapsed_customers_staples_are_flagged_and_active_ones_are_not(demo: Demo) -> None:
    cycles = predict_cycles(demo.lines, END_DAYS)
    habit = demo.staple & (cycles.purchases >= 3)

    lapsed_share = np.mean(cycles.status[habit & demo.lapsed] == Status.LAPSED)
    active_share = np.mean(cycles.status[habit & ~demo.lapsed] == Status.LAPSED)

    print(
        f"\nLAPSED: {lapsed_share:.1%} of lapsed customers' staples, {active_share:.1%} of others"
    )
    assert lapsed_share > 0.7
    assert active_share < 0.01


def test_confidence_lies_in_the_unit_interval_and_favours_true_habits(demo: Demo) -> None:
    cycles = predict_cycles(demo.lines, END_DAYS)
    bought = cycles.purchases > 0

    assert np.all((cycles.confidence >= 0) & (cycles.confidence <= 1))
    assert np.all(cycles.confidence[cycles.intervals == 0] == 0)
    assert np.mean(cycles.confidence[demo.staple]) > 3 * np.mean(
        cycles.confidence[bought & ~demo.staple]
    )


def test_no_prediction_lies_before_as_of(demo: Demo) -> None:
    as_of = END_DAYS - HOLDOUT_DAYS
    cycles = predict_cycles(demo.lines, as_of)
    bought = cycles.purchases > 0

    assert np.all(cycles.window_low[bought] >= as_of)
    assert np.all(cycles.window_low[bought] <= cycles.next_expected_at[bought])
    assert np.all(cycles.next_expected_at[bought] <= cycles.window_high[bought])
    assert np.all(np.isfinite(cycles.next_expected_at[bought]))


# The model on crafted histories.


def test_two_units_predict_about_twice_the_gap() -> None:
    rng = np.random.default_rng(1)
    population = regular_population(20, 6.0, 8, rng)
    one = crafted([*population, (20, 990.0, 1), (20, 996.0, 1), (20, 1002.0, 1)])
    two = crafted([*population, (20, 990.0, 1), (20, 996.0, 1), (20, 1002.0, 2)])

    gap_one = predict_cycles(one, 1002.0).next_expected_at[20] - 1002.0
    gap_two = predict_cycles(two, 1002.0).next_expected_at[20] - 1002.0

    assert gap_one == pytest.approx(6.0, rel=0.1)
    assert gap_two == pytest.approx(2 * gap_one, rel=0.05)


def test_lines_of_one_day_are_one_purchase_with_their_quantities_summed() -> None:
    lines = crafted([(0, 10.2, 1), (0, 10.6, 2), (0, 20.3, 1), (0, 20.9, 1), (0, 25.0, 1)])

    cycles = predict_cycles(lines, 22.0)

    assert cycles.purchases[0] == 2
    assert cycles.intervals[0] == 1
    assert cycles.last_purchased_at[0] == 20.3
    assert cycles.last_quantity[0] == 2


def test_an_overdue_pair_is_predicted_after_as_of_with_a_window_ahead() -> None:
    rng = np.random.default_rng(2)
    lines = crafted(regular_population(30, 7.0, 10, rng, jitter=0.2))

    for elapsed in (8.0, 14.0, 30.0, 200.0):
        cycles = predict_cycles(lines, 1000.0 + elapsed)
        assert np.all(cycles.window_low > cycles.as_of)
        assert np.all(cycles.next_expected_at > cycles.window_low)
        assert np.all(cycles.window_high > cycles.next_expected_at)


def test_a_pair_with_two_purchases_borrows_from_its_sku_population() -> None:
    rng = np.random.default_rng(3)
    population = regular_population(40, 10.0, 12, rng, jitter=0.15)
    lines = crafted([*population, (40, 980.0, 1), (40, 1000.0, 1), (41, 1000.0, 1)])

    cycles = predict_cycles(lines, 1000.0)
    sparse, single = 40, 41

    assert 10.0 < cycles.mean_interval_days[sparse] < 20.0  # pulled from its own 20 toward 10
    assert np.isfinite(cycles.next_expected_at[sparse])
    assert 0 < cycles.confidence[sparse] < 0.5 * np.median(cycles.confidence[:40])
    assert cycles.mean_interval_days[single] == pytest.approx(10.0, rel=0.1)
    assert cycles.confidence[single] == 0


def test_shrinkage_fades_as_intervals_accumulate() -> None:
    rng = np.random.default_rng(4)
    population = regular_population(40, 10.0, 12, rng, jitter=0.15)
    own = [(40 + k, 1000.0 - 20.0 * i, 1) for k in range(3) for i in range((2, 4, 12)[k])]

    cycles = predict_cycles(crafted([*population, *own]), 1000.0)

    estimates = cycles.mean_interval_days[40:43]
    assert estimates[0] < estimates[1] < estimates[2] < 21.0
    assert estimates[2] > 18.0
    assert cycles.confidence[40] < cycles.confidence[41] < cycles.confidence[42]


def test_statuses_follow_the_documented_thresholds() -> None:
    rng = np.random.default_rng(5)
    lines = crafted(regular_population(30, 10.0, 15, rng, jitter=0.03))
    reference = predict_cycles(lines, 1000.0)  # elapsed 0: the conditional window is the plain one
    low, high = reference.window_low[0] - 1000.0, reference.window_high[0] - 1000.0
    assert 8.5 < low < 10.0 < high < 11.5

    cases = {
        1.0: Status.ON_TRACK,
        low - 2.0: Status.ON_TRACK,
        low - 0.5: Status.DUE_SOON,
        high - 0.1: Status.DUE_SOON,
        high + 0.5: Status.OVERDUE,
        LAPSED_AFTER * high - 0.5: Status.OVERDUE,
        LAPSED_AFTER * high + 0.5: Status.LAPSED,
    }
    for elapsed, expected in cases.items():
        assert predict_cycles(lines, 1000.0 + elapsed).status[0] == expected, elapsed


def test_a_pair_bought_only_after_as_of_has_no_history() -> None:
    lines = crafted([(0, 1.0, 1), (0, 8.0, 1), (1, 20.0, 1)])

    cycles = predict_cycles(lines, 10.0)

    assert cycles.status[1] == Status.NO_HISTORY
    assert cycles.purchases[1] == 0
    assert np.isnan(cycles.next_expected_at[1])
    assert cycles.confidence[1] == 0


def test_probability_within_n_days_is_conditional_and_consistent_with_the_median() -> None:
    rng = np.random.default_rng(6)
    lines = crafted(regular_population(30, 7.0, 10, rng, jitter=0.2))
    cycles = predict_cycles(lines, 1005.0)
    to_median = cycles.next_expected_at - cycles.as_of

    assert cycles.probability_within(to_median) == pytest.approx(np.full(30, 0.5), abs=1e-9)
    p = np.stack([cycles.probability_within(n) for n in (0.0, 1.0, 3.0, 7.0, 30.0)])
    assert np.all(np.diff(p, axis=0) >= 0)
    assert np.all((p >= 0) & (p <= 1))
    assert p[0] == pytest.approx(np.zeros(30), abs=1e-12)


def test_purchases_flatten_into_pairs_and_two_baskets_of_one_day_make_one_event() -> None:
    def basket(n: int, customer: str, day: int, hour: int, *lines: PurchaseLine) -> Purchase:
        return Purchase(f"pur_{n}", customer, datetime(2026, 1, day, hour, tzinfo=UTC), lines)

    purchases = [
        basket(1, "cus_a", 1, 9, PurchaseLine("MILK", 1, 100), PurchaseLine("BREAD", 1, 90)),
        basket(2, "cus_a", 1, 18, PurchaseLine("MILK", 2, 100)),
        basket(3, "cus_a", 6, 9, PurchaseLine("MILK", 1, 100)),
        basket(4, "cus_b", 3, 12, PurchaseLine("MILK", 1, 100)),
    ]

    lines, keys = lines_from_purchases(purchases, {"MILK": "dairy", "BREAD": "bakery"})
    cycles = predict_cycles(lines, datetime(2026, 1, 7, tzinfo=UTC).timestamp() / 86_400)

    by_key = dict(
        zip(zip(keys.customer_ids, keys.skus, strict=True), range(lines.n_pairs), strict=True)
    )
    milk_a = by_key["cus_a", "MILK"]
    assert set(by_key) == {("cus_a", "MILK"), ("cus_a", "BREAD"), ("cus_b", "MILK")}
    assert cycles.purchases[milk_a] == 2
    assert cycles.intervals[milk_a] == 1
    assert keys.categories[lines.pair_category[by_key["cus_a", "BREAD"]]] == "bakery"
    assert lines.pair_sku[milk_a] == lines.pair_sku[by_key["cus_b", "MILK"]]


def test_empty_input_and_no_history_give_empty_or_blank_predictions() -> None:
    empty, _ = lines_from_purchases([], {})
    assert len(predict_cycles(empty, 100.0)) == 0

    future_only = predict_cycles(crafted([(0, 50.0, 1), (1, 60.0, 2)]), 10.0)
    assert np.all(future_only.status == Status.NO_HISTORY)
    assert np.all(future_only.confidence == 0)
    assert evaluate_cycles(crafted([(0, 50.0, 1)]), 10.0, 100.0).pairs == 0


def test_bad_lines_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        crafted([(0, 1.0, 0)])
    with pytest.raises(ValueError, match="one entry per line"):
        PurchaseLines(
            np.zeros(2, dtype=np.int64),
            np.zeros(1),
            np.ones(2, dtype=np.int64),
            np.zeros(1, dtype=np.int64),
            np.zeros(1, dtype=np.int64),
        )


# One pair or a hundred thousand: the same vectorised call.


def synthetic(n_pairs: int, events_per_pair: int, seed: int) -> PurchaseLines:
    rng = np.random.default_rng(seed)
    n_skus = max(n_pairs // 200, 1)
    pair_sku = rng.integers(0, n_skus, n_pairs)
    days_per_unit = np.exp(rng.normal(np.log(5.0), 0.5, n_skus))[pair_sku]
    quantity = rng.integers(1, 4, (n_pairs, events_per_pair))
    gaps = rng.gamma(6.0, days_per_unit[:, None] * quantity / 6.0)
    at = 1000.0 + np.cumsum(gaps, axis=1)
    return PurchaseLines(
        pair=np.repeat(np.arange(n_pairs, dtype=np.int64), events_per_pair),
        purchased_at=at.ravel(),
        quantity=quantity.ravel().astype(np.int64),
        pair_sku=pair_sku.astype(np.int64),
        pair_category=(pair_sku % 7).astype(np.int64),
    )


def test_one_pair_and_a_hundred_thousand_pairs_go_through_the_same_call() -> None:
    one = predict_cycles(synthetic(1, 6, seed=7), 1100.0)
    assert len(one) == 1
    assert one.status[0] in set(Status) - {Status.NO_HISTORY}
    assert np.isfinite(one.next_expected_at[0])

    lines = synthetic(100_000, 10, seed=8)
    as_of = float(np.quantile(lines.purchased_at, 0.9))
    started = time.perf_counter()
    many = predict_cycles(lines, as_of)
    seconds = time.perf_counter() - started

    print(f"\n100,000 pairs, 1,000,000 lines: {seconds:.2f} s")
    assert seconds < 5.0
    assert len(many) == 100_000
    assert np.all(np.isfinite(many.next_expected_at) | (many.purchases == 0))
    assert np.all((many.confidence >= 0) & (many.confidence <= 1))


def test_results_do_not_depend_on_line_or_pair_order() -> None:
    lines = synthetic(500, 8, seed=9)
    rng = np.random.default_rng(10)
    line_order = rng.permutation(len(lines.pair))
    relabel = rng.permutation(lines.n_pairs)  # new index of each pair
    shuffled = PurchaseLines(
        pair=relabel[lines.pair][line_order],
        purchased_at=lines.purchased_at[line_order],
        quantity=lines.quantity[line_order],
        pair_sku=lines.pair_sku[np.argsort(relabel)],
        pair_category=lines.pair_category[np.argsort(relabel)],
    )

    a = predict_cycles(lines, 1040.0)
    b = predict_cycles(shuffled, 1040.0)

    assert_same(a, b, relabel)


def assert_same(a: ConsumptionCycles, b: ConsumptionCycles, relabel: np.ndarray) -> None:
    np.testing.assert_allclose(b.next_expected_at[relabel], a.next_expected_at, rtol=1e-9)
    np.testing.assert_allclose(b.window_high[relabel], a.window_high, rtol=1e-9)
    np.testing.assert_allclose(b.confidence[relabel], a.confidence, rtol=1e-9)
    np.testing.assert_array_equal(b.status[relabel], a.status)


def test_stored_priors_reproduce_the_batch_fit_for_any_subset_of_pairs() -> None:
    lines = synthetic(2_000, 6, seed=11)
    as_of = float(np.quantile(lines.purchased_at, 0.8))
    batch = predict_cycles(lines, as_of)
    priors = population_priors(lines, as_of)
    again = predict_cycles(lines, as_of, priors=priors)
    np.testing.assert_array_equal(again.next_expected_at, batch.next_expected_at)

    # One pair alone, predicted against the stored population, matches its row in the batch.
    pair = 123
    keep = lines.pair == pair
    alone = PurchaseLines(
        pair=np.zeros(int(keep.sum()), dtype=np.int64),
        purchased_at=lines.purchased_at[keep],
        quantity=lines.quantity[keep],
        pair_sku=lines.pair_sku[[pair]],
        pair_category=lines.pair_category[[pair]],
    )
    single = predict_cycles(alone, as_of, priors=priors)
    for name in ("next_expected_at", "window_low", "window_high", "confidence", "log_spread"):
        np.testing.assert_allclose(getattr(single, name)[0], getattr(batch, name)[pair], rtol=1e-12)
    assert single.status[0] == batch.status[pair]


def test_stored_cycles_read_later_match_a_fresh_prediction_at_that_time() -> None:
    lines = synthetic(500, 5, seed=3)
    as_of = float(lines.purchased_at.max())
    stored = predict_cycles(lines, as_of)
    later = as_of + 9.5
    fresh = predict_cycles(lines, later, priors=population_priors(lines, as_of))
    timing = cycle_timing(
        stored.log_days_per_unit,
        stored.log_spread,
        stored.last_purchased_at,
        stored.last_quantity,
        later,
        within_days=7.0,
    )
    np.testing.assert_allclose(timing.next_expected_at, fresh.next_expected_at, rtol=1e-12)
    np.testing.assert_allclose(timing.window_high, fresh.window_high, rtol=1e-12)
    np.testing.assert_array_equal(timing.status, fresh.status)
    np.testing.assert_allclose(timing.probability_within, fresh.probability_within(7.0), rtol=1e-9)
    assert np.all(timing.next_expected_at >= later)
