"""Customer segments: the named RFM segments and a customer's assignment to one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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
