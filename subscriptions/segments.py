"""The segmentChanged subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from strawberry.types import Info

from domain.access import Role
from domain.events import SEGMENT_CHANGED, DomainEvent, channel_for
from domain.segments import migration_from_payload
from schema.context import Context
from schema.types.segments import SegmentCode, SegmentMigration


async def segment_changed(
    info: Info[Context, None],
    segment: SegmentCode | None = None,  # type: ignore[valid-type]
) -> AsyncGenerator[SegmentMigration, None]:
    """Migrations between segments as they are stored: all of them, or those into or out of
    `segment` (staff roles)."""
    info.context.principal.require(Role.ADMIN, Role.ANALYST, Role.SERVICE)
    async with info.context.services.hub.listen(channel_for(SEGMENT_CHANGED)) as events:
        async for event in events:
            assert isinstance(event, DomainEvent)
            migration = migration_from_payload(event.payload["migration"])
            if segment is not None and segment not in (
                migration.from_segment,
                migration.to_segment,
            ):
                continue
            yield SegmentMigration.from_domain(migration)
