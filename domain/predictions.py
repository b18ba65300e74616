"""What the prediction engine stores per customer, and the fitted models it stores once.

A recompute (or the incremental update after a purchase) writes these; queries, the analyst and
the detectors read them instead of refitting. Each carries ``computed_at`` and the
``model_version`` of the fit that produced it. Time-dependent readings (how overdue a staple is
*now*) are evaluated from the stored distribution when read, so a pattern stored last week still
answers today's question correctly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ConsumptionStatus(StrEnum):
    ON_TRACK = "ON_TRACK"
    DUE_SOON = "DUE_SOON"
    OVERDUE = "OVERDUE"
    LAPSED = "LAPSED"


class ChurnRiskBand(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class Affluence(StrEnum):
    BUDGET = "BUDGET"
    MID = "MID"
    PREMIUM = "PREMIUM"


@dataclass(frozen=True, slots=True)
class ConsumptionPattern:
    """One customer's cycle for one sku.

    ``log_days_per_unit`` and ``log_spread`` define the fitted log-normal gap per unit; with
    ``last_purchased_at`` and ``last_quantity`` they are enough to re-evaluate the conditional
    next date, window, status and probabilities at any later moment."""

    customer_id: str
    sku: str
    purchases: int
    mean_interval_days: float
    units_per_day: float
    last_purchased_at: datetime
    last_quantity: int
    next_expected_at: datetime
    window_low: datetime
    window_high: datetime
    status: ConsumptionStatus
    confidence: float
    log_days_per_unit: float
    log_spread: float
    computed_at: datetime
    model_version: str


@dataclass(frozen=True, slots=True)
class CustomerForecast:
    """The customer-level forecast. ``frequency`` (repeat transaction days), ``recency_days``
    and ``age_days`` are the BG/NBD summary at ``computed_at``; money is in cents (float:
    expectations). ``expected_transactions`` and ``clv`` are over ``horizon_days``."""

    customer_id: str
    frequency: int
    recency_days: float
    age_days: float
    p_alive: float
    expected_transactions: float
    horizon_days: float
    expected_spend_cents: float
    clv_cents: float
    churn_risk: ChurnRiskBand
    overdue_staples: int
    computed_at: datetime
    model_version: str


@dataclass(frozen=True, slots=True)
class SocioeconomicProfile:
    """Stored only for customers with ai_profiling consent; removed when it is withdrawn.
    ``drivers`` name the score features by decreasing influence on the band."""

    customer_id: str
    affluence: Affluence
    confidence: float
    affluence_score: float
    drivers: tuple[str, ...]
    household_size: float
    tier_share_budget: float
    tier_share_standard: float
    tier_share_premium: float
    relative_price_index: float
    promotion_share: float
    lines_per_basket: float
    spend_per_basket_cents: float
    categories_per_basket: float
    category_entropy: float
    units_per_week: float
    weekend_share: float
    morning_share: float
    afternoon_share: float
    evening_share: float
    computed_at: datetime
    model_version: str


@dataclass(frozen=True, slots=True)
class CustomerPredictions:
    """Everything the engine holds on one customer (any part may be missing)."""

    customer_id: str
    consumption: tuple[ConsumptionPattern, ...]
    forecast: CustomerForecast | None
    profile: SocioeconomicProfile | None
