"""Recommendations in the product: the batch fit, serving one customer, the offline evaluation.

* :meth:`RecommendationService.refit` (run by every ``omnix recompute``, on the base the
  recompute has read) fits the co-occurrence, content and context model and stores it under a
  new version with one :class:`ItemProfile` per sku.
* :meth:`RecommendationService.for_customer` reads what one customer needs: their newest
  baskets, their stored consumption cycles (evaluated at the moment asked about), their segment,
  and the profiles of the skus involved (two keyed reads); then :class:`Recommender` scores.
* :func:`evaluate` replays a history cut at a date: what would have been recommended then,
  against what was bought in the following days, beside a popularity baseline.

How each source scores, the blend and the re-ranking are described in docs/recommendations.md;
the numbers live here as named constants.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import numpy as np
from scipy import sparse

from domain.analytics.consumption import Status, cycle_timing
from domain.analytics.recommendations import (
    BasketItems,
    ItemDescriptions,
    associations,
    content_similarity,
    daypart,
    item_statistics,
    weekday,
)
from domain.clock import Clock
from domain.customers import Customer
from domain.errors import ValidationError
from domain.ports import (
    CustomerStore,
    ProductStore,
    PurchasePageRequest,
    PurchaseStore,
    RecommendationStore,
)
from domain.predictions import ConsumptionPattern, CustomerPredictions
from domain.products import PriceTier, Product
from domain.purchases import Purchase
from domain.recommendations import (
    PROMOTION_TAGS,
    Alike,
    ItemProfile,
    Neighbour,
    Recommendation,
    RecommendationContext,
    RecommendationModel,
    RecommendationReason,
)
from domain.segments import SegmentCode
from domain.services.predictions import PredictionSettings, predict

log = logging.getLogger(__name__)

ALGORITHMS = "cooc1-content1-context1"
"""Names the algorithms behind a model version; change it whenever the maths changes."""

MAX_LIMIT = 50
MAX_BASKET = 200
HISTORY_BASKETS = 30
"""The newest baskets of a customer read to serve them: favourites, just-bought items."""
POOL = 60
"""How many of the base's most popular skus, staples and newest skus are candidates."""
FAVOURITES = 5
FAVOURITE_CATEGORIES = 3
NEW_ITEM_DAYS = 60
MODEL_TTL_SECONDS = 60.0
PROFILE_CACHE = 50_000
PRODUCT_TTL_SECONDS = 60.0
"""Item profiles kept in memory per process (a few KB each)."""

HORIZON_DAYS = 7.0
"""Replenishment scores the probability of buying within this many days."""
MIN_REPLENISHMENT = 0.05
JUST_BOUGHT_DAYS = 3.0
"""Bought this recently: left out unless the cycle says it is due again."""
WIN_BACK_QUIET_DAYS = 14.0
FAVOURITE_SEED_WEIGHT = 0.3
SIMILAR_WEIGHT = 0.25
CONTEXT_EXPONENT = 0.5
CONTEXT_RANGE = (0.67, 1.5)

SECONDS_PER_DAY = 86_400.0

SegmentSource = Callable[[Sequence[str]], Awaitable[Mapping[str, SegmentCode]]]
"""Customer ids -> their current segment (customers without one are absent)."""
PredictionSource = Callable[[Sequence[str]], Awaitable[Mapping[str, CustomerPredictions]]]
"""Customer ids -> their stored predictions evaluated now (customers without any are absent)."""


# -------------------------------------------------------------------------------------------
# The segment strategy table
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tactic:
    """One line of a segment's strategy: which pool of products, at what weight, and how the
    offer is explained. Pools: ``premium`` (PREMIUM tier in the customer's favourite
    categories, not bought yet), ``new`` (first sold in the last 60 days), ``staples`` (what the
    base rebuys most; ``in_favourites`` limits it to the favourite categories), ``favourites``
    (the customer's own most-bought skus not bought for two weeks: a win-back), ``value``
    (BUDGET tier in the favourite categories)."""

    pool: str
    weight: float
    note: str
    in_favourites: bool = False


