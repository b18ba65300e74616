"""Builders and in-memory fakes for the analyst's unit tests."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.analysis import (
    AiUsage,
    AiUsageGroup,
    AnalysisInput,
    AnalystAnswer,
    AnalystError,
    ModelUsage,
)
from domain.customers import Consent, Customer
from domain.errors import StoreUnavailableError
from domain.ports import AiUsageStore
from domain.predictions import (
    Affluence,
    ChurnRiskBand,
    ConsumptionPattern,
    ConsumptionStatus,
    CustomerForecast,
    CustomerPredictions,
    SocioeconomicProfile,
)
from domain.products import PriceTier, Product
from domain.purchases import Purchase, PurchaseLine
from domain.services.local_analyst import LocalAnalyst

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

PRODUCTS = {
    p.sku: p
    for p in (
        Product("MILK", "Whole milk 1 l", "Dairy", "Alpine", PriceTier.STANDARD, 1.0, "l", 119),
        Product("BREAD", "White loaf", "Bakery", "Hearth", PriceTier.BUDGET, 800, "g", 95),
        Product("COFFEE", "Coffee beans", "Beverages", "Ridge", PriceTier.PREMIUM, 250, "g", 899),
        Product("EGGS", "Free-range eggs", "Dairy", "Hen", PriceTier.STANDARD, 6, "pc", 249),
        Product("CHOC", "Dark chocolate", "Snacks", "Cacao", PriceTier.PREMIUM, 100, "g", 199),
    )
}


def customer(customer_id: str = "cus_1", *, profiling: bool = False) -> Customer:
    return Customer(
        id=customer_id,
        created_at=NOW - timedelta(days=400),
        name="Ada Lovelace",
        email=f"ada.{customer_id}@example.com",
        consent=Consent(analytics=True, ai_profiling=profiling),
    )


def purchases(
    customer_id: str = "cus_1", n: int = 25, *, every_days: float = 3.0
) -> list[Purchase]:
    return [
        Purchase(
            id=f"pur_{customer_id}_{i:03d}",
            customer_id=customer_id,
            purchased_at=NOW - timedelta(days=every_days * (i + 1)),
            lines=(PurchaseLine("MILK", 2, 119), PurchaseLine("CHOC", 1, 199, 20)),
            store_id="store_01",
        )
        for i in range(n)
    ]


def pattern(
    sku: str,
    *,
    mean_days: float,
    last_days_ago: float,
    customer_id: str = "cus_1",
    spread: float = 0.2,
) -> ConsumptionPattern:
    """A staple bought one unit at a time every ``mean_days``, last ``last_days_ago``."""
    last = NOW - timedelta(days=last_days_ago)
    return ConsumptionPattern(
        customer_id=customer_id,
        sku=sku,
        purchases=8,
        mean_interval_days=mean_days,
        units_per_day=1 / mean_days,
        last_purchased_at=last,
        last_quantity=1,
        next_expected_at=last + timedelta(days=mean_days),
        window_low=last + timedelta(days=mean_days * 0.8),
        window_high=last + timedelta(days=mean_days * 1.2),
        status=ConsumptionStatus.ON_TRACK,
        confidence=0.8,
        log_days_per_unit=math.log(mean_days),
        log_spread=spread,
        computed_at=NOW - timedelta(days=2),
        model_version="test",
    )


def forecast(
    customer_id: str = "cus_1", *, risk: ChurnRiskBand = ChurnRiskBand.LOW
) -> CustomerForecast:
    return CustomerForecast(
        customer_id=customer_id,
        frequency=40,
        recency_days=395.0,
        age_days=398.0,
        p_alive=0.95 if risk is ChurnRiskBand.LOW else 0.2,
        expected_transactions=30.0,
        horizon_days=365.0,
        expected_spend_cents=1234.5,
        clv_cents=30000.0,
        monetary_cents=1200.0,
        churn_risk=risk,
        overdue_staples=1,
        computed_at=NOW - timedelta(days=2),
        model_version="test",
    )


def profile(customer_id: str = "cus_1") -> SocioeconomicProfile:
    return SocioeconomicProfile(
        customer_id=customer_id,
        affluence=Affluence.PREMIUM,
        confidence=0.7,
        affluence_score=1.1,
        drivers=("price_index", "tier_share_premium"),
        household_size=2.4,
        tier_share_budget=0.1,
        tier_share_standard=0.4,
        tier_share_premium=0.5,
        relative_price_index=1.2,
        promotion_share=0.05,
        lines_per_basket=4.0,
        spend_per_basket_cents=2500.0,
        categories_per_basket=3.0,
        category_entropy=1.5,
        units_per_week=10.0,
        weekend_share=0.3,
        morning_share=0.3,
        afternoon_share=0.4,
        evening_share=0.3,
        computed_at=NOW - timedelta(days=2),
        model_version="test",
    )


def predictions(
    customer_id: str = "cus_1", *, risk: ChurnRiskBand = ChurnRiskBand.LOW
) -> CustomerPredictions:
    return CustomerPredictions(
        customer_id=customer_id,
        consumption=(
            pattern("MILK", mean_days=7, last_days_ago=7, customer_id=customer_id),  # due soon
            pattern("BREAD", mean_days=7, last_days_ago=12, customer_id=customer_id),  # overdue
            pattern("COFFEE", mean_days=14, last_days_ago=2, customer_id=customer_id),  # on track
            pattern("EGGS", mean_days=5, last_days_ago=40, customer_id=customer_id),  # lapsed
        ),
        forecast=forecast(customer_id, risk=risk),
        profile=profile(customer_id),
    )


class RecordingUsageStore:
    """A usage store that keeps what it was given for assertions and can be taken down."""

    def __init__(self, inner: AiUsageStore) -> None:
        self._inner = inner
        self.records: list[AiUsage] = []
        self.down = False

    async def record(self, usage: AiUsage) -> None:
        if self.down:
            raise StoreUnavailableError("usage store is down")
        self.records.append(usage)
        await self._inner.record(usage)

    async def totals(self, *, since: datetime | None, until: datetime | None) -> list[AiUsageGroup]:
        return await self._inner.totals(since=since, until=until)


@dataclass
class ScriptedAnalyst:
    """Answers like the local analyst with a model's name and cost, or fails as scripted."""

    failures: list[AnalystError] = field(default_factory=list)
    delay: float = 0.0
    calls: list[AnalysisInput] = field(default_factory=list)
    model: str = "test-model"
    prompt_version: str = "test.v1"

    async def analyse(self, given: AnalysisInput) -> AnalystAnswer:
        self.calls.append(given)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures:
            raise self.failures.pop(0)
        body = LocalAnalyst().answer(given)
        return AnalystAnswer(
            body, self.model, self.prompt_version, ModelUsage(1000, 200, Decimal("0.0005"))
        )
