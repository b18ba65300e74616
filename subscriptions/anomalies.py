"""The anomalies and customerInsights subscriptions, which resume from a ``since`` cursor.

Anomalies and insights are numbered by the store in its order of acceptance (their
``position``; the ``cursor`` field encodes it). A subscription that is given ``since``:

1. joins the live channel first, so whatever is published from then on waits in its queue;
2. reads the store after the cursor, page by page, oldest first, and emits that;
3. then takes the live items, dropping every one at or before the last position it has
   accounted for (those the replay already emitted, and repeats of the at-least-once relay).

So nothing published while it replays is missed and nothing is emitted twice. Live delivery
itself is best effort (a bus reconnect can lose a message; a sharded stream can reorder), and
positions follow each other without holes (one writer, AUTOINCREMENT, no rollback holes; on
DynamoDB a counter in the same transaction): a live item that is not the next position after
the last one accounted for makes the subscription read the store for the positions in between
first, so a lost or late message is filled from the durable record rather than skipped.
Without ``since`` it reads the newest stored position first and resumes from there, so what is
stored while it joins is not missed either.

The replay source is the anomaly and insight store in every configuration (also with a Redis
bus): it is durable, shared by every process and holds everything, so a cursor never falls out
of a window; see docs/DECISIONS_LOG.md (2026-11-22). A cursor beyond everything stored (from
another deployment's store, or one restored from an older copy) cannot be replayed without a
gap: REPLAY_WINDOW_EXCEEDED.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import strawberry
from strawberry.types import Info

from domain.anomalies import Anomaly as DomainAnomaly
from domain.anomalies import Insight as DomainInsight
from domain.anomalies import Severity, anomaly_from_payload, insight_from_payload
from domain.errors import NotFoundError
from domain.events import ANOMALY_DETECTED, INSIGHT_GENERATED, DomainEvent, channel_for
from domain.ids import is_valid_id
from domain.pagination import MAX_PAGE_SIZE
from domain.ports import ReplayWindowExceededError
from schema.context import Context
from schema.types.anomalies import (
    ANOMALY_STREAM,
    INSIGHT_STREAM,
    STAFF,
    Anomaly,
    Insight,
    anomaly_service,
    since_position,
)
from subscriptions.hub import SubscriptionHub


class Positioned(Protocol):
    @property
    def position(self) -> int: ...


T = TypeVar("T", bound=Positioned)

Read = Callable[[int, int], Awaitable[list[T]]]
"""``read(after, limit)``: stored items after position ``after``, oldest first."""


@dataclass(frozen=True)
class Stream(Generic[T]):
    """One replayable stream: its live channel and how to read and filter it."""

    channel: str
    decode: Callable[[DomainEvent], T]
    read: Read[T]
    """The subscriber's items only (filtered in the store)."""
    read_any: Read[T]
    """Every item, to tell whether a cursor's position is held."""
    head: Callable[[], Awaitable[int]]
    """The newest stored position (0 when none): where a subscriber without a cursor starts."""
    matches: Callable[[T], bool]
    page: int = MAX_PAGE_SIZE


async def _stored(
    read: Read[T], after: int, page: int, until: int | None = None
) -> AsyncIterator[T]:
    """What ``read`` holds after ``after`` (and before ``until``), page by page."""
    while True:
        batch = await read(after, page)
        for item in batch:
            if until is not None and item.position >= until:
                return
            yield item
        if len(batch) < page:
            return
        after = batch[-1].position


async def resume(hub: SubscriptionHub, stream: Stream[T], since: int | None) -> AsyncIterator[T]:
    """The stream's items after position ``since`` (after the newest stored when None), in
    position order, without gaps or repeats."""
    if since is not None and not await stream.read_any(since - 1, 1):
        raise ReplayWindowExceededError(
            "the since cursor is beyond everything stored: it cannot be resumed without a gap; "
            "subscribe without since and read the current state with the anomalies query"
        )
    last = since if since is not None else await stream.head()
    async with hub.listen(stream.channel) as live:
        async for item in _stored(stream.read, last, stream.page):
            yield item
            last = item.position
        async for event in live:
            assert isinstance(event, DomainEvent)
            item = stream.decode(event)
            if item.position <= last:
                continue
            if item.position > last + 1:
                async for missed in _stored(stream.read, last, stream.page, item.position):
                    yield missed
            last = item.position
            if stream.matches(item):
                yield item


async def anomalies(
    info: Info[Context, None],
    min_severity: Severity | None = Severity.LOW,
    since: str | None = None,
) -> AsyncGenerator[Anomaly, None]:
    """Anomalies as the detectors store them, at least `minSeverity` (staff only). With `since`
    (the `cursor` of the last anomaly received) it first replays every anomaly stored after
    that one, then continues live, without gaps or repeats."""
    info.context.principal.require(*STAFF)
    service = anomaly_service(info)
    position = since_position(ANOMALY_STREAM, since) if since is not None else None
    floor = min_severity or Severity.LOW

    async def read(after: int, limit: int) -> list[DomainAnomaly]:
        return await service.anomalies_after(after, limit=limit, min_severity=floor)

    async def read_any(after: int, limit: int) -> list[DomainAnomaly]:
        return await service.anomalies_after(after, limit=limit)

    async def head() -> int:
        newest = await service.anomalies(first=1)
        return newest.items[0].position if newest.items else 0

    stream = Stream(
        channel=channel_for(ANOMALY_DETECTED),
        decode=lambda e: anomaly_from_payload(e.payload["anomaly"]),
        read=read,
        read_any=read_any,
        head=head,
        matches=lambda a: a.severity >= floor,
    )
    async for anomaly in resume(info.context.services.hub, stream, position):
        yield Anomaly.from_domain(anomaly)


async def customer_insights(
    info: Info[Context, None], customer_id: strawberry.ID, since: str | None = None
) -> AsyncGenerator[Insight, None]:
    """A customer's insights as the analyst writes them (staff, or the customer themself).
    With `since` (the `cursor` of the last insight received) it first replays every insight
    of theirs stored after that one, then continues live, without gaps or repeats."""
    info.context.principal.require_customer(customer_id)
    service = anomaly_service(info)
    if (
        not is_valid_id(customer_id)
        or await info.context.services.customers.get(customer_id) is None
    ):
        raise NotFoundError("customer", customer_id, field="customerId")
    position = since_position(INSIGHT_STREAM, since) if since is not None else None

    async def read(after: int, limit: int) -> list[DomainInsight]:
        return await service.insights_after(after, limit=limit, customer_id=customer_id)

    async def read_any(after: int, limit: int) -> list[DomainInsight]:
        return await service.insights_after(after, limit=limit)

    async def head() -> int:
        newest = await service.insights(customer_id, first=1)
        return newest.items[0].position if newest.items else 0

    stream = Stream(
        channel=channel_for(INSIGHT_GENERATED),
        decode=lambda e: insight_from_payload(e.payload["insight"]),
        read=read,
        read_any=read_any,
        head=head,
        matches=lambda i: i.customer_id == customer_id,
    )
    async for insight in resume(info.context.services.hub, stream, position):
        yield Insight.from_domain(insight)
