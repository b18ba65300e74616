"""Seeded, vectorised synthetic grocery data for the analytics benchmark.

It writes the flat arrays a batch recompute reads from the store, without building a Python object
per line:

* a catalogue of ``N_SKUS`` skus in ``len(CATEGORIES)`` categories, each with a price tier
  (0 BUDGET, 1 STANDARD, 2 PREMIUM), a shelf price in cents and a pack-size factor;
* customers with a household size, an affluence band, a share of wallet, a first day and, for
  some, a lapse day after which they buy nothing;
* per customer a set of *staples*, each a renewal process whose gap is ``days per unit x units
  bought`` with log-normal noise, so the consumption-cycle model has a known truth; plus *impulse*
  lines that join existing baskets or make small top-up trips;
* baskets: all lines of a customer on one calendar day form one basket with one timestamp
  (the customer's usual hour, jittered per day), and lines are in basket-time order, as a ledger
  read from the store would be.

The staple gaps are scaled by one global factor so that staples give ``STAPLE_SHARE`` of the
requested lines; impulse lines fill the rest, so the line count is exactly the one requested.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

FIRST_DAY = 19_723.0  # 2024-01-01, in days since the Unix epoch
DAYS = 365
AS_OF = FIRST_DAY + DAYS
N_SKUS = 2_000
STAPLE_SHARE = 0.78
PROMO_DISCOUNT = 0.25

# name, staple weight, impulse weight, days one unit lasts a one-person household, base price
CATEGORIES: tuple[tuple[str, float, float, float, float], ...] = (
    ("dairy", 10, 2, 3.5, 180),
    ("bakery", 8, 3, 3.0, 250),
    ("produce", 9, 4, 4.0, 220),
    ("meat & fish", 5, 2, 6.0, 650),
    ("beverages", 5, 6, 5.0, 190),
    ("coffee & tea", 4, 1, 18.0, 550),
    ("snacks & sweets", 3, 9, 7.0, 240),
    ("frozen", 3, 4, 10.0, 420),
    ("pantry", 5, 3, 20.0, 210),
    ("breakfast", 4, 2, 10.0, 380),
    ("household", 3, 2, 35.0, 520),
    ("personal care", 3, 3, 30.0, 480),
    ("baby", 1, 1, 4.0, 900),
    ("pet", 2, 1, 9.0, 750),
    ("beer & wine", 2, 4, 8.0, 700),
)
TIER_PRICE = np.array([0.7, 1.0, 1.65])
TIER_OF_SKUS = np.array([0.35, 0.45, 0.20])
# Tier preference of BUDGET, MID and PREMIUM customers.
TIER_PREFERENCE = np.array([[0.65, 0.30, 0.05], [0.25, 0.55, 0.20], [0.08, 0.40, 0.52]])
AFFLUENCE = np.array([0.30, 0.50, 0.20])
HOUSEHOLD = np.array([0.30, 0.33, 0.15, 0.15, 0.07])  # sizes 1..5


@dataclass(frozen=True, slots=True)
class Dataset:
    """The benchmark's input, plus the generator's truth for sanity checks (``true_*``)."""

    # catalogue, by sku
    sku_category: IntArray
    sku_tier: npt.NDArray[np.int8]
    sku_pack_size: FloatArray
    sku_price_cents: IntArray
    # lines, in basket-time order
    line_pair: IntArray
    line_at: FloatArray
    line_quantity: IntArray
    line_customer: IntArray
    line_sku: IntArray
    line_unit_price_cents: IntArray
    line_discount_cents: IntArray
    line_basket: IntArray
    # pairs (customer, sku)
    pair_customer: IntArray
    pair_sku: IntArray
    pair_category: IntArray
    # baskets
    basket_customer: IntArray
    basket_at: FloatArray
    # customers
    customer_consent: BoolArray
    # truth, not input
    true_pair_days_per_unit: FloatArray  # NaN for impulse-only pairs
    true_customer_lapsed: BoolArray
    true_customer_affluence: IntArray
    true_customer_household: IntArray

    INPUT = (
        "sku_category", "sku_tier", "sku_pack_size", "sku_price_cents", "line_pair", "line_at",
        "line_quantity", "line_customer", "line_sku", "line_unit_price_cents",
        "line_discount_cents", "line_basket", "pair_customer", "pair_sku", "pair_category",
        "basket_customer", "basket_at", "customer_consent",
    )  # fmt: skip
    TRUTH = (
        "true_pair_days_per_unit", "true_customer_lapsed", "true_customer_affluence",
        "true_customer_household",
    )  # fmt: skip

    @property
    def n_customers(self) -> int:
        return len(self.customer_consent)

    def save(self, directory: Path) -> None:
        for f in fields(self):
            np.save(directory / f"{f.name}.npy", getattr(self, f.name))

    @staticmethod
    def load(directory: Path, names: tuple[str, ...]) -> dict[str, npt.NDArray[np.generic]]:
        return {name: np.load(directory / f"{name}.npy") for name in names}


def _catalogue(rng: np.random.Generator) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Skus sorted by (category, tier): category, tier, price (cents) and pack factor per sku."""
    staple_weight = np.array([c[1] for c in CATEGORIES])
    impulse_weight = np.array([c[2] for c in CATEGORIES])
    share = staple_weight + impulse_weight
    per_category = np.maximum(np.round(share / share.sum() * N_SKUS).astype(np.int64), 3)
    per_category[np.argmax(per_category)] += N_SKUS - per_category.sum()
    category = np.repeat(np.arange(len(CATEGORIES)), per_category)
    tier = np.empty(N_SKUS, dtype=np.int64)
    start = 0
    for size in per_category.tolist():
        # Every (category, tier) block holds at least one sku, so tier sampling never misses.
        counts = np.maximum(np.round(TIER_OF_SKUS * size).astype(np.int64), 1)
        counts[1] = size - counts[0] - counts[2]
        tier[start : start + size] = np.repeat(np.arange(3), counts)
        start += size
    base = np.array([c[4] for c in CATEGORIES])[category]
    price = base * TIER_PRICE[tier] * rng.lognormal(0.0, 0.25, N_SKUS)
    # Few pack sizes, so that skus of one category and pack size compare on price.
    pack = rng.choice(np.array([0.5, 1.0, 2.0]), size=N_SKUS, p=[0.25, 0.55, 0.2])
    return category, tier, np.maximum(np.round(price), 29.0), pack