STRATEGY: Mapping[SegmentCode, tuple[Tactic, ...]] = {
    SegmentCode.CHAMPIONS: (
        Tactic("premium", 0.30, "a premium pick for one of our best customers"),
        Tactic("new", 0.25, "new in store"),
    ),
    SegmentCode.LOYAL: (
        Tactic("premium", 0.25, "a premium choice in a category you love"),
        Tactic("new", 0.15, "new in store"),
    ),
    SegmentCode.POTENTIAL_LOYALIST: (
        Tactic("staples", 0.25, "a regular favourite of shoppers like you", in_favourites=True),
    ),
    SegmentCode.NEW: (Tactic("staples", 0.30, "an everyday essential our regulars rebuy"),),
    SegmentCode.PROMISING: (
        Tactic("staples", 0.25, "an everyday essential our regulars rebuy", in_favourites=True),
    ),
    SegmentCode.NEED_ATTENTION: (
        Tactic("favourites", 0.25, "one of your regulars"),
        Tactic("new", 0.10, "new in store"),
    ),
    SegmentCode.ABOUT_TO_SLEEP: (
        Tactic("favourites", 0.25, "one of your regulars"),
        Tactic("value", 0.15, "good value"),
    ),
    SegmentCode.AT_RISK: (Tactic("favourites", 0.35, "we miss you: one of your favourites"),),
    SegmentCode.CANT_LOSE: (
        Tactic("favourites", 0.40, "we miss you: one of your favourites"),
        Tactic("premium", 0.15, "a premium choice in a category you love"),
    ),
    SegmentCode.HIBERNATING: (Tactic("value", 0.20, "good value"),),
    SegmentCode.LOST: (Tactic("value", 0.15, "good value"),),
}
"""What each segment is offered (promotional: only with marketing consent). A customer with no
segment yet and fewer than two baskets is treated as NEW."""


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(
            f"limit must be between 1 and {MAX_LIMIT}, got {limit}",
            field="limit",
            code="LIMIT_OUT_OF_RANGE",
        )
    return limit


def _day(at: datetime) -> float:
    return at.timestamp() / SECONDS_PER_DAY


def _moment(days: float) -> datetime:
    return datetime.fromtimestamp(days * SECONDS_PER_DAY, UTC)


# -------------------------------------------------------------------------------------------
# The batch fit (runs in a worker thread)
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FittedRecommendations:
    model: RecommendationModel
    items: list[ItemProfile]


def _codes(values: Sequence[str]) -> np.ndarray:
    _, codes = np.unique(np.array(values, dtype=object), return_inverse=True)
    return np.asarray(codes, dtype=np.int64).reshape(-1)


