"""Segmentation in the product: refit, live assignment, the sweep, and reads.

* :meth:`SegmentService.refit` reads every customer's history, fits the RFM boundaries (over the
  active base) and the K-means clusters, stores the model, assigns everyone and stores the KPIs.
* :meth:`SegmentService.update` re-assigns a few customers after their purchases against the
  stored model: their own histories are read, never the base.
* :meth:`SegmentService.sweep` re-scores every stored segment at the current moment from the
  stored behaviour (no history is read): recency grows while a customer buys nothing, so idle
  customers slide towards AT_RISK, HIBERNATING and LOST. It also re-measures the KPIs.

A change of segment is stored as a :class:`SegmentMigration` with its SegmentChanged event, in
one write per customer (the store's outbox), conditional on the assignment it replaces. The
numerical work runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from domain.analytics.profile import customer_features, profile_inputs
from domain.analytics.segments import (
    DEFAULT_ACTIVE_WINDOW_DAYS,
    FEATURES,
    SEGMENTS,
    BehaviourArrays,
    Boundaries,
    FloatArray,
    IntArray,
    Scores,
    centroids_in_units,
    feature_matrix,
    fit_clusters,
    nearest_cluster,
    overlap,
    rfm_boundaries,
    rfm_scores,
    segment_kpis,
)
from domain.clock import Clock
from domain.customers import Customer
from domain.errors import ValidationError
from domain.events import segment_changed
from domain.pagination import Page, check_page_size
from domain.ports import (
    Cache,
    CustomerStore,
    ProductStore,
    PurchaseStore,
    SegmentStore,
    SegmentWriter,
)
from domain.predictions import CustomerPredictions
from domain.products import Product
from domain.purchases import Purchase
from domain.segments import (
    SEGMENT_NAMES,
    Behaviour,
    CustomerSegment,
    MigrationReason,
    RfmBoundaries,
    Segment,
    SegmentAssignment,
    SegmentChange,
    SegmentCluster,
    SegmentCode,
    SegmentKpis,
    SegmentMigration,
    SegmentModel,
    SegmentStrategy,
    SegmentSummary,
    SegmentText,
)
from domain.services.reading import (
    CUSTOMERS_PER_READ,
    Progress,
    all_customers,
    all_products,
    histories,
)

log = logging.getLogger(__name__)

ALGORITHMS = "rfm1-kmeans1"
"""Names the algorithms behind a model version; change it whenever the maths changes."""

SECONDS_PER_DAY = 86_400.0
SAVE_CHUNK = 500
SCAN_PAGE = 500
STAPLE_MIN_PURCHASES = 3
TEXT_TTL_SECONDS = 24 * 3600.0

PredictionLookup = Callable[[Sequence[str]], Awaitable[dict[str, CustomerPredictions]]]
"""Stored predictions of some customers (PredictionService.for_customers)."""


@dataclass(frozen=True, slots=True)
class SegmentSettings:
    active_window_days: float = DEFAULT_ACTIVE_WINDOW_DAYS
    seed: int = 0


@dataclass(frozen=True, slots=True)
class RefitReport:
    model_version: str | None
    customers: int
    assigned: int
    migrations: int
    k: int
    silhouette: float
    read_seconds: float
    compute_seconds: float
    save_seconds: float
    skipped_reason: str | None = None


@dataclass(frozen=True, slots=True)
class SweepReport:
    customers: int
    rescored: int
    migrations: int
    seconds: float
    skipped_reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Assigned:
    """Customers scored together: their behaviour and what it scored."""

    customer_ids: list[str]
    behaviours: list[Behaviour]
    scores: Scores
    cluster: IntArray
    features: FloatArray
    clv: FloatArray


class SegmentService:
    def __init__(
        self,
        store: SegmentStore,
        customers: CustomerStore,
        products: ProductStore,
        purchases: PurchaseStore,
        predictions: PredictionLookup | None,
        writer: SegmentWriter,
        cache: Cache,
        clock: Clock,
        settings: SegmentSettings | None = None,
    ) -> None:
        self._store = store
        self._customers = customers
        self._products = products
        self._purchases = purchases
        self._predictions = predictions
        self._writer = writer
        self._cache = cache
        self._clock = clock
        self._settings = settings or SegmentSettings()
        self._model: SegmentModel | None = None
        self._lock = asyncio.Lock()

    @property
    def settings(self) -> SegmentSettings:
        return self._settings

    async def model(self) -> SegmentModel | None:
        """The current model (read once, then kept until a refit replaces it)."""
        if self._model is None:
            self._model = await self._store.current_model()
        return self._model

    # ---------------------------------------------------------------------------------------
    # Reads
    # ---------------------------------------------------------------------------------------

    async def assignments(self, customer_ids: Sequence[str]) -> dict[str, SegmentAssignment]:
        """Each customer's stored segment; customers without one (no purchase yet) are absent."""
        stored = await self._store.get_many(list(customer_ids))
        return {cid: record.assignment for cid, record in stored.items()}

    async def segment_codes(self, customer_ids: Sequence[str]) -> dict[str, SegmentCode]:
        """Each customer's segment code; customers without one are absent."""
        found = await self.assignments(customer_ids)
        return {cid: a.segment for cid, a in found.items()}

    async def segment_of(self, customer_id: str) -> str | None:
        """The code of one customer's segment, or None."""
        found = await self.assignments([customer_id])
        return found[customer_id].segment.value if customer_id in found else None

    async def segments(self) -> list[Segment]:
        """Every named segment with its description, strategy and latest KPIs."""
        summary = await self._store.summary()
        model = await self.model()
        by_code = {k.segment: k for k in summary.kpis} if summary else {}
        kpis = [by_code.get(code) or SegmentKpis(code, 0, 0.0, 0.0, 0.0, 0.0) for code in SEGMENTS]
        measured = summary.measured_at.isoformat() if summary else "never"
        texts = await asyncio.gather(*(self._text(k, model, measured) for k in kpis))
        return [
            Segment(
                code=k.segment,
                name=SEGMENT_NAMES[k.segment],
                text=text,
                kpis=k,
                measured_at=summary.measured_at if summary else None,
            )
            for k, text in zip(kpis, texts, strict=True)
        ]

    async def clusters(self) -> tuple[SegmentCluster, ...]:
        """The behaviour clusters of the current model (none before the first refit)."""
        model = await self.model()
        return model.clusters if model is not None else ()

    async def _text(
        self, kpis: SegmentKpis, model: SegmentModel | None, measured: str
    ) -> SegmentText:
        """The writer's text for these figures, cached until the KPIs are measured again."""
        version = model.version if model else "none"
        key = f"segment-text:v1:{self._writer.name}:{version}:{measured}:{kpis.segment.value}"
        cached = await self._cache.get(key)
        if cached is not None:
            return text_from_cache(cached)
        text = await self._writer.write(kpis, model)
        await self._cache.set(key, text_to_cache(text), ttl_seconds=TEXT_TTL_SECONDS)
        return text

    async def migrations(
        self,
        *,
        first: int,
        after: str | None,
        from_segment: SegmentCode | None,
        to_segment: SegmentCode | None,
        since: datetime | None,
    ) -> Page[SegmentMigration]:
        """Migrations between segments, oldest first."""
        check_page_size(first)
        _check_aware(since, "since")
        return await self._store.migrations(
            first=first, after=after, from_segment=from_segment, to_segment=to_segment, since=since
        )

    async def migration_matrix(
        self, *, since: datetime | None, until: datetime | None
    ) -> dict[tuple[SegmentCode, SegmentCode], int]:
        """How many customers moved from each segment to each other in ``[since, until)``."""
        _check_aware(since, "since")
        _check_aware(until, "until")
        if since is not None and until is not None and until <= since:
            raise ValidationError("until must be after since", field="until", code="EMPTY_INTERVAL")
        return await self._store.migration_counts(since=since, until=until)

    # ---------------------------------------------------------------------------------------
    # Writes
    # ---------------------------------------------------------------------------------------

    async def refit(self, *, progress: Progress | None = None) -> RefitReport:
        """Refit the boundaries and clusters on everyone and re-assign everyone."""
        report = progress or _no_progress
        async with self._lock:
            started = time.perf_counter()
            products = await self._all_products()
            customers = await self._all_customers(report)
            behaviour = await self._behaviour(customers, products, report)
            read_seconds = time.perf_counter() - started
            if not behaviour.customer_ids:
                return RefitReport(
                    None, len(customers), 0, 0, 0, 0.0, read_seconds, 0.0, 0.0,
                    skipped_reason="no purchases to learn from",
                )  # fmt: skip
            report("computing", 0, len(behaviour.customer_ids))
            started = time.perf_counter()
            now = self._clock.now()
            model, assigned = await asyncio.to_thread(_fit, behaviour, now, self._settings)
            compute_seconds = time.perf_counter() - started
            report("computing", len(behaviour.customer_ids), len(behaviour.customer_ids))

            started = time.perf_counter()
            await self._store.save_model(model)
            self._model = model
            migrations = 0
            total = len(assigned.customer_ids)
            for i in range(0, total, SAVE_CHUNK):
                part = _slice(assigned, i, i + SAVE_CHUNK)
                stored, _ = await self._apply(part, model, now, MigrationReason.REFIT)
                migrations += stored
                report("saving", min(i + SAVE_CHUNK, total), total)
            await self._store.save_summary(_summary(assigned, model, now, self._settings))
            return RefitReport(
                model_version=model.version,
                customers=len(customers),
                assigned=total,
                migrations=migrations,
                k=len(model.centroids),
                silhouette=model.silhouette,
                read_seconds=read_seconds,
                compute_seconds=compute_seconds,
                save_seconds=time.perf_counter() - started,
            )

    async def update(self, customer_ids: Iterable[str]) -> int:
        """Re-assign these customers from their histories against the stored model; returns
        how many migrated. Before the first refit there is no model: this runs one."""
        ids = list(dict.fromkeys(customer_ids))
        if not ids:
            return 0
        model = await self.model()
        if model is None:
            return (await self.refit()).migrations
        migrations = 0
        for _attempt in range(3):
            async with self._lock:
                found = await self._customers.get_many(ids)
                known = [found[i] for i in ids if i in found]
                if not known:
                    return migrations
                products = await self._all_products()
                behaviour = await self._behaviour(known, products)
                if not behaviour.customer_ids:
                    return migrations
                now = self._clock.now()
                assigned = await asyncio.to_thread(_assign, behaviour, model, now)
                stored, lost = await self._apply(assigned, model, now, MigrationReason.PURCHASE)
                migrations += stored
            if not lost:
                return migrations
            ids = lost  # another writer got there first: score them again on what it stored
        log.warning("segments of %d customers kept changing under the update", len(ids))
        return migrations

    async def sweep(self) -> SweepReport:
        """Re-score every stored segment at the current moment and re-measure the KPIs."""
        started = time.perf_counter()
        model = await self.model()
        if model is None:
            return SweepReport(0, 0, 0, 0.0, skipped_reason="no segmentation model yet")
        now = self._clock.now()
        parts: list[_Assigned] = []
        rescored = migrations = customers = 0
        after: str | None = None
        while True:
            page = await self._store.scan(after=after, limit=SCAN_PAGE)
            if page.items:
                async with self._lock:
                    # Re-read under the lock: an update may have replaced some since the scan.
                    current = await self._store.get_many([r.assignment.customer_id
                                                          for r in page.items])  # fmt: skip
                    records = list(current.values())
                    assigned = await asyncio.to_thread(_rescore, records, model, now)
                    changed = _changed(assigned, current, model)
                    if changed is not None:
                        stored, _ = await self._apply(changed, model, now, MigrationReason.SWEEP)
                        migrations += stored
                        rescored += len(changed.customer_ids)
                customers += len(assigned.customer_ids)
                parts.append(assigned)
            if not page.has_next_page:
                break
            after = page.end_cursor
        if parts:
            await self._store.save_summary(_summary(_concat(parts), model, now, self._settings))
        return SweepReport(customers, rescored, migrations, time.perf_counter() - started)

    # ---------------------------------------------------------------------------------------
    # Storing
    # ---------------------------------------------------------------------------------------

    async def _apply(
        self, assigned: _Assigned, model: SegmentModel, now: datetime, reason: MigrationReason
    ) -> tuple[int, list[str]]:
        """Store the new assignments; returns how many migrations were stored and the
        customers whose stored assignment changed under us (nothing stored for them)."""
        existing = await self._store.get_many(assigned.customer_ids)
        changes = [
            _change(record, existing.get(record.assignment.customer_id), now, reason)
            for record in _records(assigned, model, now)
        ]
        applied = await self._store.apply(changes)
        done = {c.record.assignment.customer_id for c in applied}
        lost = [c.record.assignment.customer_id for c in changes
                if c.record.assignment.customer_id not in done]  # fmt: skip
        return sum(c.migration is not None for c in applied), lost

    # ---------------------------------------------------------------------------------------
    # Reading the base
    # ---------------------------------------------------------------------------------------

    async def _all_products(self) -> list[Product]:
        return await all_products(self._products)

    async def _all_customers(self, progress: Progress) -> list[Customer]:
        return await all_customers(self._customers, progress)

    async def _behaviour(
        self,
        customers: Sequence[Customer],
        products: Sequence[Product],
        progress: Progress | None = None,
    ) -> _Behaviours:
        """Every purchase and the stored predictions of each customer, summarised."""
        ids = [c.id for c in customers]
        purchases: list[Purchase] = []
        predictions: dict[str, CustomerPredictions] = {}
        for start in range(0, len(ids), CUSTOMERS_PER_READ):
            chunk = ids[start : start + CUSTOMERS_PER_READ]
            for history in (await histories(self._purchases, chunk)).values():
                purchases.extend(history)
            if self._predictions is not None:
                predictions.update(await self._predictions(chunk))
            if progress is not None:
                progress("reading", min(start + CUSTOMERS_PER_READ, len(ids)), len(ids))
        return await asyncio.to_thread(_summarise, products, customers, purchases, predictions)


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def _check_aware(moment: datetime | None, field: str) -> None:
    if moment is not None and moment.utcoffset() is None:
        raise ValidationError(f"{field} needs a time zone", field=field, code="NAIVE_DATETIME")


