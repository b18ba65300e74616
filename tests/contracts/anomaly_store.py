"""The AnomalyStore and InsightStore contract. Fixtures: ``anomaly_store``, ``insight_store``
and ``written_events`` (the events the stores wrote beside their rows, oldest first)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from domain.anomalies import (
    Anomaly,
    AnomalyKind,
    Insight,
    Severity,
    anomaly_from_payload,
    anomaly_id,
    insight_id,
)
from domain.errors import ValidationError
from domain.events import ANOMALY_DETECTED, INSIGHT_GENERATED, DomainEvent
from domain.ports import AnomalyStore, InsightStore
from tests.contracts.builders import CET, T0

WrittenEvents = Callable[[], Awaitable[list[DomainEvent]]]


def anomaly(
    key: str,
    *,
    severity: Severity = Severity.MEDIUM,
    customer_id: str | None = "cus_1",
    minutes: int = 0,
    explanation: str = "Basket of 900.00 is 20.0x this customer's median basket.",
) -> Anomaly:
    return Anomaly(
        id=anomaly_id(key),
        kind=AnomalyKind.BASKET_SPIKE if customer_id else AnomalyKind.SALES_RATE,
        severity=severity,
        score=12.5,
        customer_id=customer_id,
        subject="pur_1" if customer_id else "store:store_01",
        explanation=explanation,
        evidence={"totalCents": 90000, "medianCents": 4500.0, "ratio": 20.0},
        detected_at=T0 + timedelta(minutes=minutes),
        dedup_key=key,
        source_event_id="evt_1",
    )


def insight(of: Anomaly, *, text: str = "Unusually large basket.") -> Insight:
    assert of.customer_id is not None
    return Insight(
        id=insight_id(of.id),
        customer_id=of.customer_id,
        text=text,
        anomaly_id=of.id,
        created_at=T0,
        model="local-statistics",
    )


async def test_an_anomaly_round_trips_with_a_position_and_its_event(
    anomaly_store: AnomalyStore, written_events: WrittenEvents
) -> None:
    given = anomaly("k1")

    [stored] = await anomaly_store.record([given])

    assert stored.position > 0
    assert stored == replace(given, position=stored.position)
    assert (await anomaly_store.get_many([given.id, "anm_none"])) == {given.id: stored}
    events = [e for e in await written_events() if e.type == ANOMALY_DETECTED]
    assert [e.id for e in events] == [f"evt_{given.id}"]
    assert anomaly_from_payload(events[0].payload["anomaly"]) == stored


async def test_the_same_cause_and_window_is_stored_once_with_one_event(
    anomaly_store: AnomalyStore, written_events: WrittenEvents
) -> None:
    first = await anomaly_store.record([anomaly("k1")])
    again = await anomaly_store.record(
        [anomaly("k1", explanation="found again", minutes=5), anomaly("k2")]
    )

    assert again[0] == first[0]
    assert again[1].position > first[0].position
    events = [e for e in await written_events() if e.type == ANOMALY_DETECTED]
    assert len(events) == 2


async def test_after_replays_in_acceptance_order_with_filters(anomaly_store: AnomalyStore) -> None:
    stored = await anomaly_store.record(
        [
            anomaly("a", severity=Severity.LOW),
            anomaly("b", severity=Severity.CRITICAL, customer_id="cus_2"),
            anomaly("c", severity=Severity.HIGH, customer_id=None),
        ]
    )
    positions = [a.position for a in stored]
    assert positions == sorted(positions)

    assert [a.dedup_key for a in await anomaly_store.after(0, limit=10)] == ["a", "b", "c"]
    assert [a.dedup_key for a in await anomaly_store.after(positions[0], limit=1)] == ["b"]
    high = await anomaly_store.after(0, limit=10, min_severity=Severity.HIGH)
    assert [a.dedup_key for a in high] == ["b", "c"]
    assert [a.dedup_key for a in await anomaly_store.after(0, limit=10, customer_id="cus_2")] == [
        "b"
    ]
    assert await anomaly_store.after(positions[-1], limit=10) == []


async def test_recent_pages_newest_first_with_severity_and_since(
    anomaly_store: AnomalyStore,
) -> None:
    await anomaly_store.record(
        [anomaly(f"k{i}", minutes=i, severity=Severity(1 + i % 4)) for i in range(5)]
    )

    first = await anomaly_store.recent(first=2, after=None, min_severity=None, since=None)
    rest = await anomaly_store.recent(
        first=10, after=first.end_cursor, min_severity=None, since=None
    )
    assert [a.dedup_key for a in first.items] == ["k4", "k3"]
    assert first.has_next_page
    assert [a.dedup_key for a in rest.items] == ["k2", "k1", "k0"]
    assert not rest.has_next_page

    high = await anomaly_store.recent(first=10, after=None, min_severity=Severity.HIGH, since=None)
    assert [a.dedup_key for a in high.items] == ["k3", "k2"]
    # since compares instants, whatever the offset it is given in
    since = (T0 + timedelta(minutes=3)).astimezone(CET)
    late = await anomaly_store.recent(first=10, after=None, min_severity=None, since=since)
    assert [a.dedup_key for a in late.items] == ["k4", "k3"]


async def test_a_foreign_cursor_is_a_validation_error(anomaly_store: AnomalyStore) -> None:
    with pytest.raises(ValidationError):
        await anomaly_store.recent(first=5, after="bm9wZQ", min_severity=None, since=None)


async def test_state_is_written_with_the_anomalies(anomaly_store: AnomalyStore) -> None:
    assert await anomaly_store.load_state("sales_rate") is None
    await anomaly_store.record([], state=("sales_rate", '{"v":1}'))
    await anomaly_store.record([anomaly("k1")], state=("sales_rate", '{"v":2}'))

    assert await anomaly_store.load_state("sales_rate") == '{"v":2}'


async def test_one_insight_per_anomaly_with_its_event(
    anomaly_store: AnomalyStore, insight_store: InsightStore, written_events: WrittenEvents
) -> None:
    [a] = await anomaly_store.record([anomaly("k1")])
    [stored] = await insight_store.record([insight(a)])
    [again] = await insight_store.record([insight(a, text="written again")])

    assert stored.position > 0
    assert again == stored
    assert stored.text == "Unusually large basket."
    assert await insight_store.for_anomalies([a.id, "anm_none"]) == {a.id: stored}
    events = [e for e in await written_events() if e.type == INSIGHT_GENERATED]
    assert [e.id for e in events] == [f"evt_{stored.id}"]
    assert events[0].customer_id == "cus_1"


async def test_a_customers_insights_page_newest_first_and_replay_in_order(
    anomaly_store: AnomalyStore, insight_store: InsightStore
) -> None:
    found = await anomaly_store.record(
        [anomaly(f"k{i}", customer_id="cus_1" if i != 2 else "cus_2") for i in range(4)]
    )
    stored = await insight_store.record([insight(a) for a in found])

    page = await insight_store.for_customer("cus_1", first=2, after=None)
    rest = await insight_store.for_customer("cus_1", first=2, after=page.end_cursor)
    assert [i.anomaly_id for i in page.items] == [found[3].id, found[1].id]
    assert page.has_next_page
    assert [i.anomaly_id for i in rest.items] == [found[0].id]
    assert not rest.has_next_page
    assert [i.id for i in await insight_store.after(0, limit=10)] == [i.id for i in stored]
    replay = await insight_store.after(stored[0].position, limit=10, customer_id="cus_1")
    assert [i.id for i in replay] == [stored[1].id, stored[3].id]
