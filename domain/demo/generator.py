"""A year of grocery shopping by customers whose habits are known.

Each customer has staples, each bought on a renewal process (gamma intervals around a true mean
that follows from pack size, household size and personal appetite). A staple that runs out is
bought on the customer's next shopping trip, so everything due around the same day lands in one
basket; impulse items and promotions are layered on top. The habits are returned alongside the
data as ground truth for the analytics tests."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from domain.customers import Consent, Customer
from domain.demo.catalogue import FAMILIES, Need, Variant, build_catalogue
from domain.demo.people import fake_people
from domain.products import PriceTier, Product
from domain.purchases import Purchase, PurchaseLine

STORES = tuple(f"store_{i:02d}" for i in range(1, 9))
TIERS = (PriceTier.BUDGET, PriceTier.STANDARD, PriceTier.PREMIUM)
DAY = 86_400

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class StapleHabit:
    """A product the customer runs out of and rebuys: ``quantity`` units every
    ``mean_interval_days`` on average, with gamma-distributed intervals of shape ``regularity``
    (higher is more regular; the coefficient of variation is 1/sqrt(regularity))."""

    sku: str
    mean_interval_days: float
    quantity: int
    regularity: float


@dataclass(frozen=True, slots=True)
class CustomerHabits:
    """The truth behind one demo customer's purchases."""

    customer_id: str
    household_size: int
    affluence: float  # 0 (tight budget) .. 1 (affluent): drives price tiers
    promo_affinity: float  # 0 .. 1: how strongly promotions steer the basket
    preferred_store: str
    shopping_weekdays: tuple[int, ...]  # Monday is 0
    preferred_hour: float
    needs: tuple[str, ...]  # "baby", "dog", "cat"
    active_from: datetime
    lapsed_at: datetime | None
    staples: tuple[StapleHabit, ...]

    @property
    def mean_intervals(self) -> dict[str, float]:
        """sku -> true mean days between purchases."""
        return {s.sku: s.mean_interval_days for s in self.staples}


@dataclass(frozen=True, slots=True, eq=False)
class DemoData:
    as_of: datetime
    seed: int
    products: tuple[Product, ...]
    customers: tuple[Customer, ...]
    purchases: tuple[Purchase, ...]  # in purchased_at order
    habits: Mapping[str, CustomerHabits]  # by customer id


@dataclass(frozen=True, slots=True)
class _Catalogue:
    variants: tuple[Variant, ...]
    family: IntArray  # variant -> family
    price: IntArray  # variant -> cents
    need: IntArray  # family -> Need
    popularity: FloatArray  # family -> weight
    by_tier: IntArray  # (family, tier) -> variant of the smallest pack, nearest tier on offer
    members: tuple[tuple[int, ...], ...]  # family -> its variants

    @classmethod
    def build(cls) -> _Catalogue:
        variants = build_catalogue()
        by_tier = np.full((len(FAMILIES), 3), -1, dtype=np.int64)
        for i, v in enumerate(variants):
            t = TIERS.index(v.product.price_tier)
            if by_tier[v.family, t] < 0:
                by_tier[v.family, t] = i
        nearest = ((1, 2), (2, 0), (1, 0))  # the tiers to fall back on, for each missing tier
        for row in by_tier:
            for t in range(3):
                if row[t] < 0:
                    row[t] = next(row[o] for o in nearest[t] if row[o] >= 0)
        return cls(
            variants=variants,
            family=np.array([v.family for v in variants], dtype=np.int64),
            price=np.array([v.product.price for v in variants], dtype=np.int64),
            need=np.array([int(f.need) for f in FAMILIES], dtype=np.int64),
            popularity=np.array([f.popularity for f in FAMILIES], dtype=np.float64),
            by_tier=by_tier,
            members=tuple(
                tuple(i for i, v in enumerate(variants) if v.family == f)
                for f in range(len(FAMILIES))
            ),
        )


def _tier_probabilities(affluence: FloatArray) -> FloatArray:
    """(n, 3) probabilities of choosing BUDGET, STANDARD, PREMIUM."""
    budget = 0.05 + 0.65 * (1 - affluence) ** 2
    premium = 0.03 + 0.6 * affluence**2
    return np.stack([budget, 1 - budget - premium, premium], axis=1)


