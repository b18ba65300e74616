"""The AI analyst's structured view of a customer, and what the analyst costs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import strawberry
from strawberry.types import Info

from domain.access import Role
from domain.analysis import AiUsageSummary as DomainUsageSummary
from domain.analysis import AiUsageTotals as DomainUsageTotals
from domain.analysis import CustomerAnalysis as DomainAnalysis
from domain.analysis import Regularity as DomainRegularity
from domain.predictions import Affluence, ChurnRiskBand
from domain.services.analyst import AnalystService
from schema.context import Context
from schema.types import predictions as prediction_types

strawberry.enum(
    DomainRegularity,
    name="Regularity",
    description="How regular the customer's staples are: REGULAR (most cycles are steady), "
    "IRREGULAR, SPARSE (fewer than two staples to judge by).",
)


def usd(amount: Decimal) -> str:
    """Dollars as a plain decimal string without trailing zeros: "0.00070975", "0"."""
    return format(amount.normalize(), "f") if amount else "0"


def analyst_service(info: Info[Context, None]) -> AnalystService:
    service = info.context.services.analyst
    if service is None:
        raise RuntimeError("the AI analyst is not configured")
    return service


async def analysis_of(
    info: Info[Context, None], customer_id: str, refresh: bool
) -> CustomerAnalysis:
    """Staff only: an analysis carries churn ratings and marketing actions. Refreshing spends
    model tokens, so it needs the admin or analyst role."""
    principal = info.context.principal
    principal.require(Role.ADMIN, Role.ANALYST, Role.SERVICE)
    if refresh:
        principal.require(Role.ADMIN, Role.ANALYST)
    found = await analyst_service(info).analyse(customer_id, refresh=refresh)
    return CustomerAnalysis.from_domain(found)


@strawberry.type(description="Which staples the customer buys, how regularly, and what is due.")
class ConsumptionInsights:
    summary: str
    regularity: DomainRegularity
    staples: list[strawberry.ID] = strawberry.field(description="Skus of the staples.")
    due: list[strawberry.ID] = strawberry.field(description="Skus of staples due soon or overdue.")


@strawberry.type(description="Present only with the customer's ai_profiling consent.")
class SocioeconomicReading:
    summary: str
    affluence: Affluence = strawberry.field(graphql_type=prediction_types.Affluence)
    household_size: float


@strawberry.type
class ChurnAssessment:
    risk: ChurnRiskBand = strawberry.field(graphql_type=prediction_types.ChurnRisk)
    reasons: list[str]


@strawberry.type
class RecommendedAction:
    title: str
    rationale: str
    sku: strawberry.ID | None = strawberry.field(description="The product it is about, if one.")


@strawberry.type(
    description="The AI analyst's structured view of a customer, with the model that produced "
    "it, when, and what it cost. `fallbackReason` is set when the configured model failed and "
    "the local statistical analyst answered instead."
)
class CustomerAnalysis:
    summary: str
    consumption: ConsumptionInsights
    socioeconomic: SocioeconomicReading | None
    churn: ChurnAssessment
    actions: list[RecommendedAction]
    confidence: float
    model: str
    prompt_version: str
    generated_at: datetime
    input_hash: str
    input_tokens: int
    output_tokens: int
    cost_usd: str = strawberry.field(description="US dollars as a decimal string.")
    cached: bool
    fallback_reason: str | None

    @classmethod
    def from_domain(cls, a: DomainAnalysis) -> CustomerAnalysis:
        b = a.body
        reading = b.socioeconomic
        return cls(
            summary=b.summary,
            consumption=ConsumptionInsights(
                summary=b.consumption.summary,
                regularity=b.consumption.regularity,
                staples=[strawberry.ID(s) for s in b.consumption.staples],
                due=[strawberry.ID(s) for s in b.consumption.due],
            ),
            socioeconomic=None
            if reading is None
            else SocioeconomicReading(
                summary=reading.summary,
                affluence=reading.affluence,
                household_size=reading.household_size,
            ),
            churn=ChurnAssessment(risk=b.churn.risk, reasons=list(b.churn.reasons)),
            actions=[
                RecommendedAction(
                    title=x.title,
                    rationale=x.rationale,
                    sku=strawberry.ID(x.sku) if x.sku else None,
                )
                for x in b.actions
            ],
            confidence=b.confidence,
            model=a.model,
            prompt_version=a.prompt_version,
            generated_at=a.generated_at,
            input_hash=a.input_hash,
            input_tokens=a.usage.input_tokens,
            output_tokens=a.usage.output_tokens,
            cost_usd=usd(a.usage.cost_usd),
            cached=a.cached,
            fallback_reason=a.fallback_reason,
        )


@strawberry.type(description="Calls, tokens, cost and latency of the AI analyst.")
class AiUsageTotals:
    calls: int
    failures: int
    cached: int
    fallbacks: int
    input_tokens: int
    output_tokens: int
    cost_usd: str = strawberry.field(description="US dollars as a decimal string.")
    mean_latency_ms: float

    @classmethod
    def from_domain(cls, t: DomainUsageTotals) -> AiUsageTotals:
        return cls(
            calls=t.calls,
            failures=t.failures,
            cached=t.cached,
            fallbacks=t.fallbacks,
            input_tokens=t.input_tokens,
            output_tokens=t.output_tokens,
            cost_usd=usd(t.cost_usd),
            mean_latency_ms=round(t.mean_latency_ms, 3),
        )


@strawberry.type
class AiUsageByModel:
    model: str
    totals: AiUsageTotals


@strawberry.type
class AiUsageByDay:
    day: date = strawberry.field(description="A UTC calendar day.")
    totals: AiUsageTotals


@strawberry.type(description="AI analyst usage in [since, until): totals, per model, per day.")
class AiUsageSummary:
    since: datetime | None
    until: datetime | None
    total: AiUsageTotals
    by_model: list[AiUsageByModel]
    by_day: list[AiUsageByDay]

    @classmethod
    def from_domain(cls, s: DomainUsageSummary) -> AiUsageSummary:
        return cls(
            since=s.since,
            until=s.until,
            total=AiUsageTotals.from_domain(s.total),
            by_model=[
                AiUsageByModel(model=m, totals=AiUsageTotals.from_domain(t)) for m, t in s.by_model
            ],
            by_day=[AiUsageByDay(day=d, totals=AiUsageTotals.from_domain(t)) for d, t in s.by_day],
        )
