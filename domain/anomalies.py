"""What the realtime detectors find and what the analyst says about it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any


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