def _choose_staples(
    rng: np.random.Generator,
    cat: _Catalogue,
    household: int,
    needs: int,
    tier_p: FloatArray,
    base_regularity: float,
    min_gap: float,
) -> list[tuple[int, float, int, float]]:
    """(variant, mean interval days, quantity, regularity) of one customer's staples.
    Fast-moving items are bought several at a time, enough to last ``min_gap`` days."""
    wanted = min(max(round(rng.normal(4.5 + 1.6 * household, 2.0)), 3), 18)
    forced: list[int] = []
    for f, family in enumerate(FAMILIES):
        needed = family.need and needs >> family.need & 1 and family.days_per_unit
        if needed and (family.popularity >= 5 or rng.random() < 0.6):
            forced.append(f)
    pool = [f for f, fam in enumerate(FAMILIES) if fam.days_per_unit and fam.need == Need.NONE]
    weights = cat.popularity[pool] / cat.popularity[pool].sum()
    picked = rng.choice(pool, size=min(wanted, len(pool)), replace=False, p=weights)
    staples: list[tuple[int, float, int, float]] = []
    for f in (*forced, *picked.tolist()):
        family = FAMILIES[f]
        on_offer = cat.members[f]
        sizes = sorted({cat.variants[i].product.pack_size for i in on_offer})
        size = sizes[-1] if len(sizes) > 1 and rng.random() < 0.1 + 0.15 * household else sizes[0]
        options = [i for i in on_offer if cat.variants[i].product.pack_size == size]
        p = np.array([tier_p[TIERS.index(cat.variants[i].product.price_tier)] for i in options])
        variant = int(rng.choice(options, p=p / p.sum()))
        scale = household**0.75 if family.per_person else 1.0
        unit_days = size * family.days_per_unit * rng.lognormal(0.0, 0.3) / scale
        quantity = min(max(math.ceil(min_gap / unit_days), 1), 12)
        mean = unit_days * quantity
        if mean > 70:  # bought too rarely to show a cycle within a year
            continue
        regularity = min(max(base_regularity * rng.lognormal(0.0, 0.2), 2.5), 25.0)
        staples.append((variant, float(mean), quantity, regularity))
    return staples


def _next_trip_days(candidate: BoolArray) -> IntArray:
    """For each (customer, day), the first candidate shopping day on or after it (D if none)."""
    n_days = candidate.shape[1]
    idx = np.where(candidate, np.arange(n_days), n_days)
    return np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1].astype(np.int64)


@dataclass(frozen=True, slots=True)
class _Window:
    """The simulated period, in whole days from ``start`` (midnight UTC)."""

    as_of: datetime
    earliest: datetime  # purchases are kept from here (as_of - days) up to as_of
    start: datetime
    n_days: int

    @classmethod
    def ending(cls, as_of: datetime, days: int) -> _Window:
        earliest = as_of - timedelta(days=days)
        start = earliest.replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(as_of, earliest, start, (as_of.date() - start.date()).days + 1)

    def at(self, day: float) -> datetime:
        return self.start + timedelta(days=day)


@dataclass(frozen=True, slots=True)
class _Population:
    """Per-customer traits as arrays indexed by customer number."""

    ids: list[str]
    household: IntArray
    affluence: FloatArray
    promo: FloatArray
    tier_p: FloatArray
    needs: IntArray  # bit n set: the household has Need(n)
    store: IntArray
    hour: FloatArray
    weekdays: list[tuple[int, ...]]
    joins_late: BoolArray
    start_day: FloatArray
    lapses: BoolArray
    end_day: FloatArray  # activity stops at this day (a lapse) or at the window's end
    tenure_days: FloatArray
    impulse: FloatArray  # mean impulse items per basket
    people: list[tuple[str, str]]
    consent: FloatArray
    staples: list[list[tuple[int, float, int, float]]]

    @property
    def size(self) -> int:
        return len(self.ids)


