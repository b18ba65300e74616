"""The realtime anomaly processor, the periodic sweep, and the reads behind the API.

For each batch of events, in log order, :meth:`AnomalyService.around_update` brackets the
prediction update of the batch's customers:

1. the detectors that judge a purchase against the state *before* it (BASKET_SPIKE, BURST,
   EARLY_REPURCHASE against the stored pattern, SALES_RATE on the aggregate stream) run and
   their anomalies are stored, with the sales-rate state, in one transaction;
2. the predictions are updated;
3. CHURN_RISK compares each customer's stored P(alive) before and after the update, and a
   SegmentChanged into AT_RISK or CANT_LOSE is one too; these are stored;
4. each new anomaly about a customer gets an insight written through the analyst port.

Only then does the caller move its checkpoint. Every anomaly's id follows from its cause and
window (``dedup_key``), the store keeps one per key and writes its AnomalyDetected event in the
same transaction (an outbox), so a redelivered batch or a restart after a crash at any step
stores and announces nothing twice; and since step 1 is stored before the predictions change,
a crash between steps never loses what the before-state showed. A CHURN_RISK missed by a crash
between steps 2 and 3 is found by the sweep, which reads P(alive) at the current moment.

The sweep (:meth:`AnomalyService.sweep`, every OMNIX_ANOMALY_SWEEP_SECONDS in ``omnix serve``)
finds what only the passing of time reveals: OVERDUE staples, P(alive) decaying below the
threshold, and sales-rate hours that closed without any purchase.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.analysis import CustomerAnalysis
from domain.analytics.detectors import (
    BasketSpikeRule,
    BurstRule,
    ChurnRule,
    EarlyRepurchaseRule,
    Finding,
    OverdueRule,
    SalesRateBaseline,
    SalesRateRule,
    StapleWindow,
    basket_spike,
    burst,
    churn_risk,
    early_repurchase,
    overdue,
    segment_slide,
)
from domain.anomalies import Anomaly, Insight, Severity, anomaly_id, insight_id
from domain.clock import Clock
from domain.errors import DomainError, NotFoundError, ValidationError
from domain.events import (
    CONSENT_CHANGED,
    PURCHASE_RECORDED,
    SEGMENT_CHANGED,
    DomainEvent,
    purchase_from_payload,
)
from domain.ids import is_valid_id
from domain.pagination import Page, check_page_size
from domain.ports import (
    AnomalyStore,
    CustomerStore,
    InsightStore,
    PredictionStore,
    ProductStore,
    PurchasePageRequest,
    PurchaseStore,
)
from domain.predictions import ConsumptionPattern, ConsumptionStatus, CustomerPredictions
from domain.purchases import Purchase

log = logging.getLogger("omnix.anomalies")

SALES_RATE_STATE = "sales_rate"
LIVE_SOURCES = frozenset({"api"})
"""Purchases judged one by one. Imported and seeded history is bulk data, often backdated:
judging it basket by basket would report the past as news."""

Analyse = Callable[[str], Awaitable[CustomerAnalysis]]
Predict = Callable[[Sequence[str]], Awaitable[dict[str, CustomerPredictions]]]


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    basket_spike: BasketSpikeRule = field(default_factory=BasketSpikeRule)
    early_repurchase: EarlyRepurchaseRule = field(default_factory=EarlyRepurchaseRule)
    overdue: OverdueRule = field(default_factory=OverdueRule)
    churn: ChurnRule = field(default_factory=ChurnRule)
    burst: BurstRule = field(default_factory=BurstRule)
    sales_rate: SalesRateRule = field(default_factory=SalesRateRule)
    history: int = 60
    """Earlier baskets read per customer (the BASKET_SPIKE and BURST history)."""
    sweep_page: int = 100


@dataclass
class AnomalyStats:
    detected: int = 0
    stored: int = 0
    insights: int = 0
    sweeps: int = 0
    insight_failures: int = 0


def _window(p: ConsumptionPattern) -> StapleWindow:
    return StapleWindow(
        sku=p.sku,
        purchases=p.purchases,
        confidence=p.confidence,
        last_purchased_at=p.last_purchased_at,
        next_expected_at=p.next_expected_at,
        window_low=p.window_low,
        window_high=p.window_high,
    )


class AnomalyService:
    """Finds, stores and explains anomalies; answers the anomaly and insight queries."""

    def __init__(
        self,
        *,
        anomalies: AnomalyStore,
        insights: InsightStore,
        predictions: PredictionStore,
        evaluate: Predict,
        customers: CustomerStore,
        purchases: PurchaseStore,
        products: ProductStore,
        clock: Clock,
        analyse: Analyse | None = None,
        analyst_model: str = "detector",
        settings: DetectorSettings | None = None,
    ) -> None:
        self._anomalies = anomalies
        self._insights = insights
        self._predictions = predictions
        self._evaluate = evaluate
        self._customers = customers
        self._purchases = purchases
        self._products = products
        self._clock = clock
        self._analyse = analyse
        self._analyst_model = analyst_model
        self.settings = settings or DetectorSettings()
        self._sales: SalesRateBaseline | None = None
        self._categories: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._new: set[str] = set()
        self.stats = AnomalyStats()

    # -----------------------------------------------------------------------------------------
    # The processor
    # -----------------------------------------------------------------------------------------

    async def around_update(
        self, events: Sequence[DomainEvent], update: Callable[[], Awaitable[int]]
    ) -> int:
        """Run the detectors around ``update`` (the prediction update of these events'
        customers); returns what ``update`` returned. Raises when a store fails, leaving the
        caller's checkpoint where it was: the batch is handled again, and what was stored is
        found stored."""
        async with self._lock:
            purchases = [
                (e, purchase_from_payload(e.payload["purchase"]))
                for e in events
                if e.type == PURCHASE_RECORDED and e.payload.get("source") in LIVE_SOURCES
            ]
            live = list(dict.fromkeys(p.customer_id for _, p in purchases))
            before = await self._predictions.get_many(live) if live else {}
            histories = await self._histories(live)
            findings: list[tuple[str | None, Finding]] = [
                (e.id, f)
                for e, p in purchases
                for f in self._purchase_findings(p, before.get(p.customer_id), histories)
            ]
            findings.extend(await self._sales_findings(purchases))
            sales = self._sales
            state = (SALES_RATE_STATE, json.dumps(sales.to_state())) if sales else None
            stored = await self._store(findings, state=state if purchases else None)

            updated = await update()

            after = await self._predictions.get_many(live) if live else {}
            late: list[tuple[str | None, Finding]] = [
                (e.id, f) for e, f in self._churn_findings(before, after, purchases)
            ]
            late.extend(self._segment_findings(events))
            stored += await self._store(late)
            await self._explain(stored)
            return updated

    def _purchase_findings(
        self,
        purchase: Purchase,
        before: CustomerPredictions | None,
        histories: dict[str, list[Purchase]],
    ) -> list[Finding]:
        rules = self.settings
        key = (purchase.purchased_at, purchase.id)
        earlier = sorted(
            (p for p in histories.get(purchase.customer_id, []) if (p.purchased_at, p.id) < key),
            key=lambda p: (p.purchased_at, p.id),
        )
        found: list[Finding] = []
        spike = basket_spike(
            purchase.customer_id,
            purchase.id,
            purchase.total,
            [p.total for p in earlier],
            rule=rules.basket_spike,
        )
        if spike:
            found.append(spike)
        run = [*earlier, purchase]
        fast = burst(
            purchase.customer_id,
            [p.id for p in run],
            [p.purchased_at for p in run],
            rule=rules.burst,
        )
        if fast:
            found.append(fast)
        patterns = {c.sku: c for c in before.consumption} if before else {}
        quantities: dict[str, int] = {}
        for line in purchase.lines:
            quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
        for sku, quantity in quantities.items():
            pattern = patterns.get(sku)
            if pattern is None:
                continue
            window = _shifted(_window(pattern), earlier, sku)
            early = early_repurchase(
                purchase.customer_id,
                purchase.id,
                purchase.purchased_at,
                quantity,
                window,
                rule=rules.early_repurchase,
            )
            if early:
                found.append(early)
        return found

    async def _sales_findings(
        self, purchases: Sequence[tuple[DomainEvent, Purchase]]
    ) -> list[tuple[str | None, Finding]]:
        if not purchases:
            return []
        sales = await self._sales_baseline()
        skus = {line.sku for _, p in purchases for line in p.lines} - self._categories.keys()
        if skus:
            products = await self._products.get_many(sorted(skus))
            self._categories.update({sku: p.category for sku, p in products.items()})
        found: list[tuple[str | None, Finding]] = []
        for event, p in purchases:
            keys = [f"store:{p.store_id}"] if p.store_id else []
            keys += [
                f"category:{self._categories[line.sku]}"
                for line in p.lines
                if line.sku in self._categories
            ]
            found += [(event.id, f) for f in sales.observe(event.id, p.purchased_at, keys)]
        return found

    def _churn_findings(
        self,
        before: dict[str, CustomerPredictions],
        after: dict[str, CustomerPredictions],
        purchases: Sequence[tuple[DomainEvent, Purchase]],
    ) -> list[tuple[DomainEvent, Finding]]:
        last_event: dict[str, tuple[DomainEvent, Purchase]] = {}
        for event, p in purchases:
            last_event[p.customer_id] = (event, p)
        found = []
        for customer_id, (event, purchase) in last_event.items():
            now = after.get(customer_id)
            if now is None or now.forecast is None:
                continue
            was = before.get(customer_id)
            previous = was.forecast.p_alive if was and was.forecast else None
            finding = churn_risk(
                customer_id,
                previous,
                now.forecast.p_alive,
                anchor=purchase.purchased_at,
                clv_cents=now.forecast.clv_cents,
                rule=self.settings.churn,
            )
            if finding:
                found.append((event, finding))
        return found

    def _segment_findings(self, events: Sequence[DomainEvent]) -> list[tuple[str | None, Finding]]:
        found: list[tuple[str | None, Finding]] = []
        for e in events:
            if e.type != SEGMENT_CHANGED:
                continue
            migration = e.payload.get("migration") or {}
            finding = segment_slide(
                e.customer_id,
                str(migration.get("id", e.id)),
                str(migration.get("from", "")),
                str(migration.get("to", "")),
                rule=self.settings.churn,
            )
            if finding:
                found.append((e.id, finding))
        return found

    # -----------------------------------------------------------------------------------------
    # The sweep
    # -----------------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Judge every customer's stored predictions at the current moment (OVERDUE staples,
        P(alive) below the threshold) and close the sales-rate hours that have passed; returns
        how many anomalies were newly stored."""
        async with self._lock:
            now = self._clock.now()
            stored: list[Anomaly] = []
            self._new = set()
            sales = await self._sales_baseline()
            closed = [(None, f) for f in sales.advance(now)]
            state = (SALES_RATE_STATE, json.dumps(sales.to_state()))
            stored += await self._store(closed, state=state)
            after: str | None = None
            while True:
                page = await self._customers.list(
                    first=self.settings.sweep_page, after=after, search=None
                )
                ids = [c.id for c in page.items]
                stored += await self._store(await self._sweep_customers(ids, now))
                if not page.has_next_page:
                    break
                after = page.end_cursor
            await self._explain(stored)
            self.stats.sweeps += 1
            return sum(a.id in self._new for a in stored)

    async def _sweep_customers(
        self, ids: Sequence[str], now: datetime
    ) -> list[tuple[str | None, Finding]]:
        if not ids:
            return []
        stored, current = await asyncio.gather(self._predictions.get_many(ids), self._evaluate(ids))
        found: list[tuple[str | None, Finding]] = []
        for customer_id, predictions in stored.items():
            evaluated = current.get(customer_id)
            for pattern in evaluated.consumption if evaluated else ():
                if pattern.status is not ConsumptionStatus.OVERDUE:
                    continue
                late = overdue(customer_id, _usual(pattern), now, rule=self.settings.overdue)
                if late:
                    found.append((None, late))
            if predictions.forecast and evaluated and evaluated.forecast:
                anchor = max(
                    (p.last_purchased_at for p in predictions.consumption),
                    default=predictions.forecast.computed_at,
                )
                risk = churn_risk(
                    customer_id,
                    predictions.forecast.p_alive,
                    evaluated.forecast.p_alive,
                    anchor=anchor,
                    clv_cents=evaluated.forecast.clv_cents,
                    rule=self.settings.churn,
                )
                if risk:
                    found.append((None, risk))
        return found

    async def run_sweeps(self, interval: float) -> None:
        """Sweep every ``interval`` seconds until cancelled; a failure is logged and retried
        at the next interval."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("anomaly sweep failed; retrying in %.0f s", interval)

    # -----------------------------------------------------------------------------------------
    # Storing and explaining
    # -----------------------------------------------------------------------------------------

    async def _store(
        self,
        findings: Iterable[tuple[str | None, Finding]],
        *,
        state: tuple[str, str] | None = None,
    ) -> list[Anomaly]:
        now = self._clock.now()
        anomalies = [
            Anomaly(
                id=anomaly_id(f.dedup_key),
                kind=f.kind,
                severity=f.severity,
                score=f.score,
                customer_id=f.customer_id,
                subject=f.subject,
                explanation=f.explanation,
                evidence=f.evidence,
                detected_at=now,
                dedup_key=f.dedup_key,
                source_event_id=source,
            )
            for source, f in dict((f.dedup_key, (s, f)) for s, f in findings).values()
        ]
        if not anomalies and state is None:
            return []
        known = await self._anomalies.get_many([a.id for a in anomalies])
        stored = await self._anomalies.record(anomalies, state=state)
        self.stats.detected += len(anomalies)
        self.stats.stored += sum(a.id not in known for a in stored)
        self._new.update(a.id for a in stored if a.id not in known)
        return stored

    async def _explain(self, anomalies: Sequence[Anomaly]) -> None:
        """An insight for each anomaly about a customer that has none yet (one analysis per
        customer)."""
        about = [a for a in anomalies if a.customer_id is not None]
        if not about:
            return
        have = await self._insights.for_anomalies([a.id for a in about])
        missing = [a for a in about if a.id not in have]
        analyses: dict[str, CustomerAnalysis | None] = {}
        for customer_id in dict.fromkeys(a.customer_id for a in missing if a.customer_id):
            analyses[customer_id] = await self._analysis(customer_id)
        now = self._clock.now()
        insights = [
            _insight(a, analyses.get(a.customer_id or ""), now, self._analyst_model)
            for a in missing
        ]
        stored = await self._insights.record(insights)
        self.stats.insights += sum(i.created_at == now for i in stored)

    async def _analysis(self, customer_id: str) -> CustomerAnalysis | None:
        if self._analyse is None:
            return None
        try:
            return await self._analyse(customer_id)
        except DomainError as e:
            self.stats.insight_failures += 1
            log.warning("no analysis for the insight on %s: %s", customer_id, e)
            return None

    async def _sales_baseline(self) -> SalesRateBaseline:
        if self._sales is None:
            raw = await self._anomalies.load_state(SALES_RATE_STATE)
            rule = self.settings.sales_rate
            self._sales = (
                SalesRateBaseline.from_state(json.loads(raw), rule)
                if raw
                else SalesRateBaseline(rule=rule)
            )
        return self._sales

    async def _histories(self, customer_ids: Sequence[str]) -> dict[str, list[Purchase]]:
        if not customer_ids:
            return {}
        n = min(self.settings.history, 100)
        pages = await self._purchases.list_for_customers(
            [PurchasePageRequest(c, n) for c in customer_ids]
        )
        return {c: page.items for c, page in zip(customer_ids, pages, strict=True)}

    # -----------------------------------------------------------------------------------------
    # Reads
    # -----------------------------------------------------------------------------------------

    async def anomalies(
        self,
        *,
        first: int = 20,
        after: str | None = None,
        min_severity: Severity | None = None,
        since: datetime | None = None,
    ) -> Page[Anomaly]:
        """Stored anomalies, newest first, at least ``min_severity`` and detected at or after
        ``since``."""
        check_page_size(first)
        if since is not None and since.tzinfo is None:
            raise ValidationError("since needs a time zone", field="since")
        return await self._anomalies.recent(
            first=first, after=after, min_severity=min_severity, since=since
        )

    async def insights(
        self, customer_id: str, *, first: int = 20, after: str | None = None
    ) -> Page[Insight]:
        """A customer's insights, newest first."""
        check_page_size(first)
        if not is_valid_id(customer_id):
            raise NotFoundError("customer", customer_id, field="customerId")
        return await self._insights.for_customer(customer_id, first=first, after=after)

    async def anomalies_after(
        self, position: int, *, limit: int, min_severity: Severity | None = None
    ) -> list[Anomaly]:
        """Stored anomalies after ``position``, oldest first, at least ``min_severity``: what a
        subscriber that last saw ``position`` missed (0: from the beginning)."""
        check_page_size(limit)
        return await self._anomalies.after(position, limit=limit, min_severity=min_severity)

    async def insights_after(
        self, position: int, *, limit: int, customer_id: str | None = None
    ) -> list[Insight]:
        """Stored insights after ``position``, oldest first, of one customer or of all."""
        check_page_size(limit)
        return await self._insights.after(position, limit=limit, customer_id=customer_id)


