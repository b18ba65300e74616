"""What the prediction engine says about a customer: consumption cycles per product, the
customer-level forecast, and the socioeconomic profile. Every reading is evaluated at the moment
of the request from the stored model; ``computedAt`` and ``modelVersion`` say which fit it
comes from."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from domain.predictions import Affluence as DomainAffluence
from domain.predictions import ChurnRiskBand as DomainChurnRisk
from domain.predictions import ConsumptionPattern as DomainPattern
from domain.predictions import ConsumptionStatus as DomainStatus
from domain.predictions import CustomerForecast as DomainForecast
from domain.predictions import SocioeconomicProfile as DomainProfile
from domain.services.predictions import PredictionService
from schema.context import Context
from schema.scalars import Money
from schema.types.products import Product

ConsumptionStatus = strawberry.enum(
    DomainStatus,
    name="ConsumptionStatus",
    description="Where a product stands in the customer's cycle: ON_TRACK, DUE_SOON (the "
    "usual window opens within a day), OVERDUE (past the 90th percentile of the usual gap), "
    "LAPSED (past twice that: the habit has most likely stopped).",
)
ChurnRisk = strawberry.enum(DomainChurnRisk, name="ChurnRisk")
Affluence = strawberry.enum(DomainAffluence, name="Affluence")


def _service(info: Info[Context, None]) -> PredictionService:
    service = info.context.services.predictions
    if service is None:
        raise RuntimeError("predictions are not configured")
    return service


@strawberry.type(
    description="How one customer consumes one product: the cycle learnt from their purchases "
    "(time per unit, so buying two packs predicts about twice the gap), and the next purchase "
    "predicted given the time already elapsed."
)
class ConsumptionPattern:
    sku: strawberry.ID
    purchases: int = strawberry.field(description="Purchase days of this product so far.")
    mean_interval_days: float = strawberry.field(
        description="Expected days between purchases at the customer's usual quantity."
    )
    units_per_day: float | None
    last_purchased_at: datetime
    next_expected_at: datetime = strawberry.field(
        description="Median of the next purchase given none so far; never in the past."
    )
    window_low: datetime = strawberry.field(description="10th percentile (80% window).")
    window_high: datetime = strawberry.field(description="90th percentile (80% window).")
    status: DomainStatus
    confidence: float = strawberry.field(
        description="0..1: how much of the estimate is the customer's own data, and how regular."
    )
    computed_at: datetime
    model_version: str
    _entity: strawberry.Private[DomainPattern]
    _p_alive: strawberry.Private[float]

    @strawberry.field(description="The product.")
    async def product(self, info: Info[Context, None]) -> Product:
        product = await info.context.loaders.product.load(self._entity.sku)
        if product is None:
            raise LookupError(f"product {self._entity.sku} is not in the catalogue")
        return Product.from_domain(product)

    @strawberry.field(
        description="Probability of a purchase of this product within `days` (1..3650) from "
        "now: the cycle's conditional probability times the customer's pAlive."
    )
    def probability_within(self, info: Info[Context, None], days: int) -> float:
        return _service(info).probability_within(self._entity, days, p_alive=self._p_alive)

    @strawberry.field(
        description="Days past the usual gap (last purchase + mean interval); 0 when not due."
    )
    def days_overdue(self, info: Info[Context, None]) -> float:
        return _service(info).days_overdue(self._entity)

    @classmethod
    def from_domain(cls, p: DomainPattern, p_alive: float = 1.0) -> ConsumptionPattern:
        return cls(
            sku=strawberry.ID(p.sku),
            purchases=p.purchases,
            mean_interval_days=p.mean_interval_days,
            units_per_day=p.units_per_day,
            last_purchased_at=p.last_purchased_at,
            next_expected_at=p.next_expected_at,
            window_low=p.window_low,
            window_high=p.window_high,
            status=p.status,
            confidence=p.confidence,
            computed_at=p.computed_at,
            model_version=p.model_version,
            _entity=p,
            _p_alive=p_alive,
        )


@strawberry.type(
    description="The customer-level forecast: BG/NBD for whether they are still active and how "
    "often they will buy, Gamma-Gamma for how much, a discounted lifetime value."
)
class CustomerForecast:
    p_alive: float = strawberry.field(
        description="Probability the customer is still active (has not silently left)."
    )
    churn_risk: DomainChurnRisk = strawberry.field(
        description="From pAlive (LOW >= 0.7, HIGH < 0.3), one band higher with 2+ overdue staples."
    )
    overdue_staples: int
    frequency: int = strawberry.field(
        description="Repeat purchase days (several baskets on one day count once)."
    )
    recency_days: float = strawberry.field(
        description="Days from the first to the last purchase day."
    )
    age_days: float = strawberry.field(description="Days from the first purchase day to now.")
    average_spend: Money = strawberry.field(
        description="Expected spend per future purchase day (Gamma-Gamma)."
    )
    clv: Money = strawberry.field(
        description="Expected spend over clvHorizonDays, discounted monthly at the configured "
        "annual rate."
    )
    clv_horizon_days: int
    computed_at: datetime
    model_version: str
    _entity: strawberry.Private[DomainForecast]

    @strawberry.field(description="Expected purchase days in the next `days` (1..3650).")
    async def expected_purchases(self, info: Info[Context, None], days: int = 30) -> float:
        return await _service(info).expected_purchases(self._entity, days)

    @strawberry.field(description="Expected spend in the next `days` (1..3650).")
    async def expected_spend(self, info: Info[Context, None], days: int = 30) -> Money:
        purchases = await _service(info).expected_purchases(self._entity, days)
        return Money(round(purchases * self._entity.expected_spend_cents))

    @classmethod
    def from_domain(cls, f: DomainForecast) -> CustomerForecast:
        return cls(
            p_alive=f.p_alive,
            churn_risk=f.churn_risk,
            overdue_staples=f.overdue_staples,
            frequency=f.frequency,
            recency_days=f.recency_days,
            age_days=f.age_days,
            average_spend=Money(round(f.expected_spend_cents)),
            clv=Money(round(f.clv_cents)),
            clv_horizon_days=round(f.horizon_days),
            computed_at=f.computed_at,
            model_version=f.model_version,
            _entity=f,
        )


@strawberry.type(description="Share of the customer's lines in each catalogue price tier.")
class PriceTierMix:
    budget: float
    standard: float
    premium: float


@strawberry.type(
    description="A socioeconomic reading of the customer's baskets. Only for customers who gave "
    "ai_profiling consent; withdrawing it removes the profile."
)
class SocioeconomicProfile:
    affluence: DomainAffluence
    confidence: float = strawberry.field(description="Probability the band is right, 0..1.")
    affluence_score: float
    drivers: list[str] = strawberry.field(
        description="The score features by decreasing influence on the band."
    )
    household_size: float = strawberry.field(
        description="Estimated people in the household, from the volume of staples consumed."
    )
    price_tier_mix: PriceTierMix
    relative_price_index: float = strawberry.field(
        description="Paid unit price over the median of comparable products (1 = typical)."
    )
    promotion_share: float = strawberry.field(description="Share of lines bought on promotion.")
    lines_per_basket: float
    spend_per_basket: Money
    categories_per_basket: float
    category_entropy: float = strawberry.field(
        description="Diversity of categories bought (Shannon entropy, nats)."
    )
    units_per_week: float
    weekend_share: float
    morning_share: float
    afternoon_share: float
    evening_share: float
    computed_at: datetime
    model_version: str

    @classmethod
    def from_domain(cls, p: DomainProfile) -> SocioeconomicProfile:
        return cls(
            affluence=p.affluence,
            confidence=p.confidence,
            affluence_score=p.affluence_score,
            drivers=list(p.drivers),
            household_size=p.household_size,
            price_tier_mix=PriceTierMix(
                budget=p.tier_share_budget,
                standard=p.tier_share_standard,
                premium=p.tier_share_premium,
            ),
            relative_price_index=p.relative_price_index,
            promotion_share=p.promotion_share,
            lines_per_basket=p.lines_per_basket,
            spend_per_basket=Money(round(p.spend_per_basket_cents)),
            categories_per_basket=p.categories_per_basket,
            category_entropy=p.category_entropy,
            units_per_week=p.units_per_week,
            weekend_share=p.weekend_share,
            morning_share=p.morning_share,
            afternoon_share=p.afternoon_share,
            evening_share=p.evening_share,
            computed_at=p.computed_at,
            model_version=p.model_version,
        )
