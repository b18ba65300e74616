"""GraphQL types of segmentation: segment codes, a customer's assignment, segments with their
KPIs and strategy, migrations and the migration matrix."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.pagination import Page
from domain.segments import MigrationReason as DomainMigrationReason
from domain.segments import Segment as DomainSegment
from domain.segments import SegmentAssignment as DomainSegmentAssignment
from domain.segments import SegmentCluster as DomainSegmentCluster
from domain.segments import SegmentCode as DomainSegmentCode
from domain.segments import SegmentMigration as DomainSegmentMigration
from schema.types.pages import PageInfo

SegmentCode = strawberry.enum(
    DomainSegmentCode, name="SegmentCode", description="The named RFM segments."
)
MigrationReason = strawberry.enum(
    DomainMigrationReason,
    name="MigrationReason",
    description="What moved a customer: their purchase, time passing (the sweep) or a refit.",
)


@strawberry.type(description="Where a customer stands: segment, RFM scores and behaviour cluster.")
class SegmentAssignment:
    segment: SegmentCode  # type: ignore[valid-type]
    recency_score: int = strawberry.field(description="1..5, 5 = bought most recently.")
    frequency_score: int = strawberry.field(description="1..5, 5 = buys most often.")
    monetary_score: int = strawberry.field(description="1..5, 5 = spends the most.")
    cluster: int | None = strawberry.field(description="The K-means behaviour cluster.")
    assigned_at: datetime
    model_version: str

    @classmethod
    def from_domain(cls, a: DomainSegmentAssignment) -> SegmentAssignment:
        return cls(
            segment=a.segment,
            recency_score=a.recency_score,
            frequency_score=a.frequency_score,
            monetary_score=a.monetary_score,
            cluster=a.cluster,
            assigned_at=a.assigned_at,
            model_version=a.model_version,
        )


@strawberry.type(description="What to offer a segment and what to avoid.")
class SegmentStrategy:
    offer: str
    avoid: str


@strawberry.type(description="A segment's figures, measured by the last sweep or refit.")
class SegmentKpis:
    size: int
    revenue_share: float = strawberry.field(description="Share of all customers' spend, 0..1.")
    average_clv: str = strawberry.field(description="Average lifetime value, a decimal string.")
    average_frequency: float = strawberry.field(description="Average purchases per member.")
    share_active: float = strawberry.field(
        description="Share of members who bought within the active window, 0..1."
    )
    measured_at: datetime | None


@strawberry.type(description="A named segment with its description, strategy and KPIs.")
class Segment:
    code: SegmentCode  # type: ignore[valid-type]
    name: str
    description: str
    strategy: SegmentStrategy
    written_by: str = strawberry.field(description="Which writer produced the text.")
    size: int
    kpis: SegmentKpis

    @classmethod
    def from_domain(cls, s: DomainSegment) -> Segment:
        k = s.kpis
        return cls(
            code=s.code,
            name=s.name,
            description=s.text.description,
            strategy=SegmentStrategy(offer=s.text.strategy.offer, avoid=s.text.strategy.avoid),
            written_by=s.text.written_by,
            size=k.size,
            kpis=SegmentKpis(
                size=k.size,
                revenue_share=k.revenue_share,
                average_clv=f"{k.average_clv_cents / 100:.2f}",
                average_frequency=k.average_frequency,
                share_active=k.share_active,
                measured_at=s.measured_at,
            ),
        )


@strawberry.type(description="A change of a customer's segment.")
class SegmentMigration:
    id: strawberry.ID
    customer_id: strawberry.ID
    from_segment: SegmentCode = strawberry.field(name="from")  # type: ignore[valid-type]
    to_segment: SegmentCode = strawberry.field(name="to")  # type: ignore[valid-type]
    at: datetime
    reason: MigrationReason  # type: ignore[valid-type]
    model_version: str

    @classmethod
    def from_domain(cls, m: DomainSegmentMigration) -> SegmentMigration:
        return cls(
            id=strawberry.ID(m.id),
            customer_id=strawberry.ID(m.customer_id),
            from_segment=m.from_segment,
            to_segment=m.to_segment,
            at=m.at,
            reason=m.reason,
            model_version=m.model_version,
        )


@strawberry.type
class SegmentMigrationConnection:
    nodes: list[SegmentMigration]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[DomainSegmentMigration]) -> SegmentMigrationConnection:
        return cls(
            nodes=[SegmentMigration.from_domain(m) for m in page.items],
            page_info=PageInfo.from_page(page),
        )


@strawberry.type(description="How many customers moved from one segment to another.")
class MigrationCount:
    from_segment: SegmentCode = strawberry.field(name="from")  # type: ignore[valid-type]
    to_segment: SegmentCode = strawberry.field(name="to")  # type: ignore[valid-type]
    count: int


@strawberry.type(description="One of the K-means behaviour clusters of the current model.")
class SegmentCluster:
    index: int
    size: int = strawberry.field(description="Members at the fit.")
    centroid: list[ClusterFeature] = strawberry.field(
        description="The centre in the features' own units (days, purchases, cents...)."
    )
    segments: list[SegmentShare] = strawberry.field(
        description="The named segments it overlaps (at least 10 % of its members), largest first."
    )

    @classmethod
    def from_domain(cls, c: DomainSegmentCluster) -> SegmentCluster:
        return cls(
            index=c.index,
            size=c.size,
            centroid=[ClusterFeature(name=n, value=v) for n, v in c.centroid],
            segments=[SegmentShare(segment=s, share=share) for s, share in c.segments],
        )


@strawberry.type
class ClusterFeature:
    name: str
    value: float


@strawberry.type
class SegmentShare:
    segment: SegmentCode  # type: ignore[valid-type]
    share: float