def text_to_cache(text: SegmentText) -> str:
    return "\x1f".join((text.description, text.strategy.offer, text.strategy.avoid,
                        text.written_by))  # fmt: skip


def text_from_cache(raw: str) -> SegmentText:
    description, offer, avoid, written_by = raw.split("\x1f")
    return SegmentText(description, SegmentStrategy(offer, avoid), written_by)


# -------------------------------------------------------------------------------------------
# The computation (runs in a worker thread)
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Behaviours:
    customer_ids: list[str]
    arrays: BehaviourArrays
    clv: FloatArray


def _day(at: datetime) -> float:
    return at.timestamp() / SECONDS_PER_DAY


def _moment(day: float) -> datetime:
    return datetime.fromtimestamp(day * SECONDS_PER_DAY, UTC)


def _summarise(
    products: Sequence[Product],
    customers: Sequence[Customer],
    purchases: Sequence[Purchase],
    predictions: dict[str, CustomerPredictions],
) -> _Behaviours:
    """Per customer with a purchase: first and last purchase, purchases, spend, regularity
    (from the consumption cycles), basket diversity and price index (from the lines)."""
    index = {c.id: i for i, c in enumerate(customers)}
    rows = np.array(
        [
            (index[p.customer_id], _day(p.purchased_at),
             sum(ln.quantity * ln.unit_price - ln.discount for ln in p.lines))
            for p in purchases
            if p.customer_id in index
        ],
        dtype=np.float64,
    ).reshape(-1, 3)  # fmt: skip
    n = len(customers)
    owner = rows[:, 0].astype(np.int64)
    count = np.bincount(owner, minlength=n).astype(np.float64)
    spend = np.bincount(owner, weights=rows[:, 2], minlength=n).astype(np.float64)
    first = np.full(n, np.inf)
    last = np.full(n, -np.inf)
    np.minimum.at(first, owner, rows[:, 1])
    np.maximum.at(last, owner, rows[:, 1])
    inputs = profile_inputs(products, customers, purchases)
    features = customer_features(inputs.lines, inputs.catalogue, np.ones(n, dtype=bool))
    diversity = np.nan_to_num(features.category_entropy, nan=0.0)
    price_index = np.nan_to_num(features.relative_price_index, nan=1.0)
    regularity = np.zeros(n)
    clv = np.full(n, np.nan)
    for cid, p in predictions.items():
        i = index.get(cid)
        if i is None:
            continue
        spreads = [c.log_spread for c in p.consumption if c.purchases >= STAPLE_MIN_PURCHASES]
        if spreads:
            regularity[i] = float(np.mean(np.exp(-np.asarray(spreads))))
        if p.forecast is not None and math.isfinite(p.forecast.clv_cents):
            clv[i] = p.forecast.clv_cents
    bought = np.flatnonzero(count > 0)
    return _Behaviours(
        customer_ids=[customers[int(i)].id for i in bought],
        arrays=BehaviourArrays(
            first_day=first[bought],
            last_day=last[bought],
            purchases=count[bought],
            spend_cents=spend[bought],
            regularity=regularity[bought],
            diversity=diversity[bought],
            price_index=price_index[bought],
        ),
        clv=clv[bought],
    )


