"""Segment queries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.access import Role
from domain.segments import SegmentCode as DomainSegmentCode
from domain.services.segments import SegmentService
from schema.context import Context
from schema.types.pages import PageInfo
from schema.types.segments import (
    MigrationCount,
    Segment,
    SegmentCluster,
    SegmentCode,
    SegmentMigrationConnection,
)

_STAFF = (Role.ADMIN, Role.ANALYST, Role.SERVICE)


def _service(info: Info[Context, None]) -> SegmentService | None:
    info.context.principal.require(*_STAFF)
    return info.context.services.segments


async def segments(info: Info[Context, None]) -> list[Segment]:
    """Every named segment with its description, strategy (what to offer, what to avoid), size
    and KPIs as measured by the last sweep or refit."""
    service = _service(info)
    if service is None:
        return []
    return [Segment.from_domain(s) for s in await service.segments()]


async def segment_migrations(
    info: Info[Context, None],
    first: int = 20,
    after: str | None = None,
    from_: Annotated[SegmentCode | None, strawberry.argument(name="from")] = None,  # type: ignore[valid-type]
    to: SegmentCode | None = None,  # type: ignore[valid-type]
    since: datetime | None = None,
) -> SegmentMigrationConnection:
    """Changes of segment, oldest first, optionally from or to one segment and at or after
    `since`. `first` is 1..100."""
    service = _service(info)
    if service is None:
        return SegmentMigrationConnection(
            nodes=[], page_info=PageInfo(end_cursor=None, has_next_page=False)
        )
    page = await service.migrations(
        first=first,
        after=after,
        from_segment=DomainSegmentCode(from_) if from_ is not None else None,
        to_segment=DomainSegmentCode(to) if to is not None else None,
        since=since,
    )
    return SegmentMigrationConnection.from_page(page)


async def migration_matrix(
    info: Info[Context, None], since: datetime | None = None, until: datetime | None = None
) -> list[MigrationCount]:
    """How many customers moved from each segment to each other with since <= at < until;
    pairs without any migration are left out."""
    service = _service(info)
    if service is None:
        return []
    counts = await service.migration_matrix(since=since, until=until)
    order = list(DomainSegmentCode)
    return [
        MigrationCount(from_segment=a, to_segment=b, count=n)
        for (a, b), n in sorted(counts.items(), key=lambda p: (order.index(p[0][0]),
                                                               order.index(p[0][1])))
    ]  # fmt: skip


async def segment_clusters(info: Info[Context, None]) -> list[SegmentCluster]:
    """The K-means behaviour clusters of the current segmentation model, each with its centroid
    and the named segments it overlaps."""
    service = _service(info)
    if service is None:
        return []
    return [SegmentCluster.from_domain(c) for c in await service.clusters()]