def fit(
    products: Sequence[Product],
    purchases: Iterable[Purchase],
    as_of: datetime,
    *,
    fitted_at: datetime,
    utc_offset_hours: float = 0.0,
) -> FittedRecommendations:
    """Fit the co-occurrence, content and context model on the purchases up to ``as_of``."""
    sku_index = {p.sku: i for i, p in enumerate(products)}
    stores: dict[str, int] = {}
    customers: dict[str, int] = {}
    basket_rows: list[tuple[int, float, int]] = []
    entries: list[tuple[int, int]] = []
    offset = utc_offset_hours / 24.0
    for purchase in purchases:
        if purchase.purchased_at > as_of:
            continue
        skus = {sku_index[line.sku] for line in purchase.lines if line.sku in sku_index}
        if not skus:
            continue
        b = len(basket_rows)
        store = (
            stores.setdefault(purchase.store_id, len(stores))
            if purchase.store_id is not None
            else -1
        )
        customer = customers.setdefault(purchase.customer_id, len(customers))
        basket_rows.append((customer, _day(purchase.purchased_at) + offset, store))
        entries.extend((b, s) for s in skus)
    table = np.array(entries, dtype=np.int64).reshape(-1, 2)
    baskets = np.array(basket_rows, dtype=np.float64).reshape(-1, 3)
    items = BasketItems(
        basket=table[:, 0],
        sku=table[:, 1],
        basket_customer=baskets[:, 0].astype(np.int64),
        basket_at=baskets[:, 1],
        basket_store=baskets[:, 2].astype(np.int64),
        n_skus=len(products),
        n_stores=len(stores),
    )
    tag_names = sorted({t for p in products for t in p.tags})
    tag_index = {t: i for i, t in enumerate(tag_names)}
    tag_pairs = np.array(
        [(i, tag_index[t]) for i, p in enumerate(products) for t in set(p.tags)], dtype=np.int64
    ).reshape(-1, 2)
    descriptions = ItemDescriptions(
        category=_codes([p.category for p in products]),
        brand=_codes([p.brand for p in products]),
        tier=_codes([p.price_tier.value for p in products]),
        tags=sparse.csr_matrix(
            (np.ones(len(tag_pairs)), (tag_pairs[:, 0], tag_pairs[:, 1])),
            shape=(len(products), max(len(tag_names), 1)),
        ),
    )
    together = associations(items)
    alike = content_similarity(descriptions)
    stats = item_statistics(items)
    sku_names = [p.sku for p in products]
    store_names = sorted(stores, key=stores.__getitem__)
    sold = np.flatnonzero(stats.baskets > 0)
    profiles = [
        ItemProfile(
            sku=sku_names[i],
            baskets=int(stats.baskets[i]),
            buyers=int(stats.buyers[i]),
            repeat_share=round(float(stats.repeat_share[i]), 4),
            first_sold_at=_moment(float(stats.first_sold_at[i]) - offset),
            bought_with=tuple(
                Neighbour(
                    sku_names[int(j)],
                    int(together.baskets[i, k]),
                    round(float(together.score[i, k]), 4),
                    round(float(together.lift[i, k]), 3),
                )
                for k, j in enumerate(together.partner[i])
                if j >= 0
            ),
            alike=tuple(
                Alike(sku_names[int(j)], round(float(alike.score[i, k]), 4))
                for k, j in enumerate(alike.partner[i])
                if j >= 0
            ),
            daypart_lift=(
                round(float(stats.daypart_lift[i, 0]), 3),
                round(float(stats.daypart_lift[i, 1]), 3),
                round(float(stats.daypart_lift[i, 2]), 3),
            ),
            weekday_lift=tuple(round(float(v), 3) for v in stats.weekday_lift[i]),
            store_lift={
                store_names[s]: round(float(stats.store_lift[i, s]), 3)
                for s in range(len(store_names))
            },
        )
        for i in sold
    ]
    by_baskets = sold[np.argsort(-stats.baskets[sold], kind="stable")]
    enough = sold[stats.buyers[sold] >= max(3, int(np.median(stats.buyers[sold]) // 4))]
    staples = enough[np.argsort(-stats.repeat_share[enough], kind="stable")]
    recent = sold[stats.first_sold_at[sold] >= _day(as_of) + offset - NEW_ITEM_DAYS]
    newest = recent[np.argsort(-stats.first_sold_at[recent], kind="stable")]
    model = RecommendationModel(
        version=f"{ALGORITHMS}@{fitted_at.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        fitted_at=fitted_at,
        as_of=as_of,
        baskets=items.n_baskets,
        customers=len(customers),
        popular=tuple(sku_names[i] for i in by_baskets[:POOL]),
        staples=tuple(sku_names[i] for i in staples[:POOL]),
        newest=tuple(sku_names[i] for i in newest[:POOL]),
        skus=tuple(p.sku for p in profiles),
        utc_offset_hours=utc_offset_hours,
    )
    return FittedRecommendations(model, profiles)


# -------------------------------------------------------------------------------------------
# Scoring one customer (pure)
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerView:
    """Everything the recommender knows about one customer at one moment."""

    customer_id: str
    marketing_consent: bool
    segment: SegmentCode | None
    history: Sequence[Purchase]  # newest first
    predictions: CustomerPredictions | None


Explain = Callable[[], str]
"""Builds an explanation; only called for the recommendations returned."""


def _unexplained() -> str:
    return ""


Due = tuple[ConsumptionPattern, float, Status]


@dataclass
class _Candidate:
    parts: dict[RecommendationReason, tuple[float, Explain]] = field(default_factory=dict)

    def offer(self, reason: RecommendationReason, score: float, why: Explain) -> None:
        if score > self.parts.get(reason, (0.0, _unexplained))[0]:
            self.parts[reason] = (score, why)

    def blended(self) -> tuple[float, RecommendationReason, Explain]:
        """Noisy-OR of the sources (each a chance the customer takes the item up), and the
        source that contributed most."""
        miss = math.prod(1.0 - s for s, _ in self.parts.values())
        reason = max(self.parts, key=lambda r: self.parts[r][0])
        return 1.0 - miss, reason, self.parts[reason][1]


class Recommender:
    """Scores one customer's candidates (no I/O). See docs/recommendations.md."""

    def __init__(self, horizon_days: float = HORIZON_DAYS) -> None:
        self._horizon = horizon_days

    @staticmethod
    def seeds(view: CustomerView, context: RecommendationContext, due: Sequence[Due]) -> set[str]:
        """The skus whose profiles lead to candidates: the basket, the favourites, what is due."""
        found = set(context.basket)
        found.update(_favourites(view.history))
        found.update(p.sku for p, _, _ in due)
        return found

    def due(self, view: CustomerView, at: datetime) -> list[Due]:
        """The customer's cycles evaluated at ``at``: each pattern likely to be bought within
        the horizon, with that probability (times P(alive)) and its status."""
        return self._replenishment(view, _day(at))

    @staticmethod
    def pool(view: CustomerView, model: RecommendationModel) -> set[str]:
        """The base's popular, staple and new skus: candidates of the segment strategy, so
        only read for customers with marketing consent."""
        if not view.marketing_consent:
            return set()
        return {*model.popular, *model.staples, *model.newest}

    @staticmethod
    def reached(seeds: Iterable[str], profiles: Mapping[str, ItemProfile]) -> set[str]:
        """Skus reached from the seeds' partners and look-alikes."""
        out: set[str] = set()
        for s in seeds:
            if (profile := profiles.get(s)) is not None:
                out.update(n.sku for n in profile.bought_with)
                out.update(a.sku for a in profile.alike)
        return out

    def recommend(
        self,
        view: CustomerView,
        context: RecommendationContext,
        at: datetime,
        limit: int,
        model: RecommendationModel | None,
        profiles: Mapping[str, ItemProfile],
        products: Mapping[str, Product],
        due: Sequence[Due] | None = None,
    ) -> list[Recommendation]:
        now = _day(at)
        basket = [s for s in dict.fromkeys(context.basket) if s in products]
        candidates: dict[str, _Candidate] = {}

        def candidate(sku: str) -> _Candidate:
            found = candidates.get(sku)
            if found is None:
                found = candidates[sku] = _Candidate()
            return found

        # What the customer bought, and when last.
        last_bought: dict[str, float] = {}
        baskets_with: Counter[str] = Counter()
        for purchase in view.history:
            day = _day(purchase.purchased_at)
            for sku in {line.sku for line in purchase.lines}:
                baskets_with[sku] += 1
                last_bought[sku] = max(last_bought.get(sku, day), day)
        favourites = [s for s in _favourites(view.history) if s in products]
        categories = Counter(
            products[s].category for s, n in baskets_with.items() for _ in range(n) if s in products
        )
        favourite_categories = {c for c, _ in categories.most_common(FAVOURITE_CATEGORIES)}

        # REPLENISHMENT_DUE: the stored cycles, evaluated at ``at``.
        if due is None:
            due = self._replenishment(view, now)
        for pattern, p, status in due:
            candidate(pattern.sku).offer(
                RecommendationReason.REPLENISHMENT_DUE,
                p,
                partial(_why_due, products, pattern, status, now, p, self._horizon),
            )
        due_now = {p.sku for p, _, s in due if s in (Status.DUE_SOON, Status.OVERDUE)}

        # BOUGHT_TOGETHER: partners of the basket, of what is due, of the favourites.
        seed_weight: dict[str, float] = {}
        for sku in favourites:
            seed_weight[sku] = FAVOURITE_SEED_WEIGHT * baskets_with[sku] / len(view.history)
        for pattern, p, _ in due:
            seed_weight[pattern.sku] = max(seed_weight.get(pattern.sku, 0.0), p)
        for sku in basket:
            seed_weight[sku] = 1.0
        for seed, weight in seed_weight.items():
            profile = profiles.get(seed)
            if profile is None:
                continue
            for n in profile.bought_with:
                candidate(n.sku).offer(
                    RecommendationReason.BOUGHT_TOGETHER,
                    weight * n.confidence,
                    partial(_why_together, products, seed, n),
                )

        # SIMILAR: look-alikes of the favourites the customer has not bought.
        top = baskets_with[favourites[0]] if favourites else 1
        for sku in favourites:
            profile = profiles.get(sku)
            if profile is None:
                continue
            for a in profile.alike:
                if a.sku in baskets_with or a.sku not in products:
                    continue
                candidate(a.sku).offer(
                    RecommendationReason.SIMILAR,
                    SIMILAR_WEIGHT * a.similarity * math.sqrt(baskets_with[sku] / top),
                    partial(_why_similar, products[sku], products[a.sku]),
                )

        # SEGMENT_STRATEGY: promotional, only with marketing consent.
        segment = view.segment
        if segment is None and len(view.history) < 2:
            segment = SegmentCode.NEW
        if view.marketing_consent and model is not None and segment is not None:
            for tactic in STRATEGY.get(segment, ()):
                for sku, strength in self._pool(
                    tactic, model, profiles, products, baskets_with, last_bought, now,
                    favourite_categories, favourites,
                ):  # fmt: skip
                    candidate(sku).offer(
                        RecommendationReason.SEGMENT_STRATEGY,
                        tactic.weight * strength,
                        partial(_why_segment, tactic, segment),
                    )

        hour_part, day_of_week = self._context_levels(at, model)
        ranked: list[tuple[float, str, RecommendationReason, Explain, bool]] = []
        in_basket = set(basket)
        for sku, c in candidates.items():
            product = products.get(sku)
            if product is None or sku in in_basket or not c.parts:
                continue
            promo_tagged = bool(PROMOTION_TAGS.intersection(product.tags))
            if promo_tagged and not view.marketing_consent:
                continue
            if now - last_bought.get(sku, -math.inf) < JUST_BOUGHT_DAYS and sku not in due_now:
                continue
            score, reason, why = c.blended()
            factor = _context_factor(profiles.get(sku), hour_part, day_of_week, context.store_id)
            score = 1.0 - (1.0 - min(score, 1.0)) ** factor
            if score <= 0.0:
                continue
            promotional = promo_tagged or reason is RecommendationReason.SEGMENT_STRATEGY
            ranked.append((round(score, 4), sku, reason, why, promotional))
        ranked.sort(key=lambda r: (-r[0], r[1]))
        return [
            Recommendation(view.customer_id, sku, score, reason, why(), promotional)
            for score, sku, reason, why, promotional in ranked[:limit]
        ]

    def _replenishment(self, view: CustomerView, now: float) -> list[Due]:
        if view.predictions is None or not view.predictions.consumption:
            return []
        patterns = [p for p in view.predictions.consumption if p.purchases >= 2]
        if not patterns:
            return []
        timing = cycle_timing(
            [p.log_days_per_unit for p in patterns],
            [p.log_spread for p in patterns],
            [_day(p.last_purchased_at) for p in patterns],
            [p.last_quantity for p in patterns],
            now,
            within_days=self._horizon,
        )
        forecast = view.predictions.forecast
        p_alive = forecast.p_alive if forecast is not None else 1.0
        chance = timing.probability_within * p_alive
        keep = np.flatnonzero(chance >= MIN_REPLENISHMENT)
        return [(patterns[i], float(chance[i]), Status(int(timing.status[i]))) for i in keep]

    @staticmethod
    def _pool(
        tactic: Tactic,
        model: RecommendationModel,
        profiles: Mapping[str, ItemProfile],
        products: Mapping[str, Product],
        bought: Counter[str],
        last_bought: Mapping[str, float],
        now: float,
        favourite_categories: set[str],
        favourites: Sequence[str],
    ) -> list[tuple[str, float]]:
        """(sku, strength in (0, 1]) of a tactic's pool."""

        def in_categories(sku: str) -> bool:
            return sku in products and products[sku].category in favourite_categories

        def by_popularity(skus: Iterable[str]) -> list[tuple[str, float]]:
            counted = [(s, profiles[s].baskets) for s in skus if s in profiles]
            most = max((n for _, n in counted), default=0)
            return [(s, math.sqrt(n / most)) for s, n in counted if most > 0]

        if tactic.pool == "favourites":
            quiet = [
                s for s in favourites if now - last_bought.get(s, -math.inf) >= WIN_BACK_QUIET_DAYS
            ]
            most = max((bought[s] for s in quiet), default=0)
            return [(s, math.sqrt(bought[s] / most)) for s in quiet if most > 0]
        if tactic.pool == "staples":
            skus = [
                s
                for s in model.staples
                if s not in bought
                and s in profiles
                and (not tactic.in_favourites or in_categories(s))
            ]
            return [(s, profiles[s].repeat_share) for s in skus if profiles[s].repeat_share > 0]
        if tactic.pool == "new":
            return by_popularity(s for s in model.newest if s not in bought)
        tier = PriceTier.PREMIUM if tactic.pool == "premium" else PriceTier.BUDGET
        return by_popularity(
            s
            for s in profiles
            if s not in bought and in_categories(s) and products[s].price_tier is tier
        )

    @staticmethod
    def _context_levels(at: datetime, model: RecommendationModel | None) -> tuple[int, int]:
        offset = model.utc_offset_hours / 24.0 if model is not None else 0.0
        local = np.array([_day(at) + offset])
        return int(daypart(local)[0]), int(weekday(local)[0])


def _context_factor(
    profile: ItemProfile | None, hour_part: int, day_of_week: int, store: str | None
) -> float:
    """How much the moment and the store favour the sku: the product of its daypart, weekday
    and store lifts, softened (square root) and bounded."""
    if profile is None:
        return 1.0
    lift = profile.daypart_lift[hour_part] * profile.weekday_lift[day_of_week]
    if store is not None:
        lift *= profile.store_lift.get(store, 1.0)
    low, high = CONTEXT_RANGE
    return float(min(max(lift**CONTEXT_EXPONENT, low), high))


def _favourites(history: Sequence[Purchase]) -> list[str]:
    """The customer's most bought skus (by baskets), most first."""
    counts = Counter(sku for p in history for sku in {line.sku for line in p.lines})
    return [s for s, _ in counts.most_common(FAVOURITES)]


_STATES = {Status.DUE_SOON: "due", Status.OVERDUE: "overdue", Status.LAPSED: "lapsed"}


def _why_due(
    products: Mapping[str, Product],
    pattern: ConsumptionPattern,
    status: Status,
    now: float,
    chance: float,
    horizon: float,
) -> str:
    ago = now - _day(pattern.last_purchased_at)
    return (
        f"{_name(products, pattern.sku)} is {_STATES.get(status, 'coming up')}: bought about "
        f"every {pattern.mean_interval_days:.0f} days, last {ago:.0f} days ago; "
        f"{chance:.0%} likely within {horizon:.0f} days"
    )


def _why_together(products: Mapping[str, Product], seed: str, n: Neighbour) -> str:
    return (
        f"bought with {_name(products, seed)} in {n.confidence:.0%} of its baskets "
        f"(lift {n.lift:.1f})"
    )


def _why_similar(seed: Product, other: Product) -> str:
    return f"like {seed.name}, which you buy often ({_shared(seed, other)})"


def _why_segment(tactic: Tactic, segment: SegmentCode) -> str:
    return f"{tactic.note} ({segment.value.replace('_', ' ').lower()} offer)"


def _name(products: Mapping[str, Product], sku: str) -> str:
    product = products.get(sku)
    return product.name if product is not None else sku


def _shared(seed: Product, other: Product) -> str:
    shared = [seed.category]
    if seed.brand == other.brand:
        shared.append(f"brand {seed.brand}")
    if seed.price_tier is other.price_tier:
        shared.append(f"{seed.price_tier.value.lower()} tier")
    shared.extend(sorted(set(seed.tags) & set(other.tags))[:2])
    return ", ".join(shared)


# -------------------------------------------------------------------------------------------
# The service
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FitReport:
    model_version: str
    skus: int
    baskets: int
    pairs: int
    seconds: float


class RecommendationService:
    def __init__(
        self,
        store: RecommendationStore,
        products: ProductStore,
        purchases: PurchaseStore,
        clock: Clock,
        *,
        predictions: PredictionSource | None = None,
        segments: SegmentSource | None = None,
        utc_offset_hours: float = 0.0,
        recommender: Recommender | None = None,
    ) -> None:
        self._store = store
        self._products = products
        self._purchases = purchases
        self._clock = clock
        self._predictions = predictions
        self._segments = segments
        self._utc_offset_hours = utc_offset_hours
        self._recommender = recommender or Recommender()
        self._model: RecommendationModel | None = None
        self._model_read_at = -math.inf
        self.last_fit: FitReport | None = None
        self._cache: dict[str, ItemProfile] = {}
        self._cached_version: str | None = None
        self._product_cache: dict[str, Product] = {}
        self._products_read_at = -math.inf

    def use_segments(self, segments: SegmentSource) -> None:
        self._segments = segments

    async def model(self) -> RecommendationModel | None:
        """The current model, re-read at most once a minute (another process may refit)."""
        if time.monotonic() - self._model_read_at >= MODEL_TTL_SECONDS:
            self._model = await self._store.current_model()
            self._model_read_at = time.monotonic()
        return self._model

    async def refit(
        self,
        products: Sequence[Product],
        customers: Sequence[Customer],
        purchases: Sequence[Purchase],
        as_of: datetime,
    ) -> None:
        """Fit on the base a recompute has read and store the model as the current one."""
        started = time.perf_counter()
        fitted = await asyncio.to_thread(
            fit,
            products,
            purchases,
            as_of,
            fitted_at=self._clock.now(),
            utc_offset_hours=self._utc_offset_hours,
        )
        await self._store.save_model(fitted.model, fitted.items)
        self._model = fitted.model
        self._model_read_at = time.monotonic()
        self.last_fit = FitReport(
            model_version=fitted.model.version,
            skus=len(fitted.items),
            baskets=fitted.model.baskets,
            pairs=sum(len(i.bought_with) for i in fitted.items),
            seconds=time.perf_counter() - started,
        )
        log.info(
            "recommendation model %s: %d skus, %d pairs from %d baskets",
            fitted.model.version, len(fitted.items), self.last_fit.pairs, fitted.model.baskets,
        )  # fmt: skip

    async def for_customer(
        self, customer: Customer, *, limit: int = 10, context: RecommendationContext | None = None
    ) -> list[Recommendation]:
        """Up to ``limit`` (1..50) products for this customer, best first, each with its score,
        reason and explanation. Basket skus missing from the catalogue are ignored."""
        check_limit(limit)
        context = context or RecommendationContext()
        if len(context.basket) > MAX_BASKET:
            raise ValidationError(
                f"a basket holds at most {MAX_BASKET} skus, got {len(context.basket)}",
                field="context.basket",
                code="BASKET_TOO_LARGE",
            )
        at = context.at or self._clock.now()
        if at.tzinfo is None:
            raise ValidationError("context.at needs a time zone", field="context.at")
        model, pages, predictions, segments = await asyncio.gather(
            self.model(),
            self._purchases.list_for_customers([PurchasePageRequest(customer.id, HISTORY_BASKETS)]),
            (self._predictions or _no_predictions)([customer.id]),
            (self._segments or _no_segments)([customer.id]),
        )
        view = CustomerView(
            customer_id=customer.id,
            marketing_consent=customer.consent.marketing,
            segment=segments.get(customer.id),
            history=[p for p in pages[0].items if p.purchased_at <= at],
            predictions=predictions.get(customer.id),
        )
        return await recommend_with(
            self._recommender, view, context, at, limit, model, self._profiles, self._catalogue
        )

    async def _profiles(self, version: str, skus: Sequence[str]) -> dict[str, ItemProfile]:
        """Profiles never change within a version, so they are kept once read."""
        if version != self._cached_version:
            self._cache.clear()
            self._cached_version = version
        found = {s: p for s in skus if (p := self._cache.get(s)) is not None}
        missing = [s for s in skus if s not in found]
        if missing:
            read = await self._store.items(version, missing)
            if len(self._cache) + len(read) > PROFILE_CACHE:
                self._cache.clear()
            self._cache.update(read)
            found.update(read)
        return found

    async def _catalogue(self, skus: Sequence[str]) -> dict[str, Product]:
        """Product descriptions (name, category, tier, tags) kept for up to a minute: the
        recommender reads a couple of hundred per request and the catalogue rarely changes.
        The API resolves each recommended product afresh."""
        if time.monotonic() - self._products_read_at >= PRODUCT_TTL_SECONDS:
            self._product_cache.clear()
            self._products_read_at = time.monotonic()
        found = {s: p for s in skus if (p := self._product_cache.get(s)) is not None}
        missing = [s for s in skus if s not in found]
        if missing:
            read = await self._products.get_many(missing)
            self._product_cache.update(read)
            found.update(read)
        return found


async def _no_segments(customer_ids: Sequence[str]) -> Mapping[str, SegmentCode]:
    return {}


async def _no_predictions(customer_ids: Sequence[str]) -> Mapping[str, CustomerPredictions]:
    return {}


ProfileLookup = Callable[[str, Sequence[str]], Awaitable[Mapping[str, ItemProfile]]]
ProductLookup = Callable[[Sequence[str]], Awaitable[Mapping[str, Product]]]


async def recommend_with(
    recommender: Recommender,
    view: CustomerView,
    context: RecommendationContext,
    at: datetime,
    limit: int,
    model: RecommendationModel | None,
    profiles_of: ProfileLookup,
    products_of: ProductLookup,
) -> list[Recommendation]:
    """Read what scoring one customer needs (the seeds' profiles, then the candidates' profiles
    and products: keyed reads, never a scan) and score."""
    due = recommender.due(view, at)
    seeds = recommender.seeds(view, context, due)
    profiles: dict[str, ItemProfile] = {}
    if model is not None:
        first = seeds | recommender.pool(view, model)
        profiles.update(await profiles_of(model.version, sorted(first)))
        more = recommender.reached(seeds, profiles) - first
        if more:
            profiles.update(await profiles_of(model.version, sorted(more)))
    history = {line.sku for p in view.history for line in p.lines}
    products = dict(await products_of(sorted(seeds | history | set(profiles))))
    return recommender.recommend(view, context, at, limit, model, profiles, products, due)


# -------------------------------------------------------------------------------------------
# Offline evaluation
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scores:
    precision: float
    recall: float
    new_recall: float
    """Recall of the items bought in the window that the customer had never bought before."""


@dataclass(frozen=True, slots=True)
class RecommendationEvaluation:
    as_of: datetime
    days: int
    k: int
    customers: int
    """Customers with a history before ``as_of`` and a purchase in the window."""
    customers_with_new_items: int
    model: Scores
    popularity: Scores
    reasons: Mapping[str, int]
    """How many of the model's top-k recommendations each reason gave."""

    @property
    def recall_ratio(self) -> float:
        return self.model.recall / self.popularity.recall if self.popularity.recall else math.inf


def evaluate(
    products: Sequence[Product],
    customers: Sequence[Customer],
    purchases: Sequence[Purchase],
    as_of: datetime,
    *,
    days: int = 30,
    k: int = 10,
    segments: Mapping[str, SegmentCode] | None = None,
    settings: PredictionSettings | None = None,
) -> RecommendationEvaluation:
    """Cut the history at ``as_of``, fit everything on what came before (consumption cycles,
    forecasts, the recommendation model), recommend ``k`` items to every customer at that moment
    with no basket, and compare with what each bought in the next ``days``: precision@k (hits
    over k) and recall@k (hits over the distinct skus bought), averaged over customers. A
    repurchase counts as a hit: reminding a customer of a staple is a real recommendation.
    The baseline recommends the ``k`` skus in most baskets before ``as_of`` to everyone.
    Blocking: run it in a thread or a CLI."""
    check_limit(k)
    end = as_of + timedelta(days=days)
    before = [p for p in purchases if p.purchased_at <= as_of]
    window = [p for p in purchases if as_of < p.purchased_at <= end]
    if not before or not window:
        raise ValidationError(
            f"evaluation needs purchases before {as_of:%Y-%m-%d} and in the {days} days after",
            field="as_of",
        )
    by_id = {c.id: c for c in customers}
    predicted = {
        p.customer_id: p
        for p in predict(products, customers, before, as_of, settings or PredictionSettings())
    }
    fitted = fit(products, before, as_of, fitted_at=as_of)
    profiles = {i.sku: i for i in fitted.items}
    catalogue = {p.sku: p for p in products}
    histories: dict[str, list[Purchase]] = {}
    for p in sorted(before, key=lambda p: p.purchased_at, reverse=True):
        histories.setdefault(p.customer_id, []).append(p)
    ever: dict[str, set[str]] = {
        cid: {line.sku for p in h for line in p.lines} for cid, h in histories.items()
    }
    truth: dict[str, set[str]] = {}
    for p in window:
        truth.setdefault(p.customer_id, set()).update(line.sku for line in p.lines)

    async def profiles_of(version: str, skus: Sequence[str]) -> dict[str, ItemProfile]:
        return {s: profiles[s] for s in skus if s in profiles}

    async def products_of(skus: Sequence[str]) -> dict[str, Product]:
        return {s: catalogue[s] for s in skus if s in catalogue}

    recommender = Recommender()
    baseline = list(fitted.model.popular[:k])
    model_scores: list[tuple[float, float, float | None]] = []
    base_scores: list[tuple[float, float, float | None]] = []
    reasons: Counter[str] = Counter()
    context = RecommendationContext(at=as_of)

    async def run() -> None:
        for cid in sorted(truth):
            if cid not in histories or cid not in by_id:
                continue
            view = CustomerView(
                customer_id=cid,
                marketing_consent=by_id[cid].consent.marketing,
                segment=(segments or {}).get(cid),
                history=histories[cid][:HISTORY_BASKETS],
                predictions=predicted.get(cid),
            )
            recs = await recommend_with(
                recommender, view, context, as_of, k, fitted.model, profiles_of, products_of
            )
            reasons.update(r.reason.value for r in recs)
            bought, new = truth[cid], truth[cid] - ever[cid]
            model_scores.append(_score([r.sku for r in recs], bought, new, k))
            base_scores.append(_score(baseline, bought, new, k))

    asyncio.run(run())
    return RecommendationEvaluation(
        as_of=as_of,
        days=days,
        k=k,
        customers=len(model_scores),
        customers_with_new_items=sum(s[2] is not None for s in model_scores),
        model=_mean(model_scores),
        popularity=_mean(base_scores),
        reasons=dict(reasons),
    )


@dataclass(frozen=True, slots=True)
class Base:
    products: list[Product]
    customers: list[Customer]
    purchases: list[Purchase]


async def read_base(
    customers: CustomerStore, products: ProductStore, purchases: PurchaseStore, *, page: int = 100
) -> Base:
    """Every product, customer and purchase of the stores (for an offline evaluation)."""
    found = Base([], [], [])
    after: str | None = None
    while True:
        product_page = await products.list(first=page, after=after, category=None)
        found.products.extend(product_page.items)
        if not product_page.has_next_page:
            break
        after = product_page.end_cursor
    after = None
    while True:
        customer_page = await customers.list(first=page, after=after, search=None)
        found.customers.extend(customer_page.items)
        cursors: dict[str, str | None] = dict.fromkeys(c.id for c in customer_page.items)
        while cursors:
            requests = [PurchasePageRequest(c, page, a) for c, a in cursors.items()]
            pages = await purchases.list_for_customers(requests)
            for pages_of in pages:
                found.purchases.extend(pages_of.items)
            cursors = {
                r.customer_id: p.end_cursor
                for r, p in zip(requests, pages, strict=True)
                if p.has_next_page
            }
        if not customer_page.has_next_page:
            return found
        after = customer_page.end_cursor


def _score(
    recommended: Sequence[str], bought: set[str], new: set[str], k: int
) -> tuple[float, float, float | None]:
    hits = len(set(recommended) & bought)
    new_recall = len(set(recommended) & new) / len(new) if new else None
    return hits / k, hits / len(bought), new_recall


def _mean(scores: Sequence[tuple[float, float, float | None]]) -> Scores:
    if not scores:
        return Scores(0.0, 0.0, 0.0)
    new = [s[2] for s in scores if s[2] is not None]
    return Scores(
        precision=float(np.mean([s[0] for s in scores])),
        recall=float(np.mean([s[1] for s in scores])),
        new_recall=float(np.mean(new)) if new else 0.0,
    )
