"""The AI analyst's view of one customer, what it is given, and what every call costs.

An analyst (a model on Bedrock, or the local statistical analyst) reads an :class:`AnalysisInput`
— the customer's last purchases and the computed statistics, keyed by the pseudonymous customer
id only, never a name or an email — and answers an :class:`AnalysisBody`. The service adds the
provenance (model, prompt version, when, what it cost) to make a :class:`CustomerAnalysis`.

Models answer in JSON; :func:`parse_body` checks such an answer against the input (every sku it
names must be one the input holds, the churn band and enums must be known values, exactly three
actions) so an invalid answer is rejected rather than shown.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from domain.analytics.consumption import Status, cycle_timing
from domain.customers import Customer
from domain.errors import DomainError
from domain.predictions import (
    Affluence,
    ChurnRiskBand,
    ConsumptionPattern,
    ConsumptionStatus,
    CustomerPredictions,
)
from domain.products import Product
from domain.purchases import Purchase

ANALYSIS_PURCHASES = 20
"""How many of the newest purchases an analyst reads."""

ANALYSIS_STAPLES = 15
"""At most this many staples that are not due go into the input (the most confident)."""

ANALYSIS_DUE_STAPLES = 60
"""At most this many due staples go into the input (the most confident): every one, in practice
(the demo's busiest household has about 40), so the analyst can name all the model calls due."""

STAPLE_MIN_PURCHASES = 3
"""A pair is a staple once bought on this many days (as in the forecasting service)."""

ACTIONS = 3
"""An analysis recommends exactly this many actions."""

MAX_TEXT = 600
"""The longest summary, reason or rationale accepted from a model, in characters."""

NANO = Decimal("0.000000001")

_SECONDS_PER_DAY = 86_400.0
_STATUS = {
    Status.ON_TRACK: ConsumptionStatus.ON_TRACK,
    Status.DUE_SOON: ConsumptionStatus.DUE_SOON,
    Status.OVERDUE: ConsumptionStatus.OVERDUE,
    Status.LAPSED: ConsumptionStatus.LAPSED,
}
DUE = frozenset({ConsumptionStatus.DUE_SOON, ConsumptionStatus.OVERDUE})
"""Statuses that make a staple *due*: expected within days, or already late (LAPSED staples are
no longer bought and are reported as lapsed, not due)."""


class AnalystError(DomainError):
    """An analyst could not answer. ``reason`` is one of THROTTLED, TIMEOUT, UNAVAILABLE,
    INVALID_OUTPUT, TRUNCATED; ``usage`` holds what the failed call consumed, when known."""

    code = "ANALYST_UNAVAILABLE"

    def __init__(self, reason: str, message: str, *, usage: ModelUsage | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.usage = usage


class Regularity(StrEnum):
    REGULAR = "REGULAR"
    IRREGULAR = "IRREGULAR"
    SPARSE = "SPARSE"


# --- the input --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputLine:
    sku: str
    product: str
    category: str
    quantity: int
    amount_cents: int


@dataclass(frozen=True, slots=True)
class InputPurchase:
    days_ago: float
    weekday: str
    store_id: str | None
    total_cents: int
    lines: tuple[InputLine, ...]


@dataclass(frozen=True, slots=True)
class InputStaple:
    """A staple as the consumption model reads it at the input's ``as_of``."""

    sku: str
    product: str
    category: str
    purchases: int
    mean_interval_days: float
    days_since_last: float
    days_until_next: float  # negative when the conditional median lies in the past
    probability_within_7_days: float
    status: ConsumptionStatus
    confidence: float


@dataclass(frozen=True, slots=True)
class InputForecast:
    p_alive: float
    expected_transactions: float
    horizon_days: float
    expected_spend_cents: float
    clv_cents: float
    churn_risk: ChurnRiskBand
    overdue_staples: int
    repeat_purchase_days: int
    days_since_last_purchase: float
    customer_age_days: float


@dataclass(frozen=True, slots=True)
class InputProfile:
    affluence: Affluence
    confidence: float
    household_size: float
    promotion_share: float
    relative_price_index: float
    drivers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AnalysisInput:
    """Everything an analyst may read about one customer: pseudonymous, and rounded so that
    the fingerprint changes when the facts do, not with floating-point noise."""

    customer_id: str
    as_of: date
    purchases: tuple[InputPurchase, ...]
    staples: tuple[InputStaple, ...]
    forecast: InputForecast | None
    profile: InputProfile | None
    segment: str | None

    def to_json_dict(self) -> dict[str, Any]:
        data = _jsonable(self)
        assert isinstance(data, dict)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), sort_keys=True, separators=(",", ":"))

    def fingerprint(self) -> str:
        """A hash of the input: equal inputs, equal fingerprints."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:32]

    @property
    def skus(self) -> frozenset[str]:
        """Every sku the input names (staples and purchase lines)."""
        bought = {line.sku for p in self.purchases for line in p.lines}
        return frozenset(bought | {s.sku for s in self.staples})

    @property
    def due_skus(self) -> tuple[str, ...]:
        return tuple(s.sku for s in self.staples if s.status in DUE)


def _jsonable(value: object) -> object:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {name: _jsonable(getattr(value, name)) for name in value.__dataclass_fields__}
    return value


def _days(seconds: float, places: int = 1) -> float:
    return round(seconds / _SECONDS_PER_DAY, places)


def _staples(
    patterns: Sequence[ConsumptionPattern], products: Mapping[str, Product], as_of: datetime
) -> tuple[InputStaple, ...]:
    """Staples read at ``as_of``: the due ones, then the others, each most confident first and
    bounded by :data:`ANALYSIS_DUE_STAPLES` and :data:`ANALYSIS_STAPLES`."""
    candidates = [p for p in patterns if p.purchases >= STAPLE_MIN_PURCHASES]
    if not candidates:
        return ()
    now = as_of.timestamp() / _SECONDS_PER_DAY
    timing = cycle_timing(
        [p.log_days_per_unit for p in candidates],
        [p.log_spread for p in candidates],
        [p.last_purchased_at.timestamp() / _SECONDS_PER_DAY for p in candidates],
        [p.last_quantity for p in candidates],
        now,
    )
    read = []
    for i, p in enumerate(candidates):
        product = products.get(p.sku)
        next_at = float(timing.next_expected_at[i])
        read.append(
            InputStaple(
                sku=p.sku,
                product=product.name if product else p.sku,
                category=product.category if product else "",
                purchases=p.purchases,
                mean_interval_days=round(p.mean_interval_days, 1),
                days_since_last=_days((as_of - p.last_purchased_at).total_seconds()),
                days_until_next=round(next_at - now, 1) if math.isfinite(next_at) else 0.0,
                probability_within_7_days=round(float(timing.probability_within[i]), 2),
                status=_STATUS.get(Status(int(timing.status[i])), p.status),
                confidence=round(p.confidence, 2),
            )
        )
    read.sort(key=lambda s: (-s.confidence, s.sku))
    due = [s for s in read if s.status in DUE][:ANALYSIS_DUE_STAPLES]
    others = [s for s in read if s.status not in DUE][:ANALYSIS_STAPLES]
    return (*due, *others)


def _purchase(p: Purchase, products: Mapping[str, Product], as_of: datetime) -> InputPurchase:
    lines = []
    for line in p.lines:
        product = products.get(line.sku)
        lines.append(
            InputLine(
                sku=line.sku,
                product=product.name if product else line.sku,
                category=product.category if product else "",
                quantity=line.quantity,
                amount_cents=line.amount,
            )
        )
    return InputPurchase(
        days_ago=_days((as_of - p.purchased_at).total_seconds()),
        weekday=p.purchased_at.astimezone(UTC).strftime("%A"),
        store_id=p.store_id,
        total_cents=p.total,
        lines=tuple(lines),
    )


def build_input(
    customer: Customer,
    purchases: Sequence[Purchase],
    predictions: CustomerPredictions | None,
    products: Mapping[str, Product],
    *,
    as_of: datetime,
    segment: str | None = None,
) -> AnalysisInput:
    """The analyst's input for ``customer`` at ``as_of``: the newest
    :data:`ANALYSIS_PURCHASES` purchases, the staples re-read at ``as_of``, the forecast, and
    the socioeconomic profile only with ai_profiling consent. The customer's name and email are
    never read."""
    newest = sorted(purchases, key=lambda p: (p.purchased_at, p.id), reverse=True)
    newest = [p for p in newest if p.purchased_at <= as_of][:ANALYSIS_PURCHASES]
    forecast = predictions.forecast if predictions else None
    profile = predictions.profile if predictions and customer.consent.ai_profiling else None
    return AnalysisInput(
        customer_id=customer.id,
        as_of=as_of.astimezone(UTC).date(),
        purchases=tuple(_purchase(p, products, as_of) for p in newest),
        staples=_staples(predictions.consumption if predictions else (), products, as_of),
        forecast=None
        if forecast is None
        else InputForecast(
            p_alive=round(forecast.p_alive, 3),
            expected_transactions=round(forecast.expected_transactions, 2),
            horizon_days=round(forecast.horizon_days, 1),
            expected_spend_cents=round(forecast.expected_spend_cents),
            clv_cents=round(forecast.clv_cents),
            churn_risk=forecast.churn_risk,
            overdue_staples=forecast.overdue_staples,
            repeat_purchase_days=forecast.frequency,
            days_since_last_purchase=round(
                forecast.age_days
                - forecast.recency_days
                + _days((as_of - forecast.computed_at).total_seconds(), 3),
                1,
            ),
            customer_age_days=round(forecast.age_days, 1),
        ),
        profile=None
        if profile is None
        else InputProfile(
            affluence=profile.affluence,
            confidence=round(profile.confidence, 2),
            household_size=round(profile.household_size, 1),
            promotion_share=round(profile.promotion_share, 2),
            relative_price_index=round(profile.relative_price_index, 2),
            drivers=profile.drivers,
        ),
        segment=segment,
    )


# --- the answer -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsumptionInsights:
    summary: str
    regularity: Regularity
    staples: tuple[str, ...]  # skus
    due: tuple[str, ...]  # skus due soon or overdue


@dataclass(frozen=True, slots=True)
class SocioeconomicReading:
    summary: str
    affluence: Affluence
    household_size: float


@dataclass(frozen=True, slots=True)
class ChurnAssessment:
    risk: ChurnRiskBand
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecommendedAction:
    title: str
    rationale: str
    sku: str | None = None


@dataclass(frozen=True, slots=True)
class AnalysisBody:
    """What an analyst answers."""

    summary: str
    consumption: ConsumptionInsights
    socioeconomic: SocioeconomicReading | None
    churn: ChurnAssessment
    actions: tuple[RecommendedAction, ...]
    confidence: float


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """What one model call consumed. ``cost_usd`` is exact to the nano-dollar."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class AnalystAnswer:
    body: AnalysisBody
    model: str
    prompt_version: str
    usage: ModelUsage = field(default_factory=ModelUsage)


