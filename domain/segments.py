"""Customer segments: the named RFM segments, a customer's assignment to one and the behaviour
it came from, migrations between segments, the stored segmentation model (RFM quantile
boundaries, feature scaling and K-means centroids) and the segment KPIs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from domain.events import DomainEvent


class SegmentCode(StrEnum):
    CHAMPIONS = "CHAMPIONS"
    LOYAL = "LOYAL"
    POTENTIAL_LOYALIST = "POTENTIAL_LOYALIST"
    NEW = "NEW"
    PROMISING = "PROMISING"
    NEED_ATTENTION = "NEED_ATTENTION"
    ABOUT_TO_SLEEP = "ABOUT_TO_SLEEP"
    AT_RISK = "AT_RISK"
    CANT_LOSE = "CANT_LOSE"
    HIBERNATING = "HIBERNATING"
    LOST = "LOST"


@dataclass(frozen=True, slots=True)
class SegmentAssignment:
    """Where a customer stands: the named segment, the RFM scores (1..5) it came from, the
    behaviour cluster, and when and by which model version it was assigned."""

    customer_id: str
    segment: SegmentCode
    recency_score: int
    frequency_score: int
    monetary_score: int
    cluster: int | None
    assigned_at: datetime
    model_version: str


SEGMENT_NAMES: dict[SegmentCode, str] = {
    SegmentCode.CHAMPIONS: "Champions",
    SegmentCode.LOYAL: "Loyal",
    SegmentCode.POTENTIAL_LOYALIST: "Potential loyalists",
    SegmentCode.NEW: "New",
    SegmentCode.PROMISING: "Promising",
    SegmentCode.NEED_ATTENTION: "Need attention",
    SegmentCode.ABOUT_TO_SLEEP: "About to sleep",
    SegmentCode.AT_RISK: "At risk",
    SegmentCode.CANT_LOSE: "Can't lose",
    SegmentCode.HIBERNATING: "Hibernating",
    SegmentCode.LOST: "Lost",
}


class MigrationReason(StrEnum):
    """What moved a customer: their own purchase, time passing (the sweep), or a refit of the
    boundaries and clusters."""

    PURCHASE = "PURCHASE"
    SWEEP = "SWEEP"
    REFIT = "REFIT"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What a customer's segment was computed from: their purchase history summarised, plus the
    lifetime value the prediction engine gave them (for the segment KPIs). Recency and tenure
    are measured from the two dates at the moment of scoring, so a stored behaviour can be
    re-scored later without reading the history again."""

    first_purchased_at: datetime
    last_purchased_at: datetime
    purchases: int
    spend_cents: int
    regularity: float
    diversity: float
    price_index: float
    clv_cents: float | None