def _usual(p: ConsumptionPattern) -> StapleWindow:
    """An OVERDUE staple's unconditional timing: the stored window moves on as days pass
    without a purchase (it is conditional on the time elapsed), so the sweep measures lateness
    against the usual gap from the last purchase instead."""
    usual = p.last_purchased_at + timedelta(days=p.mean_interval_days)
    return StapleWindow(
        sku=p.sku,
        purchases=p.purchases,
        confidence=p.confidence,
        last_purchased_at=p.last_purchased_at,
        next_expected_at=usual,
        window_low=usual,
        window_high=usual,
    )


def _shifted(window: StapleWindow, earlier: Sequence[Purchase], sku: str) -> StapleWindow:
    """The window as seen from the latest earlier purchase of ``sku`` when that is newer than
    the stored pattern's (two purchases of a staple in one batch: the second is judged from
    the first)."""
    latest = max(
        (p.purchased_at for p in earlier if any(line.sku == sku for line in p.lines)),
        default=None,
    )
    if latest is None or latest <= window.last_purchased_at:
        return window
    shift = latest - window.last_purchased_at
    return StapleWindow(
        sku=window.sku,
        purchases=window.purchases + 1,
        confidence=window.confidence,
        last_purchased_at=latest,
        next_expected_at=window.next_expected_at + shift,
        window_low=window.window_low + shift,
        window_high=window.window_high + shift,
    )


def _insight(
    anomaly: Anomaly, analysis: CustomerAnalysis | None, at: datetime, default_model: str
) -> Insight:
    parts = [anomaly.explanation]
    model = default_model
    if analysis is not None:
        body = analysis.body
        parts.append(body.summary)
        if body.actions:
            action = body.actions[0]
            parts.append(f"Suggested: {action.title} ({action.rationale})")
        model = analysis.model
    assert anomaly.customer_id is not None
    return Insight(
        id=insight_id(anomaly.id),
        customer_id=anomaly.customer_id,
        text=" ".join(parts),
        anomaly_id=anomaly.id,
        created_at=at,
        model=model,
    )


class AnomalyHandler:
    """The processor as a stream handler (``omnix worker`` on Kinesis): the prediction update
    of each batch's customers, bracketed by the detectors."""

    def __init__(self, service: AnomalyService, update: Callable[[Sequence[str]], Awaitable[int]]):
        self._service = service
        self._update = update

    async def handle(self, events: Sequence[DomainEvent]) -> None:
        customers = [
            e.customer_id for e in events if e.type in (PURCHASE_RECORDED, CONSENT_CHANGED)
        ]
        await self._service.around_update(events, lambda: self._update(customers))