@dataclass(frozen=True, slots=True)
class CustomerAnalysis:
    """An analysis with its provenance. ``fallback_reason`` is set when the configured model
    failed and the local analyst answered instead; ``cached`` when it was served from the cache."""

    customer_id: str
    body: AnalysisBody
    model: str
    prompt_version: str
    generated_at: datetime
    input_hash: str
    usage: ModelUsage
    fallback_reason: str | None = None
    cached: bool = False

    def to_json(self) -> str:
        return json.dumps(_jsonable(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> CustomerAnalysis:
        """Rebuild an analysis written by :meth:`to_json`; ValueError when it is not one."""
        try:
            data = json.loads(text)
            usage = data["usage"]
            return cls(
                customer_id=str(data["customer_id"]),
                body=_body(data["body"]),
                model=str(data["model"]),
                prompt_version=str(data["prompt_version"]),
                generated_at=datetime.fromisoformat(data["generated_at"]),
                input_hash=str(data["input_hash"]),
                usage=ModelUsage(
                    int(usage["input_tokens"]),
                    int(usage["output_tokens"]),
                    Decimal(usage["cost_usd"]),
                ),
                fallback_reason=data["fallback_reason"],
                cached=bool(data["cached"]),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as e:
            raise ValueError(f"not a stored analysis: {e}") from e


def _body(data: Mapping[str, Any]) -> AnalysisBody:
    c, s, churn = data["consumption"], data["socioeconomic"], data["churn"]
    return AnalysisBody(
        summary=data["summary"],
        consumption=ConsumptionInsights(
            c["summary"], Regularity(c["regularity"]), tuple(c["staples"]), tuple(c["due"])
        ),
        socioeconomic=None
        if s is None
        else SocioeconomicReading(s["summary"], Affluence(s["affluence"]), s["household_size"]),
        churn=ChurnAssessment(ChurnRiskBand(churn["risk"]), tuple(churn["reasons"])),
        actions=tuple(
            RecommendedAction(a["title"], a["rationale"], a["sku"]) for a in data["actions"]
        ),
        confidence=float(data["confidence"]),
    )


class AnswerFormatError(ValueError):
    """A model's answer does not have the analysis' shape or contradicts its input."""


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise AnswerFormatError(f"{where}.{key} must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise AnswerFormatError(f"{where}.{key} is longer than {MAX_TEXT} characters")
    return value.strip()


def _object(data: object, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise AnswerFormatError(f"{where} must be an object")
    return data


def _skus(value: object, known: frozenset[str], where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AnswerFormatError(f"{where} must be a list of skus")
    unknown = [v for v in value if v not in known]
    if unknown:
        raise AnswerFormatError(f"{where} names skus it may not hold: {unknown}")
    return tuple(dict.fromkeys(value))


def _choice(enum: type[StrEnum], value: object, where: str) -> Any:
    names = [m.value for m in enum]
    if not isinstance(value, str) or value not in names:
        raise AnswerFormatError(f"{where} must be one of {names}")
    return enum(value)


def parse_body(data: object, given: AnalysisInput) -> AnalysisBody:
    """Validate a model's JSON answer against the analysis' shape and its input.

    Raises :class:`AnswerFormatError` for a missing or mistyped field, a sku the input does
    not hold, a staple called due that the consumption model does not call due, or a number of
    actions other than :data:`ACTIONS`. A socioeconomic reading given
    although the input held no profile (no consent) is dropped, never shown."""
    root = _object(data, "answer")
    consumption = _object(root.get("consumption"), "consumption")
    churn = _object(root.get("churn"), "churn")
    actions = root.get("actions")
    if not isinstance(actions, list) or len(actions) != ACTIONS:
        raise AnswerFormatError(f"actions must be a list of exactly {ACTIONS}")
    reasons = churn.get("reasons")
    if not isinstance(reasons, list) or not reasons or len(reasons) > 5:
        raise AnswerFormatError("churn.reasons must be a list of 1 to 5 strings")
    confidence = root.get("confidence")
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not 0 <= confidence <= 1
    ):
        raise AnswerFormatError("confidence must be a number from 0 to 1")
    staple_skus = frozenset(s.sku for s in given.staples)
    socioeconomic = None
    reading = root.get("socioeconomic")
    if reading is not None and given.profile is not None:
        reading = _object(reading, "socioeconomic")
        household = reading.get("household_size")
        if isinstance(household, bool) or not isinstance(household, int | float):
            raise AnswerFormatError("socioeconomic.household_size must be a number")
        socioeconomic = SocioeconomicReading(
            summary=_text(reading, "summary", "socioeconomic"),
            affluence=_choice(Affluence, reading.get("affluence"), "socioeconomic.affluence"),
            household_size=float(household),
        )
    parsed_actions = []
    for i, raw in enumerate(actions):
        action = _object(raw, f"actions[{i}]")
        sku = action.get("sku")
        if sku is not None and (not isinstance(sku, str) or sku not in given.skus):
            raise AnswerFormatError(f"actions[{i}].sku names a sku the input does not hold")
        parsed_actions.append(
            RecommendedAction(
                title=_text(action, "title", f"actions[{i}]"),
                rationale=_text(action, "rationale", f"actions[{i}]"),
                sku=sku,
            )
        )
    return AnalysisBody(
        summary=_text(root, "summary", "answer"),
        consumption=ConsumptionInsights(
            summary=_text(consumption, "summary", "consumption"),
            regularity=_choice(Regularity, consumption.get("regularity"), "consumption.regularity"),
            staples=_skus(consumption.get("staples"), staple_skus, "consumption.staples"),
            due=_skus(consumption.get("due"), frozenset(given.due_skus), "consumption.due"),
        ),
        socioeconomic=socioeconomic,
        churn=ChurnAssessment(
            risk=_choice(ChurnRiskBand, churn.get("risk"), "churn.risk"),
            reasons=tuple(_text({"r": r}, "r", "churn.reasons") for r in reasons),
        ),
        actions=tuple(parsed_actions),
        confidence=float(confidence),
    )


def body_to_answer(body: AnalysisBody) -> dict[str, Any]:
    """The JSON shape :func:`parse_body` reads (the tool input a model is asked to produce)."""
    data = _jsonable(body)
    assert isinstance(data, dict)
    return data


# --- usage ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AiUsage:
    """One analyst call (or cache hit) as recorded for cost and usage reporting."""

    id: str
    occurred_at: datetime
    customer_id: str | None
    model: str
    prompt_version: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    latency_ms: float
    success: bool
    cached: bool
    fallback: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AiUsageTotals:
    calls: int = 0
    failures: int = 0
    cached: int = 0
    fallbacks: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms_total: float = 0.0

    def __add__(self, other: AiUsageTotals) -> AiUsageTotals:
        return AiUsageTotals(
            self.calls + other.calls,
            self.failures + other.failures,
            self.cached + other.cached,
            self.fallbacks + other.fallbacks,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cost_usd + other.cost_usd,
            self.latency_ms_total + other.latency_ms_total,
        )

    @property
    def mean_latency_ms(self) -> float:
        return self.latency_ms_total / self.calls if self.calls else 0.0


@dataclass(frozen=True, slots=True)
class AiUsageGroup:
    """The totals of one model on one UTC day."""

    day: date
    model: str
    totals: AiUsageTotals


@dataclass(frozen=True, slots=True)
class AiUsageSummary:
    since: datetime | None
    until: datetime | None
    total: AiUsageTotals
    by_model: tuple[tuple[str, AiUsageTotals], ...]
    by_day: tuple[tuple[date, AiUsageTotals], ...]

    @classmethod
    def of(
        cls, groups: Sequence[AiUsageGroup], since: datetime | None, until: datetime | None
    ) -> AiUsageSummary:
        by_model: dict[str, AiUsageTotals] = {}
        by_day: dict[date, AiUsageTotals] = {}
        total = AiUsageTotals()
        for g in groups:
            by_model[g.model] = by_model.get(g.model, AiUsageTotals()) + g.totals
            by_day[g.day] = by_day.get(g.day, AiUsageTotals()) + g.totals
            total = total + g.totals
        return cls(
            since,
            until,
            total,
            tuple(sorted(by_model.items())),
            tuple(sorted(by_day.items())),
        )


def cost_usd(
    input_tokens: int, output_tokens: int, input_per_mtok: Decimal, output_per_mtok: Decimal
) -> Decimal:
    """The price of a call from its token counts and per-million-token prices in USD."""
    million = Decimal(1_000_000)
    cost = input_tokens * input_per_mtok / million + output_tokens * output_per_mtok / million
    return cost.quantize(NANO)