@dataclass(frozen=True, slots=True)
class CustomerSegment:
    """What the segment store keeps per customer."""

    assignment: SegmentAssignment
    behaviour: Behaviour

    def to_json(self) -> str:
        a, b = self.assignment, self.behaviour
        return json.dumps(
            {
                "segment": a.segment.value,
                "rfm": [a.recency_score, a.frequency_score, a.monetary_score],
                "cluster": a.cluster,
                "assigned_at": a.assigned_at.isoformat(),
                "model_version": a.model_version,
                "first": b.first_purchased_at.isoformat(),
                "last": b.last_purchased_at.isoformat(),
                "purchases": b.purchases,
                "spend_cents": b.spend_cents,
                "regularity": b.regularity,
                "diversity": b.diversity,
                "price_index": b.price_index,
                "clv_cents": b.clv_cents,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, customer_id: str, raw: str | bytes) -> CustomerSegment:
        d: dict[str, Any] = json.loads(raw)
        r, f, m = d["rfm"]
        return cls(
            assignment=SegmentAssignment(
                customer_id=customer_id,
                segment=SegmentCode(d["segment"]),
                recency_score=r,
                frequency_score=f,
                monetary_score=m,
                cluster=d["cluster"],
                assigned_at=datetime.fromisoformat(d["assigned_at"]),
                model_version=d["model_version"],
            ),
            behaviour=Behaviour(
                first_purchased_at=datetime.fromisoformat(d["first"]),
                last_purchased_at=datetime.fromisoformat(d["last"]),
                purchases=d["purchases"],
                spend_cents=d["spend_cents"],
                regularity=d["regularity"],
                diversity=d["diversity"],
                price_index=d["price_index"],
                clv_cents=d["clv_cents"],
            ),
        )


@dataclass(frozen=True, slots=True)
class SegmentMigration:
    """A change of a customer's segment. ``id`` is derived from the customer and the assignment
    that replaced the old one, so storing the same migration twice stores it once."""

    id: str
    customer_id: str
    from_segment: SegmentCode
    to_segment: SegmentCode
    at: datetime
    reason: MigrationReason
    model_version: str


@dataclass(frozen=True, slots=True)
class RfmBoundaries:
    """The four quantile cuts (20/40/60/80 %) of each RFM measure over the active base:
    recency in days since the last purchase, frequency in purchases, monetary in cents spent."""

    recency_days: tuple[float, ...]
    frequency: tuple[float, ...]
    monetary_cents: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class SegmentCluster:
    """One K-means cluster: its centroid in the features' own units (days, purchases, cents...),
    its size at the fit, and the named segments it overlaps (share of its members in each,
    largest first, those of at least 10 %)."""

    index: int
    size: int
    centroid: tuple[tuple[str, float], ...]
    segments: tuple[tuple[SegmentCode, float], ...]


@dataclass(frozen=True, slots=True)
class SegmentModel:
    """One segmentation fit: the RFM boundaries, the feature scaling and the centroids. Live
    assignment scores against it until the next refit; every assignment names its version."""

    version: str
    fitted_at: datetime
    active_window_days: float
    boundaries: RfmBoundaries
    features: tuple[str, ...]
    centre: tuple[float, ...]
    scale: tuple[float, ...]
    centroids: tuple[tuple[float, ...], ...]
    clusters: tuple[SegmentCluster, ...]
    silhouette: float
    customers: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "fitted_at": self.fitted_at.isoformat(),
                "active_window_days": self.active_window_days,
                "boundaries": {
                    "recency_days": list(self.boundaries.recency_days),
                    "frequency": list(self.boundaries.frequency),
                    "monetary_cents": list(self.boundaries.monetary_cents),
                },
                "features": list(self.features),
                "centre": list(self.centre),
                "scale": list(self.scale),
                "centroids": [list(c) for c in self.centroids],
                "clusters": [
                    {
                        "index": c.index,
                        "size": c.size,
                        "centroid": [[k, v] for k, v in c.centroid],
                        "segments": [[s.value, share] for s, share in c.segments],
                    }
                    for c in self.clusters
                ],
                "silhouette": self.silhouette,
                "customers": self.customers,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> SegmentModel:
        d: dict[str, Any] = json.loads(raw)
        b = d["boundaries"]
        return cls(
            version=d["version"],
            fitted_at=datetime.fromisoformat(d["fitted_at"]),
            active_window_days=float(d["active_window_days"]),
            boundaries=RfmBoundaries(
                recency_days=tuple(b["recency_days"]),
                frequency=tuple(b["frequency"]),
                monetary_cents=tuple(b["monetary_cents"]),
            ),
            features=tuple(d["features"]),
            centre=tuple(d["centre"]),
            scale=tuple(d["scale"]),
            centroids=tuple(tuple(c) for c in d["centroids"]),
            clusters=tuple(
                SegmentCluster(
                    index=c["index"],
                    size=c["size"],
                    centroid=tuple((k, float(v)) for k, v in c["centroid"]),
                    segments=tuple((SegmentCode(s), float(share)) for s, share in c["segments"]),
                )
                for c in d["clusters"]
            ),
            silhouette=float(d["silhouette"]),
            customers=int(d["customers"]),
        )


@dataclass(frozen=True, slots=True)
class SegmentKpis:
    """A segment's figures at one moment: its size, its share of all customers' spend, the
    average lifetime value and number of purchases of its members, and the share of them who
    bought within the active window."""

    segment: SegmentCode
    size: int
    revenue_share: float
    average_clv_cents: float
    average_frequency: float
    share_active: float


@dataclass(frozen=True, slots=True)
class SegmentSummary:
    """Every segment's KPIs, measured together (by the sweep or a refit)."""

    measured_at: datetime
    model_version: str
    customers: int
    kpis: tuple[SegmentKpis, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "measured_at": self.measured_at.isoformat(),
                "model_version": self.model_version,
                "customers": self.customers,
                "kpis": [
                    [k.segment.value, k.size, k.revenue_share, k.average_clv_cents,
                     k.average_frequency, k.share_active]
                    for k in self.kpis
                ],
            },
            separators=(",", ":"),
        )  # fmt: skip

    @classmethod
    def from_json(cls, raw: str | bytes) -> SegmentSummary:
        d: dict[str, Any] = json.loads(raw)
        return cls(
            measured_at=datetime.fromisoformat(d["measured_at"]),
            model_version=d["model_version"],
            customers=int(d["customers"]),
            kpis=tuple(
                SegmentKpis(SegmentCode(s), int(n), float(r), float(c), float(f), float(a))
                for s, n, r, c, f, a in d["kpis"]
            ),
        )


@dataclass(frozen=True, slots=True)
class SegmentStrategy:
    """What to offer a segment and what to avoid."""

    offer: str
    avoid: str


@dataclass(frozen=True, slots=True)
class SegmentText:
    """A segment's description and strategy, as the analyst wrote them."""

    description: str
    strategy: SegmentStrategy
    written_by: str


@dataclass(frozen=True, slots=True)
class Segment:
    """A named segment as the API shows it."""

    code: SegmentCode
    name: str
    text: SegmentText
    kpis: SegmentKpis
    measured_at: datetime | None


@dataclass(frozen=True, slots=True)
class SegmentChange:
    """A new assignment for one customer, to be stored only if their stored assignment is
    still ``expected`` (the same segment assigned at the same moment; None: nothing stored
    yet), with the migration and its event when the segment changed."""

    record: CustomerSegment
    expected: SegmentAssignment | None
    migration: SegmentMigration | None = None
    event: DomainEvent | None = None


def migration_payload(migration: SegmentMigration) -> dict[str, Any]:
    return {
        "id": migration.id,
        "customerId": migration.customer_id,
        "from": migration.from_segment.value,
        "to": migration.to_segment.value,
        "at": migration.at.isoformat(),
        "reason": migration.reason.value,
        "modelVersion": migration.model_version,
    }


def migration_from_payload(data: dict[str, Any]) -> SegmentMigration:
    return SegmentMigration(
        id=data["id"],
        customer_id=data["customerId"],
        from_segment=SegmentCode(data["from"]),
        to_segment=SegmentCode(data["to"]),
        at=datetime.fromisoformat(data["at"]),
        reason=MigrationReason(data["reason"]),
        model_version=data["modelVersion"],
    )