def _population(rng: np.random.Generator, cat: _Catalogue, n: int, n_days: int) -> _Population:
    household = rng.choice(np.arange(1, 7), size=n, p=[0.28, 0.34, 0.15, 0.14, 0.06, 0.03])
    affluence = rng.beta(2.2, 2.2, n)
    tier_p = _tier_probabilities(affluence)
    has_baby = (household >= 3) & (rng.random(n) < 0.3)
    has_dog = rng.random(n) < 0.2
    has_cat = rng.random(n) < 0.22
    needs = (has_baby << Need.BABY) | (has_dog << Need.DOG) | (has_cat << Need.CAT)
    joins_late = rng.random(n) < 0.1
    start_day = np.where(joins_late, np.floor(rng.uniform(20, 0.8 * n_days, n)), 0.0)
    # A lapse leaves at least 45 days of history before it and 35 days of silence after it.
    lapse_low = np.maximum(start_day + 45, 0.2 * n_days)
    lapses = (rng.random(n) < 0.12) & (lapse_low < n_days - 35)
    lapse_day = np.floor(lapse_low + rng.random(n) * (n_days - 35 - lapse_low))
    n_weekdays = rng.choice([1, 2, 3], size=n, p=[0.3, 0.45, 0.25])
    weekday_weights = [0.11, 0.1, 0.11, 0.13, 0.17, 0.27, 0.11]  # Saturday is the big day
    weekdays = [
        tuple(sorted(rng.choice(7, size=k, replace=False, p=weekday_weights).tolist()))
        for k in n_weekdays.tolist()
    ]
    regularity = rng.uniform(3.5, 12.0, n)
    # Frequent shoppers buy fast-moving items a few at a time; weekly shoppers buy a week's worth.
    min_gap = np.maximum(2.5, 7.0 / n_weekdays) * rng.uniform(0.8, 1.3, n)
    width = max(4, len(str(n)))
    return _Population(
        ids=[f"cus_demo_{i + 1:0{width}d}" for i in range(n)],
        household=household.astype(np.int64),
        affluence=affluence,
        promo=np.clip(0.75 - 0.6 * affluence + rng.normal(0.0, 0.15, n), 0.02, 0.98),
        tier_p=tier_p,
        needs=needs.astype(np.int64),
        store=rng.integers(0, len(STORES), n),
        hour=np.clip(
            rng.choice([9.5, 12.5, 17.75, 19.5], size=n, p=[0.25, 0.15, 0.4, 0.2])
            + rng.normal(0.0, 0.5, n),
            7.5,
            21.0,
        ),
        weekdays=weekdays,
        joins_late=joins_late,
        start_day=start_day,
        lapses=lapses,
        end_day=np.where(lapses, lapse_day, float(n_days)),
        tenure_days=rng.uniform(1, 3 * 365, n),
        impulse=rng.gamma(2.0, 0.7, n) + 0.2,
        people=fake_people(rng, n),
        consent=rng.random((n, 3)),
        staples=[
            _choose_staples(
                rng,
                cat,
                int(household[i]),
                int(needs[i]),
                tier_p[i],
                float(regularity[i]),
                float(min_gap[i]),
            )
            for i in range(n)
        ],
    )


def _trip_calendar(rng: np.random.Generator, pop: _Population, window: _Window) -> IntArray:
    """(customer, day) -> the first day from then on that the customer goes shopping: likely
    on their usual weekdays, now and then on another day for a top-up."""
    weekday_of_day = (window.start.weekday() + np.arange(window.n_days)) % 7
    usual = np.zeros((pop.size, 7), dtype=bool)
    for i, wd in enumerate(pop.weekdays):
        usual[i, list(wd)] = True
    trip_p = np.where(usual[:, weekday_of_day], 0.85, 0.06)
    return _next_trip_days(rng.random((pop.size, window.n_days)) < trip_p)


@dataclass(frozen=True, slots=True)
class _Lines:
    customer: IntArray
    day: IntArray
    variant: IntArray
    quantity: IntArray


def _staple_lines(
    rng: np.random.Generator, pop: _Population, next_trip: IntArray, n_days: int
) -> _Lines:
    """Each purchase of a staple is followed by a gamma-distributed consumption gap; the item
    is then bought on the first trip after it runs out. All staples step forward together."""
    cust = np.array([i for i, row in enumerate(pop.staples) for _ in row], dtype=np.int64)
    flat = [s for row in pop.staples for s in row]
    variant = np.array([s[0] for s in flat], dtype=np.int64)
    mean = np.array([s[1] for s in flat])
    qty = np.array([s[2] for s in flat], dtype=np.int64)
    shape = np.array([s[3] for s in flat])
    # The gaps are shortened by the customer's mean wait for a trip, so the intervals between
    # purchases average the true mean (the 0.25 day is calibrated: observed/true median 1.00).
    waits = np.where(next_trip < n_days, next_trip - np.arange(n_days), 0)
    wait = waits.mean(axis=1) - 0.25
    scale = np.maximum(mean - wait[cust], 0.5 * mean) / shape
    horizon = pop.end_day[cust]
    due = pop.start_day[cust] + rng.random(len(cust)) * mean
    alive = np.flatnonzero(due < horizon)
    bought_by: list[IntArray] = []
    bought_on: list[IntArray] = []
    while len(alive):
        trip = next_trip[cust[alive], due[alive].astype(np.int64)]
        in_time = trip < horizon[alive]
        alive, trip = alive[in_time], trip[in_time]
        bought_by.append(alive)
        bought_on.append(trip)
        due[alive] = np.maximum(trip + rng.gamma(shape[alive], scale[alive]), trip + 1)
        alive = alive[due[alive] < horizon[alive]]
    pair = np.concatenate(bought_by)
    noise = rng.random(len(pair))
    return _Lines(
        customer=cust[pair],
        day=np.concatenate(bought_on),
        variant=variant[pair],
        quantity=qty[pair] + (noise < 0.05) - ((noise > 0.95) & (qty[pair] > 1)),
    )


