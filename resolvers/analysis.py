"""AI analyst queries."""

from __future__ import annotations

from datetime import datetime

from strawberry.types import Info

from domain.access import Role
from schema.context import Context
from schema.types.analysis import AiUsageSummary, analyst_service


async def ai_usage(
    info: Info[Context, None], since: datetime | None = None, until: datetime | None = None
) -> AiUsageSummary:
    """AI analyst calls, tokens, cost and latency in [since, until), in total, per model and per
    UTC day (admins and analysts)."""
    info.context.principal.require(Role.ADMIN, Role.ANALYST)
    summary = await analyst_service(info).usage_summary(since=since, until=until)
    return AiUsageSummary.from_domain(summary)