def _version(fitted_at: datetime) -> str:
    return f"{ALGORITHMS}@{fitted_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"


def _fit(
    behaviour: _Behaviours, now: datetime, settings: SegmentSettings
) -> tuple[SegmentModel, _Assigned]:
    features = feature_matrix(behaviour.arrays, _day(now))
    boundaries = rfm_boundaries(features, settings.active_window_days)
    scores = rfm_scores(features, boundaries)
    clusters = fit_clusters(features, seed=settings.seed)
    cluster = nearest_cluster(features, clusters.centre, clusters.scale, clusters.centroids)
    shares = overlap(cluster, scores.segment, clusters.k)
    units = centroids_in_units(clusters)
    sizes = np.bincount(cluster, minlength=clusters.k)
    model = SegmentModel(
        version=_version(now),
        fitted_at=now,
        active_window_days=settings.active_window_days,
        boundaries=RfmBoundaries(
            recency_days=tuple(float(x) for x in boundaries.recency_days),
            frequency=tuple(float(x) for x in boundaries.frequency),
            monetary_cents=tuple(float(x) for x in boundaries.monetary_cents),
        ),
        features=FEATURES,
        centre=tuple(float(x) for x in clusters.centre),
        scale=tuple(float(x) for x in clusters.scale),
        centroids=tuple(tuple(float(x) for x in row) for row in clusters.centroids),
        clusters=tuple(
            SegmentCluster(
                index=c,
                size=int(sizes[c]),
                centroid=tuple((name, float(units[c, j])) for j, name in enumerate(FEATURES)),
                segments=tuple(
                    (SEGMENTS[s], round(float(shares[c, s]), 4))
                    for s in np.argsort(-shares[c])
                    if shares[c, s] >= 0.10
                ),
            )
            for c in range(clusters.k)
        ),
        silhouette=clusters.silhouette,
        customers=len(behaviour.customer_ids),
    )
    assigned = _Assigned(
        behaviour.customer_ids, _behaviour_records(behaviour), scores, cluster, features,
        behaviour.clv,
    )  # fmt: skip
    return model, assigned


