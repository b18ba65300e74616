"""What the prediction engine stores per customer, and the fitted models it stores once.

A recompute (or the incremental update after a purchase) writes these; queries, the analyst and
the detectors read them instead of refitting. Each carries ``computed_at`` and the
``model_version`` of the fit that produced it. Time-dependent readings (how overdue a staple is
*now*) are evaluated from the stored distribution when read, so a pattern stored last week still
answers today's question correctly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.analytics.btyd import BgNbdFit, BgNbdParams, GammaGammaFit, GammaGammaParams


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
    monetary_cents: float
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


@dataclass(frozen=True, slots=True)
class Prior:
    """A population prior of the consumption model: mean log days per unit, between-pair
    variance and pooled within-pair variance."""

    mean: float
    tau2: float
    sigma2: float


@dataclass(frozen=True, slots=True)
class StoredProfileReference:
    """The population a profile is scored against (see
    :class:`domain.analytics.profile.ProfileReference`), as plain numbers."""

    centre: tuple[float, ...]
    scale: tuple[float, ...]
    cuts: tuple[float, float]
    median_units_per_week: float
    typical_household_size: float
    customers: int


@dataclass(frozen=True, slots=True)
class PredictionModel:
    """One batch fit: what the incremental update applies to a customer until the next refit.

    ``version`` names the algorithms and the moment of the fit; every stored prediction carries
    the version of the model that produced it."""

    version: str
    fitted_at: datetime
    as_of: datetime
    horizon_days: float
    annual_discount_rate: float
    bgnbd: BgNbdFit
    gamma_gamma: GammaGammaFit
    sku_priors: Mapping[str, Prior]
    category_priors: Mapping[str, Prior]
    base_prior: Prior
    profile_reference: StoredProfileReference | None
    customers: int
    purchases: int
    lines: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "fitted_at": self.fitted_at.isoformat(),
                "as_of": self.as_of.isoformat(),
                "horizon_days": self.horizon_days,
                "annual_discount_rate": self.annual_discount_rate,
                "bgnbd": {
                    "r": self.bgnbd.params.r,
                    "alpha": self.bgnbd.params.alpha,
                    "a": self.bgnbd.params.a,
                    "b": self.bgnbd.params.b,
                    "time_unit_days": self.bgnbd.params.time_unit_days,
                    "log_likelihood": self.bgnbd.log_likelihood,
                    "iterations": self.bgnbd.iterations,
                    "converged": self.bgnbd.converged,
                    "customers": self.bgnbd.n_customers,
                },
                "gamma_gamma": {
                    "p": self.gamma_gamma.params.p,
                    "q": self.gamma_gamma.params.q,
                    "v": self.gamma_gamma.params.v,
                    "log_likelihood": self.gamma_gamma.log_likelihood,
                    "iterations": self.gamma_gamma.iterations,
                    "converged": self.gamma_gamma.converged,
                    "customers": self.gamma_gamma.n_customers,
                },
                "sku_priors": {k: _prior_list(v) for k, v in self.sku_priors.items()},
                "category_priors": {k: _prior_list(v) for k, v in self.category_priors.items()},
                "base_prior": _prior_list(self.base_prior),
                "profile_reference": (
                    None
                    if self.profile_reference is None
                    else {
                        "centre": list(self.profile_reference.centre),
                        "scale": list(self.profile_reference.scale),
                        "cuts": list(self.profile_reference.cuts),
                        "median_units_per_week": self.profile_reference.median_units_per_week,
                        "typical_household_size": self.profile_reference.typical_household_size,
                        "customers": self.profile_reference.customers,
                    }
                ),
                "customers": self.customers,
                "purchases": self.purchases,
                "lines": self.lines,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> PredictionModel:
        d: dict[str, Any] = json.loads(raw)
        bg, gg, ref = d["bgnbd"], d["gamma_gamma"], d["profile_reference"]
        return cls(
            version=d["version"],
            fitted_at=datetime.fromisoformat(d["fitted_at"]),
            as_of=datetime.fromisoformat(d["as_of"]),
            horizon_days=float(d["horizon_days"]),
            annual_discount_rate=float(d["annual_discount_rate"]),
            bgnbd=BgNbdFit(
                params=BgNbdParams(bg["r"], bg["alpha"], bg["a"], bg["b"], bg["time_unit_days"]),
                log_likelihood=bg["log_likelihood"],
                iterations=bg["iterations"],
                converged=bg["converged"],
                n_customers=bg["customers"],
            ),
            gamma_gamma=GammaGammaFit(
                params=GammaGammaParams(gg["p"], gg["q"], gg["v"]),
                log_likelihood=gg["log_likelihood"],
                iterations=gg["iterations"],
                converged=gg["converged"],
                n_customers=gg["customers"],
            ),
            sku_priors={k: Prior(*v) for k, v in d["sku_priors"].items()},
            category_priors={k: Prior(*v) for k, v in d["category_priors"].items()},
            base_prior=Prior(*d["base_prior"]),
            profile_reference=(
                None
                if ref is None
                else StoredProfileReference(
                    centre=tuple(ref["centre"]),
                    scale=tuple(ref["scale"]),
                    cuts=(ref["cuts"][0], ref["cuts"][1]),
                    median_units_per_week=ref["median_units_per_week"],
                    typical_household_size=ref["typical_household_size"],
                    customers=ref["customers"],
                )
            ),
            customers=d["customers"],
            purchases=d["purchases"],
            lines=d["lines"],
        )


def _prior_list(prior: Prior) -> list[float]:
    return [prior.mean, prior.tau2, prior.sigma2]
