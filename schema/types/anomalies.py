"""Anomalies and insights in the API: the types, and the staff-only reads behind them."""

from __future__ import annotations

import json
from datetime import datetime

import strawberry
from strawberry.types import Info

from domain.access import Role
from domain.anomalies import Anomaly as DomainAnomaly
from domain.anomalies import AnomalyKind as DomainAnomalyKind
from domain.anomalies import Insight as DomainInsight
from domain.anomalies import Severity as DomainSeverity
from domain.errors import ValidationError
from domain.pagination import Page, decode_cursor, encode_cursor
from domain.services.anomalies import AnomalyService
from schema.context import Context
from schema.types.pages import PageInfo

strawberry.enum(
    DomainSeverity,
    name="Severity",
    description="How much an anomaly matters, ordered: LOW < MEDIUM < HIGH < CRITICAL.",
)
strawberry.enum(
    DomainAnomalyKind,
    name="AnomalyKind",
    description="What a detector found; docs/anomalies.md gives each rule and its thresholds.",
)

STAFF = (Role.ADMIN, Role.ANALYST, Role.SERVICE)

ANOMALY_STREAM = "anomalies.since"
INSIGHT_STREAM = "insights.since"


def since_cursor(stream: str, position: int) -> str:
    """The opaque ``since`` cursor of the item stored at ``position`` in ``stream``."""
    return encode_cursor(stream, [position])


def since_position(stream: str, cursor: str) -> int:
    """The store position a ``since`` cursor of ``stream`` names; anything else (another
    stream's cursor, a page cursor, garbage) is INVALID_CURSOR."""
    try:
        value = decode_cursor(stream, cursor)
    except ValidationError as e:
        raise ValidationError(e.message, field="since", code=e.code) from e
    if len(value) != 1 or type(value[0]) is not int or value[0] < 1:
        raise ValidationError("malformed cursor", field="since", code="INVALID_CURSOR")
    return value[0]


def anomaly_service(info: Info[Context, None]) -> AnomalyService:
    service = info.context.services.anomalies
    if service is None:
        raise RuntimeError("anomaly detection is not configured")
    return service


@strawberry.type(description="One number or fact an anomaly's explanation quotes.")
class Evidence:
    name: str
    value: str = strawberry.field(description="The value as JSON text (numbers stay numbers).")


@strawberry.type(
    description="A finding of the realtime detectors, stored once per cause and window."
)
class Anomaly:
    id: strawberry.ID
    kind: DomainAnomalyKind
    severity: DomainSeverity
    score: float = strawberry.field(description="The detector's own measure; see the docs.")
    customer_id: strawberry.ID | None = strawberry.field(
        description="Null for store- or category-level findings (SALES_RATE)."
    )
    subject: str | None = strawberry.field(
        description="What it is about besides the customer: a sku, a purchase, a store or a "
        "category key such as `store:store_01`."
    )
    explanation: str
    evidence: list[Evidence]
    detected_at: datetime
    source_event_id: str | None
    position: str = strawberry.field(description="The order in which anomalies were stored.")
    cursor: str = strawberry.field(
        description="Pass as `since` to the `anomalies` subscription to resume after this one."
    )

    @classmethod
    def from_domain(cls, a: DomainAnomaly) -> Anomaly:
        return cls(
            id=strawberry.ID(a.id),
            kind=a.kind,
            severity=a.severity,
            score=a.score,
            customer_id=strawberry.ID(a.customer_id) if a.customer_id else None,
            subject=a.subject,
            explanation=a.explanation,
            evidence=[
                Evidence(name=k, value=json.dumps(v, separators=(",", ":")))
                for k, v in a.evidence.items()
            ],
            detected_at=a.detected_at,
            source_event_id=a.source_event_id,
            position=str(a.position),
            cursor=since_cursor(ANOMALY_STREAM, a.position),
        )


@strawberry.type
class AnomalyConnection:
    nodes: list[Anomaly]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[DomainAnomaly]) -> AnomalyConnection:
        return cls(
            nodes=[Anomaly.from_domain(a) for a in page.items],
            page_info=PageInfo.from_page(page),
        )


@strawberry.type(description="A human-readable statement about a customer, from the analyst.")
class Insight:
    id: strawberry.ID
    text: str
    anomaly_id: strawberry.ID | None
    created_at: datetime
    model: str = strawberry.field(description="The analyst that wrote it.")
    position: str = strawberry.field(description="The order in which insights were stored.")
    cursor: str = strawberry.field(
        description="Pass as `since` to the `customerInsights` subscription to resume after "
        "this one."
    )

    @classmethod
    def from_domain(cls, i: DomainInsight) -> Insight:
        return cls(
            id=strawberry.ID(i.id),
            text=i.text,
            anomaly_id=strawberry.ID(i.anomaly_id) if i.anomaly_id else None,
            created_at=i.created_at,
            model=i.model,
            position=str(i.position),
            cursor=since_cursor(INSIGHT_STREAM, i.position),
        )


@strawberry.type
class InsightConnection:
    nodes: list[Insight]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[DomainInsight]) -> InsightConnection:
        return cls(
            nodes=[Insight.from_domain(i) for i in page.items],
            page_info=PageInfo.from_page(page),
        )


async def insights_of(
    info: Info[Context, None], customer_id: str, first: int, after: str | None
) -> InsightConnection:
    """Staff only, like the analysis the insights come from."""
    info.context.principal.require(*STAFF)
    page = await anomaly_service(info).insights(customer_id, first=first, after=after)
    return InsightConnection.from_page(page)
