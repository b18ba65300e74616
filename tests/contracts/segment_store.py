"""The SegmentStore contract. Fixtures: ``segment_store``, ``customer_store``, ``event_log``
(through which the SegmentChanged events written with the migrations are read)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.customers import Customer
from domain.errors import ValidationError
from domain.events import SEGMENT_CHANGED, DomainEvent, segment_changed
from domain.ports import CustomerStore, SegmentStore
from domain.segments import (
    Behaviour,
    CustomerSegment,
    MigrationReason,
    RfmBoundaries,
    SegmentAssignment,
    SegmentChange,
    SegmentCluster,
    SegmentCode,
    SegmentKpis,
    SegmentMigration,
    SegmentModel,
    SegmentSummary,
)
from tests.contracts.builders import T0, customer

VERSION = "rfm1-kmeans1@20240301T093015000000Z"


def record(
    customer_id: str, segment: SegmentCode, *, at: Any = T0, clv: float | None = 1234.5
) -> CustomerSegment:
    return CustomerSegment(
        assignment=SegmentAssignment(
            customer_id=customer_id, segment=segment, recency_score=4, frequency_score=3,
            monetary_score=5, cluster=2, assigned_at=at, model_version=VERSION,
        ),
        behaviour=Behaviour(
            first_purchased_at=T0 - timedelta(days=200), last_purchased_at=T0 - timedelta(days=3),
            purchases=17, spend_cents=48_215, regularity=0.61, diversity=1.73, price_index=1.08,
            clv_cents=clv,
        ),
    )  # fmt: skip


def moved(customer_id: str, old: CustomerSegment, to: SegmentCode, at: Any) -> SegmentChange:
    migration = SegmentMigration(
        id=f"mig_{customer_id}_{to.value}_{at:%H%M%S%f}",
        customer_id=customer_id,
        from_segment=old.assignment.segment,
        to_segment=to,
        at=at,
        reason=MigrationReason.SWEEP,
        model_version=VERSION,
    )
    return SegmentChange(
        record(customer_id, to, at=at), old.assignment, migration, segment_changed(migration)
    )


def model(at: Any = T0, version: str = VERSION) -> SegmentModel:
    return SegmentModel(
        version=version,
        fitted_at=at,
        active_window_days=365.0,
        boundaries=RfmBoundaries((3.0, 8.0, 15.0, 40.0), (1.0, 2.0, 5.0, 11.0),
                                 (900.0, 2500.0, 7000.0, 20000.0)),
        features=("recency_days", "frequency"),
        centre=(1.2, 1.9),
        scale=(0.8, 0.7),
        centroids=((0.5, -0.25), (-1.0, 1.5)),
        clusters=(
            SegmentCluster(0, 40, (("recency_days", 4.5), ("frequency", 12.0)),
                           ((SegmentCode.CHAMPIONS, 0.6), (SegmentCode.LOYAL, 0.3))),
            SegmentCluster(1, 10, (("recency_days", 90.0), ("frequency", 2.0)),
                           ((SegmentCode.LOST, 0.9),)),
        ),
        silhouette=0.41,
        customers=50,
    )  # fmt: skip


async def _customers(store: CustomerStore, *ids: str) -> list[Customer]:
    made = [customer(i) for i in ids]
    for c in made:
        await store.add(c, DomainEvent("CustomerRegistered", c.id, T0, {}), None)
    return made


async def _events(event_log: Any, event_type: str) -> list[DomainEvent]:
    logged = await event_log.read(after=0, limit=10_000)
    return [e.event for e in logged if e.event.type == event_type]


async def test_nothing_stored_reads_empty(segment_store: SegmentStore) -> None:
    assert await segment_store.current_model() is None
    assert await segment_store.summary() is None
    assert await segment_store.get_many(["c1"]) == {}
    page = await segment_store.scan(after=None, limit=10)
    assert page.items == []
    assert not page.has_next_page


async def test_model_round_trips_and_newest_wins(segment_store: SegmentStore) -> None:
    older = model(T0, "v1")
    newer = model(T0 + timedelta(hours=1), "v2")
    await segment_store.save_model(newer)
    await segment_store.save_model(older)
    assert await segment_store.current_model() == newer


async def test_first_assignment_is_stored_without_migration(
    segment_store: SegmentStore, customer_store: CustomerStore, event_log: Any
) -> None:
    await _customers(customer_store, "c1")
    first = record("c1", SegmentCode.NEW)
    applied = await segment_store.apply([SegmentChange(first, None)])
    assert len(applied) == 1
    assert await segment_store.get_many(["c1", "c2"]) == {"c1": first}
    assert await _events(event_log, SEGMENT_CHANGED) == []


async def test_migration_is_stored_with_its_event(
    segment_store: SegmentStore, customer_store: CustomerStore, event_log: Any
) -> None:
    await _customers(customer_store, "c1")
    first = record("c1", SegmentCode.CHAMPIONS)
    await segment_store.apply([SegmentChange(first, None)])
    change = moved("c1", first, SegmentCode.AT_RISK, T0 + timedelta(days=40))
    assert await segment_store.apply([change]) == [change]
    stored = await segment_store.get_many(["c1"])
    assert stored["c1"].assignment.segment is SegmentCode.AT_RISK
    page = await segment_store.migrations(
        first=10, after=None, from_segment=None, to_segment=None, since=None
    )
    assert page.items == [change.migration]
    events = await _events(event_log, SEGMENT_CHANGED)
    assert [e.id for e in events] == [change.migration.id]  # type: ignore[union-attr]
    assert events[0].payload["migration"]["to"] == "AT_RISK"


async def test_a_stale_change_is_refused(
    segment_store: SegmentStore, customer_store: CustomerStore, event_log: Any
) -> None:
    await _customers(customer_store, "c1")
    first = record("c1", SegmentCode.LOYAL)
    await segment_store.apply([SegmentChange(first, None)])
    winner = moved("c1", first, SegmentCode.NEED_ATTENTION, T0 + timedelta(days=5))
    loser = moved("c1", first, SegmentCode.AT_RISK, T0 + timedelta(days=6))
    assert await segment_store.apply([winner]) == [winner]
    assert await segment_store.apply([loser]) == []
    # A first assignment racing with an existing one is refused too.
    assert await segment_store.apply([SegmentChange(record("c1", SegmentCode.NEW), None)]) == []
    stored = await segment_store.get_many(["c1"])
    assert stored["c1"].assignment.segment is SegmentCode.NEED_ATTENTION
    page = await segment_store.migrations(
        first=10, after=None, from_segment=None, to_segment=None, since=None
    )
    assert [m.to_segment for m in page.items] == [SegmentCode.NEED_ATTENTION]
    assert len(await _events(event_log, SEGMENT_CHANGED)) == 1


async def test_migrations_page_filter_and_count(
    segment_store: SegmentStore, customer_store: CustomerStore
) -> None:
    ids = [f"c{i}" for i in range(5)]
    await _customers(customer_store, *ids)
    firsts = [record(c, SegmentCode.LOYAL) for c in ids]
    await segment_store.apply([SegmentChange(r, None) for r in firsts])
    changes = []
    for i, (c, r) in enumerate(zip(ids, firsts, strict=True)):
        to = SegmentCode.AT_RISK if i % 2 == 0 else SegmentCode.CHAMPIONS
        changes.append(moved(c, r, to, T0 + timedelta(days=i + 1)))
    assert len(await segment_store.apply(changes)) == 5

    seen: list[SegmentMigration] = []
    after = None
    while True:
        page = await segment_store.migrations(
            first=2, after=after, from_segment=None, to_segment=None, since=None
        )
        seen.extend(page.items)
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert [m.customer_id for m in seen] == ids

    to_risk = await segment_store.migrations(
        first=10, after=None, from_segment=SegmentCode.LOYAL, to_segment=SegmentCode.AT_RISK,
        since=T0 + timedelta(days=2),
    )  # fmt: skip
    assert [m.customer_id for m in to_risk.items] == ["c2", "c4"]
    none_from = await segment_store.migrations(
        first=10, after=None, from_segment=SegmentCode.NEW, to_segment=None, since=None
    )
    assert none_from.items == []

    counts = await segment_store.migration_counts(since=None, until=None)
    assert counts == {
        (SegmentCode.LOYAL, SegmentCode.AT_RISK): 3,
        (SegmentCode.LOYAL, SegmentCode.CHAMPIONS): 2,
    }
    window = await segment_store.migration_counts(
        since=T0 + timedelta(days=2), until=T0 + timedelta(days=4)
    )
    assert window == {
        (SegmentCode.LOYAL, SegmentCode.AT_RISK): 1,
        (SegmentCode.LOYAL, SegmentCode.CHAMPIONS): 1,
    }


async def test_a_cursor_of_another_list_is_refused(segment_store: SegmentStore) -> None:
    with pytest.raises(ValidationError) as raised:
        await segment_store.migrations(
            first=10, after="bm90LWEtY3Vyc29y", from_segment=None, to_segment=None, since=None
        )
    assert raised.value.code == "INVALID_CURSOR"


async def test_scan_reads_every_stored_segment(
    segment_store: SegmentStore, customer_store: CustomerStore
) -> None:
    ids = [f"s{i:02d}" for i in range(7)]
    await _customers(customer_store, *ids)
    codes = [SegmentCode.LOYAL, SegmentCode.NEW, SegmentCode.LOST]
    await segment_store.apply(
        [SegmentChange(record(c, codes[i % 3]), None) for i, c in enumerate(ids)]
    )
    seen: list[str] = []
    after = None
    while True:
        page = await segment_store.scan(after=after, limit=3)
        seen.extend(r.assignment.customer_id for r in page.items)
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert sorted(seen) == ids


async def test_customers_are_listed_by_segment(
    segment_store: SegmentStore, customer_store: CustomerStore
) -> None:
    ids = [f"k{i:02d}" for i in range(6)]
    await _customers(customer_store, *ids)
    await segment_store.apply(
        [
            SegmentChange(record(c, SegmentCode.CHAMPIONS if i % 2 else SegmentCode.LOST), None)
            for i, c in enumerate(ids)
        ]
    )
    champions: list[str] = []
    after = None
    while True:
        page = await customer_store.list(
            first=2, after=after, search=None, segment=SegmentCode.CHAMPIONS
        )
        champions.extend(c.id for c in page.items)
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert champions == ["k01", "k03", "k05"]
    empty = await customer_store.list(first=5, after=None, search=None, segment=SegmentCode.NEW)
    assert empty.items == []
    assert not empty.has_next_page


async def test_summary_round_trips(segment_store: SegmentStore) -> None:
    summary = SegmentSummary(
        measured_at=T0,
        model_version=VERSION,
        customers=12,
        kpis=(
            SegmentKpis(SegmentCode.CHAMPIONS, 4, 0.61, 90_210.5, 31.5, 1.0),
            SegmentKpis(SegmentCode.LOST, 8, 0.39, 1_020.0, 2.25, 0.125),
        ),
    )
    await segment_store.save_summary(summary)
    later = SegmentSummary(T0 + timedelta(hours=1), VERSION, 0, ())
    await segment_store.save_summary(later)
    assert await segment_store.summary() == later