def _pick_skus(
    rng: np.random.Generator,
    customer_affluence: IntArray,
    category_weight: FloatArray,
    block_start: IntArray,
    block_size: IntArray,
) -> IntArray:
    """One sku per entry: a category by weight, a tier by the customer's preference, then a sku
    uniformly within that (category, tier) block."""
    n = len(customer_affluence)
    category = rng.choice(len(category_weight), size=n, p=category_weight / category_weight.sum())
    cumulative = np.cumsum(TIER_PREFERENCE, axis=1)[customer_affluence]
    u = rng.random(n)
    tier = (u > cumulative[:, 0]).astype(np.int64) + (u > cumulative[:, 1])
    offset = (rng.random(n) * block_size[category, tier]).astype(np.int64)
    return np.asarray(block_start[category, tier] + offset, dtype=np.int64)


def _day_hash(customer: IntArray, day: IntArray) -> FloatArray:
    """A uniform in [0, 1) fixed per (customer, day), so all lines of a basket share one time."""
    h = customer.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + day.astype(
        np.uint64
    ) * np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(29)
    return np.asarray((h >> np.uint64(11)).astype(np.float64) / 2.0**53, dtype=np.float64)


def generate(n_customers: int, lines_per_customer: float, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    n_lines = round(n_customers * lines_per_customer)
    staple_weight = np.array([c[1] for c in CATEGORIES], dtype=np.float64)
    impulse_weight = np.array([c[2] for c in CATEGORIES], dtype=np.float64)
    unit_days = np.array([c[3] for c in CATEGORIES])

    sku_category, sku_tier, sku_price, pack_size = _catalogue(rng)
    sku_pack = pack_size**0.8  # a bigger pack lasts longer, a little less than in proportion
    block = sku_category * 3 + sku_tier
    block_size = np.bincount(block, minlength=len(CATEGORIES) * 3).reshape(-1, 3)
    block_start = (np.cumsum(block_size.ravel()) - block_size.ravel()).reshape(-1, 3)

    # Customers.
    n = n_customers
    household = rng.choice(5, size=n, p=HOUSEHOLD) + 1
    affluence = rng.choice(3, size=n, p=AFFLUENCE).astype(np.int64)
    wallet = np.clip(rng.beta(1.2, 2.5, n), 0.05, 1.0)
    joined = rng.random(n) < 0.25
    first = np.where(joined, rng.uniform(0, DAYS - 35, n), 0.0)
    lapsed = rng.random(n) < 0.18
    end = np.where(lapsed, first + 10 + rng.random(n) * (DAYS - 10 - first), float(DAYS))
    hour = np.where(rng.random(n) < 0.55, rng.normal(10.5, 1.5, n), rng.normal(17.5, 1.5, n))
    consent = rng.random(n) < 0.7
    # Customers shop on trips every few days; staples bought in between wait for the next trip,
    # which is what puts several staples in one basket.
    trip_days = rng.choice(np.array([2.0, 3.5, 7.0, 14.0]), size=n, p=[0.2, 0.25, 0.4, 0.15])
    trip_start = first - rng.random(n) * trip_days

    # Staple pairs: more of them for loyal customers, one sku at most once per customer.
    staples = np.minimum(1 + rng.poisson(0.3 + 4.0 * wallet**2), 30)
    s_customer = np.repeat(np.arange(n, dtype=np.int64), staples)
    s_sku = _pick_skus(rng, affluence[s_customer], staple_weight, block_start, block_size)
    _, keep = np.unique(s_customer * N_SKUS + s_sku, return_index=True)
    s_customer, s_sku = s_customer[keep], s_sku[keep]
    m = len(s_customer)
    s_hh = household[s_customer].astype(np.float64)
    days_per_unit = (
        unit_days[sku_category[s_sku]]
        * sku_pack[s_sku]
        * rng.lognormal(0.0, 0.2, N_SKUS)[s_sku]
        / s_hh**0.6
        * rng.lognormal(0.0, 0.25, m)
        / wallet[s_customer]
    )
    usual_quantity = 1 + rng.poisson(0.25 * (s_hh - 1.0))
    spread = rng.uniform(0.12, 0.4, m)
    span = end[s_customer] - first[s_customer]

    # One global factor on days per unit so staples give STAPLE_SHARE of the lines: a pair makes
    # about 1 + span / mean gap purchases.
    target = STAPLE_SHARE * n_lines
    rate_sum = float(np.sum(span / (days_per_unit * usual_quantity)))
    factor = rate_sum / max(target - m, 0.05 * target)
    days_per_unit *= factor

    mean_gap = days_per_unit * usual_quantity
    slots = np.minimum(np.ceil(span / mean_gap * 1.5).astype(np.int64) + 3, 400)
    e_pair = np.repeat(np.arange(m, dtype=np.int64), slots)
    starts = np.cumsum(slots) - slots
    change = rng.random(len(e_pair))
    quantity = (
        usual_quantity[e_pair] + (change < 0.08) - ((change > 0.92) & (usual_quantity[e_pair] > 1))
    )
    gap = days_per_unit[e_pair] * quantity * rng.lognormal(0.0, spread[e_pair])
    # The first purchase falls at a random phase of the first gap, but within the active span.
    phase = rng.random(m) * np.minimum(mean_gap, span)
    # Event k happens after the gaps of events 0..k-1 (the gap follows the quantity bought).
    offset = np.cumsum(gap) - gap
    at = first[s_customer][e_pair] + phase[e_pair] + offset - offset[starts][e_pair]
    alive = at < end[s_customer][e_pair]
    c = s_customer[e_pair]
    on_trip = trip_start[c] + np.floor((at - trip_start[c]) / trip_days[c]) * trip_days[c]
    at = np.maximum(on_trip, first[c])
    del c, on_trip
    s_line_pair = e_pair[alive]
    s_line_at = at[alive]
    s_line_quantity = quantity[alive].astype(np.int64)
    del e_pair, change, quantity, gap, offset, at, alive

    n_staple = len(s_line_pair)
    if n_staple > n_lines:
        drop = np.sort(rng.choice(n_staple, n_staple - n_lines, replace=False))
        keep_line = np.ones(n_staple, dtype=bool)
        keep_line[drop] = False
        s_line_pair, s_line_at = s_line_pair[keep_line], s_line_at[keep_line]
        s_line_quantity = s_line_quantity[keep_line]
        n_staple = n_lines

    # Impulse lines: most join a basket the customer makes anyway, some are a top-up trip.
    n_impulse = n_lines - n_staple
    host = rng.integers(0, n_staple, n_impulse)
    i_customer = s_customer[s_line_pair[host]]
    i_at = s_line_at[host]
    trip = rng.random(n_impulse) < 0.1
    i_at[trip] = first[i_customer[trip]] + rng.random(int(trip.sum())) * (
        end[i_customer[trip]] - first[i_customer[trip]]
    )
    i_sku = _pick_skus(rng, affluence[i_customer], impulse_weight, block_start, block_size)
    i_quantity = 1 + (rng.random(n_impulse) < 0.2).astype(np.int64)
    del host, trip

    customer = np.concatenate([s_customer[s_line_pair], i_customer])
    sku = np.concatenate([s_sku[s_line_pair], i_sku])
    at = np.concatenate([s_line_at, i_at])
    line_quantity = np.concatenate([s_line_quantity, i_quantity])
    # The mean of the log-normal days per unit, what the model's units_per_day estimates.
    true_per_unit = days_per_unit * np.exp(spread**2 / 2)
    staple_key = s_customer * N_SKUS + s_sku
    del s_line_pair, s_line_at, s_line_quantity, i_customer, i_at, i_sku, i_quantity

    # One basket per customer and day, at the customer's usual hour jittered per day.
    day = np.minimum(np.floor(at), DAYS - 1).astype(np.int64)
    jitter = _day_hash(customer, day)
    at_hour = np.clip(hour[customer] + 3.0 * (jitter - 0.5), 7.0, 21.9)
    line_at = FIRST_DAY + day + at_hour / 24.0
    basket_key, line_basket = np.unique(customer * (DAYS + 1) + day, return_inverse=True)
    basket_customer = basket_key // (DAYS + 1)
    basket_at = np.empty(len(basket_key))
    basket_at[line_basket] = line_at
    del day, jitter, at_hour, at

    # Basket ids in time order, and lines ordered by basket, as a ledger is.
    by_time = np.argsort(basket_at, kind="stable")
    rank = np.empty_like(by_time)
    rank[by_time] = np.arange(len(by_time))
    basket_customer, basket_at = basket_customer[by_time], basket_at[by_time]
    line_basket = rank[line_basket]
    order = np.argsort(line_basket, kind="stable")
    line_basket, line_at = line_basket[order], line_at[order]
    customer, sku, line_quantity = customer[order], sku[order], line_quantity[order]
    del rank, by_time, order

    pair_key, line_pair = np.unique(customer * N_SKUS + sku, return_inverse=True)
    pair_customer, pair_sku = pair_key // N_SKUS, pair_key % N_SKUS
    true_pair = np.full(len(pair_key), np.nan)
    where = np.searchsorted(pair_key, staple_key)
    true_pair[where] = true_per_unit

    promo_rate = np.array([0.2, 0.12, 0.07])[affluence[customer]]
    promo = rng.random(len(customer)) < promo_rate
    shelf = sku_price.astype(np.int64)[sku]
    discount = np.where(promo, np.round(PROMO_DISCOUNT * shelf * line_quantity), 0).astype(np.int64)

    return Dataset(
        sku_category=sku_category.astype(np.int64),
        sku_tier=sku_tier.astype(np.int8),
        sku_pack_size=pack_size,
        sku_price_cents=sku_price.astype(np.int64),
        line_pair=line_pair.astype(np.int64).ravel(),
        line_at=line_at,
        line_quantity=line_quantity,
        line_customer=customer,
        line_sku=sku,
        line_unit_price_cents=shelf,
        line_discount_cents=discount,
        line_basket=line_basket.astype(np.int64),
        pair_customer=pair_customer,
        pair_sku=pair_sku,
        pair_category=sku_category[pair_sku].astype(np.int64),
        basket_customer=basket_customer,
        basket_at=basket_at,
        customer_consent=consent,
        true_pair_days_per_unit=true_pair,
        true_customer_lapsed=lapsed,
        true_customer_affluence=affluence,
        true_customer_household=household.astype(np.int64),
    )