def _boundaries(model: SegmentModel) -> Boundaries:
    b = model.boundaries
    return Boundaries(
        recency_days=np.array(b.recency_days),
        frequency=np.array(b.frequency),
        monetary_cents=np.array(b.monetary_cents),
    )


def _score(features: FloatArray, model: SegmentModel) -> tuple[Scores, IntArray]:
    scores = rfm_scores(features, _boundaries(model))
    cluster = nearest_cluster(
        features, np.array(model.centre), np.array(model.scale), np.array(model.centroids)
    )
    return scores, cluster


def _assign(behaviour: _Behaviours, model: SegmentModel, now: datetime) -> _Assigned:
    features = feature_matrix(behaviour.arrays, _day(now))
    scores, cluster = _score(features, model)
    return _Assigned(
        behaviour.customer_ids, _behaviour_records(behaviour), scores, cluster, features,
        behaviour.clv,
    )  # fmt: skip


def _behaviour_records(behaviour: _Behaviours) -> list[Behaviour]:
    a = behaviour.arrays
    return [
        Behaviour(
            first_purchased_at=_moment(float(a.first_day[i])),
            last_purchased_at=_moment(float(a.last_day[i])),
            purchases=int(a.purchases[i]),
            spend_cents=round(float(a.spend_cents[i])),
            regularity=float(a.regularity[i]),
            diversity=float(a.diversity[i]),
            price_index=float(a.price_index[i]),
            clv_cents=None if math.isnan(behaviour.clv[i]) else float(behaviour.clv[i]),
        )
        for i in range(len(behaviour.customer_ids))
    ]


