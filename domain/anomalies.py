"""What the realtime detectors find and what the analyst says about it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from domain.events import ANOMALY_DETECTED, INSIGHT_GENERATED, DomainEvent


class Severity(IntEnum):
    """Ordered, so ``minSeverity`` filters compare: LOW < MEDIUM < HIGH < CRITICAL."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


class AnomalyKind(StrEnum):
    BASKET_SPIKE = "BASKET_SPIKE"
    EARLY_REPURCHASE = "EARLY_REPURCHASE"
    OVERDUE = "OVERDUE"
    CHURN_RISK = "CHURN_RISK"
    BURST = "BURST"
    SALES_RATE = "SALES_RATE"


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One finding. ``dedup_key`` names its cause and window (e.g. the customer, the kind, the
    sku and the day): a detector that fires again on the same cause in the same window finds the
    stored one instead of a second anomaly. ``customer_id`` is None for aggregate findings
    (SALES_RATE). ``evidence`` holds the numbers the explanation quotes. ``position`` is the
    store's order of acceptance (0 until stored), the basis of ``since`` cursors."""

    id: str
    kind: AnomalyKind
    severity: Severity
    score: float
    customer_id: str | None
    subject: str | None  # a sku, a store id or a category, when the finding is about one
    explanation: str
    evidence: dict[str, Any]
    detected_at: datetime
    dedup_key: str
    source_event_id: str | None = None
    position: int = 0


@dataclass(frozen=True, slots=True)
class Insight:
    """A human-readable statement about a customer, from the analyst port, usually about an
    anomaly (``anomaly_id``)."""

    id: str
    customer_id: str
    text: str
    anomaly_id: str | None
    created_at: datetime
    model: str
    position: int = 0


def anomaly_id(dedup_key: str) -> str:
    """Derived from the cause and window, so finding the same anomaly again (a redelivered
    event, a replay after a crash) yields the same id and the same event id."""
    return f"anm_{_digest(dedup_key)}"


def insight_id(anomaly_id_: str) -> str:
    return f"ins_{_digest(anomaly_id_)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def anomaly_payload(anomaly: Anomaly) -> dict[str, Any]:
    return {
        "id": anomaly.id,
        "kind": anomaly.kind.value,
        "severity": anomaly.severity.name,
        "score": anomaly.score,
        "customerId": anomaly.customer_id,
        "subject": anomaly.subject,
        "explanation": anomaly.explanation,
        "evidence": anomaly.evidence,
        "detectedAt": anomaly.detected_at.isoformat(),
        "dedupKey": anomaly.dedup_key,
        "sourceEventId": anomaly.source_event_id,
        "position": anomaly.position,
    }


def anomaly_from_payload(data: dict[str, Any]) -> Anomaly:
    return Anomaly(
        id=data["id"],
        kind=AnomalyKind(data["kind"]),
        severity=Severity[data["severity"]],
        score=float(data["score"]),
        customer_id=data.get("customerId"),
        subject=data.get("subject"),
        explanation=data["explanation"],
        evidence=dict(data.get("evidence") or {}),
        detected_at=datetime.fromisoformat(data["detectedAt"]),
        dedup_key=data["dedupKey"],
        source_event_id=data.get("sourceEventId"),
        position=int(data.get("position") or 0),
    )


def insight_payload(insight: Insight) -> dict[str, Any]:
    return {
        "id": insight.id,
        "customerId": insight.customer_id,
        "text": insight.text,
        "anomalyId": insight.anomaly_id,
        "createdAt": insight.created_at.isoformat(),
        "model": insight.model,
        "position": insight.position,
    }


def insight_from_payload(data: dict[str, Any]) -> Insight:
    return Insight(
        id=data["id"],
        customer_id=data["customerId"],
        text=data["text"],
        anomaly_id=data.get("anomalyId"),
        created_at=datetime.fromisoformat(data["createdAt"]),
        model=data["model"],
        position=int(data.get("position") or 0),
    )


def anomaly_detected(anomaly: Anomaly) -> DomainEvent:
    """The event of a stored anomaly; its id follows from the anomaly's, so the event log drops
    the repeat when the same anomaly is stored again. Aggregate findings (no customer) are
    ordered and partitioned by their subject instead."""
    return DomainEvent(
        type=ANOMALY_DETECTED,
        customer_id=anomaly.customer_id or f"aggregate:{anomaly.subject or anomaly.kind.value}",
        occurred_at=anomaly.detected_at,
        payload={"anomaly": anomaly_payload(anomaly)},
        id=f"evt_{anomaly.id}",
    )


def insight_generated(insight: Insight) -> DomainEvent:
    return DomainEvent(
        type=INSIGHT_GENERATED,
        customer_id=insight.customer_id,
        occurred_at=insight.created_at,
        payload={"insight": insight_payload(insight)},
        id=f"evt_{insight.id}",
    )