def _impulse_lines(
    rng: np.random.Generator,
    cat: _Catalogue,
    pop: _Population,
    basket_cust: IntArray,
    basket_day: IntArray,
    on_promo: BoolArray,
) -> _Lines:
    """Unplanned extras in each basket, in the customer's usual price tiers; promotion-minded
    shoppers swap some of them for whatever is on offer that week."""
    n_extra = rng.poisson(pop.impulse[basket_cust])
    basket = np.repeat(np.arange(len(basket_cust)), n_extra)
    cust, day = basket_cust[basket], basket_day[basket]
    family = rng.choice(len(FAMILIES), size=len(basket), p=cat.popularity / cat.popularity.sum())
    u = rng.random(len(basket))
    low, mid = pop.tier_p[cust, 0], pop.tier_p[cust, 1]
    variant = cat.by_tier[family, (u > low).astype(np.int64) + (u > low + mid)]
    swap = np.flatnonzero(rng.random(len(basket)) < 0.5 * pop.promo[cust])
    pick = rng.random(len(basket))
    week_offers = [np.flatnonzero(on_promo[:, w]) for w in range(on_promo.shape[1])]
    for j in swap.tolist():
        offers = week_offers[day[j] // 7]
        if len(offers):
            variant[j] = offers[int(pick[j] * len(offers))]
    need = cat.need[cat.family[variant]]
    allowed = (need == Need.NONE) | ((pop.needs[cust] >> need) & 1).astype(bool)
    # Impulse picks never touch a staple, so each staple's intervals stay the true process.
    n_variants = len(cat.variants)
    staple_keys = [i * n_variants + s[0] for i, row in enumerate(pop.staples) for s in row]
    allowed &= ~np.isin(cust * n_variants + variant, staple_keys)
    quantity = 1 + (rng.random(len(basket)) < 0.15)
    return _Lines(cust[allowed], day[allowed], variant[allowed], quantity[allowed])


def _purchases(
    rng: np.random.Generator,
    cat: _Catalogue,
    pop: _Population,
    next_trip: IntArray,
    window: _Window,
) -> list[Purchase]:
    n_days, n_variants = window.n_days, len(cat.variants)
    staple = _staple_lines(rng, pop, next_trip, n_days)
    basket_keys = np.unique(staple.customer * n_days + staple.day)
    b_cust, b_day = basket_keys // n_days, basket_keys % n_days
    n_weeks = n_days // 7 + 1
    on_promo = rng.random((n_variants, n_weeks)) < 0.07
    promo_pct = np.where(on_promo, rng.choice([0.1, 0.15, 0.2, 0.25, 1 / 3], on_promo.shape), 0)
    extra = _impulse_lines(rng, cat, pop, b_cust, b_day, on_promo)

    # One line per (basket, sku), ordered by basket.
    line_keys, line_of = np.unique(
        (np.concatenate([staple.customer, extra.customer]) * n_days
         + np.concatenate([staple.day, extra.day])) * n_variants
        + np.concatenate([staple.variant, extra.variant]),
        return_inverse=True,
    )  # fmt: skip
    quantity = np.bincount(
        line_of, weights=np.concatenate([staple.quantity, extra.quantity])
    ).astype(np.int64)
    variant = line_keys % n_variants
    basket_of_line = np.searchsorted(basket_keys, line_keys // n_variants)
    pct = promo_pct[variant, b_day[basket_of_line] // 7]
    coupon = rng.random(len(line_keys)) < 0.05 * pop.promo[b_cust[basket_of_line]]
    pct = np.where(coupon, np.maximum(pct, 0.1), pct)
    unit_price = cat.price[variant]
    discount = np.round(unit_price * quantity * pct).astype(np.int64)

    n_baskets = len(basket_keys)
    b_store = np.where(
        rng.random(n_baskets) < 0.88, pop.store[b_cust], rng.integers(0, len(STORES), n_baskets)
    )
    b_hour = np.clip(pop.hour[b_cust] + rng.normal(0.0, 0.9, n_baskets), 7.0, 21.95)
    b_ts = (
        int(window.start.timestamp())
        + b_day * DAY
        + (b_hour * 3600).astype(np.int64)
        + rng.integers(0, 60, n_baskets)
    )
    kept = (b_ts >= window.earliest.timestamp()) & (b_ts < window.as_of.timestamp())

    skus = [v.product.sku for v in cat.variants]
    lines = [
        PurchaseLine(skus[v], q, p, d)
        for v, q, p, d in zip(
            variant.tolist(), quantity.tolist(), unit_price.tolist(), discount.tolist(), strict=True
        )
    ]
    bounds = np.searchsorted(basket_of_line, np.arange(n_baskets + 1)).tolist()
    ts, cust, store = b_ts.tolist(), b_cust.tolist(), b_store.tolist()
    purchases: list[Purchase] = []
    for b in np.flatnonzero(kept)[np.lexsort((b_cust[kept], b_ts[kept]))].tolist():
        at = datetime.fromtimestamp(ts[b], UTC)
        cid = pop.ids[cust[b]]
        purchases.append(
            Purchase(
                id=f"pur_demo_{cid.removeprefix('cus_demo_')}_{at:%Y%m%d}",
                customer_id=cid,
                purchased_at=at,
                lines=tuple(lines[bounds[b] : bounds[b + 1]]),
                store_id=STORES[store[b]],
            )
        )
    return purchases


def _customer(pop: _Population, i: int, window: _Window) -> Customer:
    created_at = (
        window.at(float(pop.start_day[i]))
        if pop.joins_late[i]
        else (window.start - timedelta(days=float(pop.tenure_days[i]))).replace(microsecond=0)
    )
    analytics = bool(pop.consent[i, 0] < 0.9)
    name, email = pop.people[i]
    return Customer(
        id=pop.ids[i],
        created_at=created_at,
        name=name,
        email=email,
        consent=Consent(
            analytics=analytics,
            ai_profiling=analytics and bool(pop.consent[i, 1] < 0.65),
            marketing=bool(pop.consent[i, 2] < 0.45),
        ),
        household_size=int(pop.household[i]),
    )


def _habits(pop: _Population, i: int, window: _Window, skus: list[str]) -> CustomerHabits:
    needs = int(pop.needs[i])
    return CustomerHabits(
        customer_id=pop.ids[i],
        household_size=int(pop.household[i]),
        affluence=float(pop.affluence[i]),
        promo_affinity=float(pop.promo[i]),
        preferred_store=STORES[int(pop.store[i])],
        shopping_weekdays=pop.weekdays[i],
        preferred_hour=float(pop.hour[i]),
        needs=tuple(n.name.lower() for n in Need if n and needs >> n & 1),
        active_from=max(window.at(float(pop.start_day[i])), window.earliest),
        lapsed_at=window.at(float(pop.end_day[i])) if pop.lapses[i] else None,
        staples=tuple(
            StapleHabit(skus[v], round(mean, 3), q, round(k, 3)) for v, mean, q, k in pop.staples[i]
        ),
    )


def generate(
    *, as_of: datetime, n_customers: int = 500, seed: int = 42, days: int = 365
) -> DemoData:
    """Demo products, customers and ``days`` of baskets ending just before ``as_of``.

    Deterministic for a given (as_of, n_customers, seed, days). Purchase ids are
    ``pur_demo_<customer>_<yyyymmdd>`` (one trip per customer per day), so writing the same
    data twice adds nothing."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    if n_customers < 1 or days < 1:
        raise ValueError("n_customers and days must be positive")
    window = _Window.ending(as_of.astimezone(UTC), days)
    rng = np.random.default_rng(seed)
    cat = _Catalogue.build()
    pop = _population(rng, cat, n_customers, window.n_days)
    next_trip = _trip_calendar(rng, pop, window)
    purchases = _purchases(rng, cat, pop, next_trip, window)
    products = tuple(v.product for v in cat.variants)
    skus = [p.sku for p in products]
    return DemoData(
        as_of=window.as_of,
        seed=seed,
        products=products,
        customers=tuple(_customer(pop, i, window) for i in range(pop.size)),
        purchases=tuple(purchases),
        habits={pop.ids[i]: _habits(pop, i, window, skus) for i in range(pop.size)},
    )