def _rescore(records: Sequence[CustomerSegment], model: SegmentModel, now: datetime) -> _Assigned:
    """Score stored behaviour at ``now``, without reading any history."""
    behaviours = [r.behaviour for r in records]
    arrays = BehaviourArrays(
        first_day=np.array([_day(b.first_purchased_at) for b in behaviours]),
        last_day=np.array([_day(b.last_purchased_at) for b in behaviours]),
        purchases=np.array([b.purchases for b in behaviours], dtype=np.float64),
        spend_cents=np.array([b.spend_cents for b in behaviours], dtype=np.float64),
        regularity=np.array([b.regularity for b in behaviours]),
        diversity=np.array([b.diversity for b in behaviours]),
        price_index=np.array([b.price_index for b in behaviours]),
    )
    features = feature_matrix(arrays, _day(now))
    scores, cluster = _score(features, model)
    clv = np.array([np.nan if b.clv_cents is None else b.clv_cents for b in behaviours])
    return _Assigned(
        [r.assignment.customer_id for r in records], behaviours, scores, cluster, features, clv
    )


def _changed(
    assigned: _Assigned, current: dict[str, CustomerSegment], model: SegmentModel
) -> _Assigned | None:
    """The rows whose scores, segment, cluster or model differ from what is stored."""
    keep = []
    s = assigned.scores
    for i, cid in enumerate(assigned.customer_ids):
        a = current[cid].assignment
        if (
            a.segment != SEGMENTS[int(s.segment[i])]
            or a.recency_score != int(s.recency[i])
            or a.frequency_score != int(s.frequency[i])
            or a.monetary_score != int(s.monetary[i])
            or a.cluster != int(assigned.cluster[i])
            or a.model_version != model.version
        ):
            keep.append(i)
    if not keep:
        return None
    return _take(assigned, np.array(keep, dtype=np.int64))


