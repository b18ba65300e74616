"""Anomaly queries."""

from __future__ import annotations

from datetime import datetime

from strawberry.types import Info

from domain.anomalies import Severity
from schema.context import Context
from schema.types.anomalies import STAFF, AnomalyConnection, anomaly_service


async def anomalies(
    info: Info[Context, None],
    first: int = 20,
    after: str | None = None,
    min_severity: Severity | None = None,
    since: datetime | None = None,
) -> AnomalyConnection:
    """Anomalies found by the realtime detectors, newest first: at least `minSeverity`, detected
    at or after `since` (staff only). `first` is 1..100."""
    info.context.principal.require(*STAFF)
    page = await anomaly_service(info).anomalies(
        first=first, after=after, min_severity=min_severity, since=since
    )
    return AnomalyConnection.from_page(page)