def _take(assigned: _Assigned, rows: IntArray) -> _Assigned:
    s = assigned.scores
    return _Assigned(
        customer_ids=[assigned.customer_ids[i] for i in rows],
        behaviours=[assigned.behaviours[i] for i in rows],
        scores=Scores(s.recency[rows], s.frequency[rows], s.monetary[rows], s.segment[rows]),
        cluster=assigned.cluster[rows],
        features=assigned.features[rows],
        clv=assigned.clv[rows],
    )


def _slice(assigned: _Assigned, start: int, stop: int) -> _Assigned:
    return _take(assigned, np.arange(start, min(stop, len(assigned.customer_ids))))


def _concat(parts: Sequence[_Assigned]) -> _Assigned:
    return _Assigned(
        customer_ids=[c for p in parts for c in p.customer_ids],
        behaviours=[b for p in parts for b in p.behaviours],
        scores=Scores(
            np.concatenate([p.scores.recency for p in parts]),
            np.concatenate([p.scores.frequency for p in parts]),
            np.concatenate([p.scores.monetary for p in parts]),
            np.concatenate([p.scores.segment for p in parts]),
        ),
        cluster=np.concatenate([p.cluster for p in parts]),
        features=np.concatenate([p.features for p in parts]),
        clv=np.concatenate([p.clv for p in parts]),
    )


def _records(assigned: _Assigned, model: SegmentModel, now: datetime) -> list[CustomerSegment]:
    s = assigned.scores
    return [
        CustomerSegment(
            assignment=SegmentAssignment(
                customer_id=cid,
                segment=SEGMENTS[int(s.segment[i])],
                recency_score=int(s.recency[i]),
                frequency_score=int(s.frequency[i]),
                monetary_score=int(s.monetary[i]),
                cluster=int(assigned.cluster[i]),
                assigned_at=now,
                model_version=model.version,
            ),
            behaviour=assigned.behaviours[i],
        )
        for i, cid in enumerate(assigned.customer_ids)
    ]


def migration_id(customer_id: str, to: SegmentCode, at: datetime) -> str:
    digest = hashlib.sha256(f"{customer_id}|{to.value}|{at.isoformat()}".encode()).hexdigest()
    return f"mig_{digest[:26]}"


def _change(
    record: CustomerSegment,
    previous: CustomerSegment | None,
    now: datetime,
    reason: MigrationReason,
) -> SegmentChange:
    expected = previous.assignment if previous is not None else None
    new = record.assignment
    if expected is None or expected.segment == new.segment:
        return SegmentChange(record, expected)
    migration = SegmentMigration(
        id=migration_id(new.customer_id, new.segment, now),
        customer_id=new.customer_id,
        from_segment=expected.segment,
        to_segment=new.segment,
        at=now,
        reason=reason,
        model_version=new.model_version,
    )
    return SegmentChange(record, expected, migration, segment_changed(migration))


def _summary(
    assigned: _Assigned, model: SegmentModel, now: datetime, settings: SegmentSettings
) -> SegmentSummary:
    table = segment_kpis(
        assigned.scores.segment, assigned.features, assigned.clv, settings.active_window_days
    )
    return SegmentSummary(
        measured_at=now,
        model_version=model.version,
        customers=len(assigned.customer_ids),
        kpis=tuple(
            SegmentKpis(
                segment=code,
                size=int(table[i, 0]),
                revenue_share=float(table[i, 1]),
                average_clv_cents=float(table[i, 2]),
                average_frequency=float(table[i, 3]),
                share_active=float(table[i, 4]),
            )
            for i, code in enumerate(SEGMENTS)
        ),
    )
