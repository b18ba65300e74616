"""The anomalies and customerInsights subscriptions through the schema: anomalies stored in
SQLite with their events, relayed from the event log onto the in-process bus by the product's
relay, fanned out by the hub; replay after a ``since`` cursor, live continuation without gaps or
repeats, the repair of a message the bus lost, filters, roles and typed cursor errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from strawberry.types import ExecutionResult

from adapters.sqlite.anomalies import SqliteAnomalyStore, SqliteInsightStore
from adapters.sqlite.database import SqliteDatabase
from domain.access import DEV_ADMIN, Principal, Role
from domain.anomalies import (
    Anomaly,
    AnomalyKind,
    Insight,
    Severity,
    anomaly_detected,
    anomaly_id,
    insight_id,
)
from domain.clock import FixedClock
from domain.events import DomainEvent, channel_for
from domain.pagination import encode_cursor
from domain.services.anomalies import AnomalyService
from schema.app import Container, open_container
from schema.context import Context, Services
from schema.schema import OmnixSchema, build_schema
from schema.settings import Settings
from schema.types.anomalies import ANOMALY_STREAM, INSIGHT_STREAM, since_cursor
from subscriptions.hub import SubscriptionHub

AS_OF = datetime(2026, 11, 1, 18, 0, tzinfo=UTC)

ANOMALIES = """
subscription Anomalies($minSeverity: Severity, $since: String) {
  anomalies(minSeverity: $minSeverity, since: $since) { id kind severity customerId cursor position }
}
"""
INSIGHTS = """
subscription Insights($customerId: ID!, $since: String) {
  customerInsights(customerId: $customerId, since: $since) { id text anomalyId cursor position }
}
"""


@dataclass
class World:
    container: Container
    anomaly_store: SqliteAnomalyStore
    insight_store: SqliteInsightStore
    hub: SubscriptionHub
    schema: OmnixSchema
    customers: list[str]
    count: int = 0
    open: list[AsyncGenerator[Any, None]] = field(default_factory=list)

    @property
    def service(self) -> AnomalyService:
        assert self.container.anomalies is not None
        return self.container.anomalies

    async def store(
        self, customer: str | None = None, severity: Severity = Severity.HIGH
    ) -> Anomaly:
        """One new anomaly and its insight, as the processor stores them (events included)."""
        self.count += 1
        key = f"{AnomalyKind.BASKET_SPIKE}:{customer or 'store'}:{self.count}"
        [anomaly] = await self.anomaly_store.record(
            [
                Anomaly(
                    id=anomaly_id(key),
                    kind=AnomalyKind.BASKET_SPIKE,
                    severity=severity,
                    score=25.0,
                    customer_id=customer or self.customers[0],
                    subject=f"pur_{self.count}",
                    explanation=f"spike {self.count}",
                    evidence={"ratio": 20.0},
                    detected_at=AS_OF,
                    dedup_key=key,
                )
            ]
        )
        await self.insight_store.record(
            [
                Insight(
                    id=insight_id(anomaly.id),
                    customer_id=anomaly.customer_id or "",
                    text=f"insight on {anomaly.explanation}",
                    anomaly_id=anomaly.id,
                    created_at=AS_OF,
                    model="detector",
                )
            ]
        )
        return anomaly

    async def relay(self) -> int:
        """Publish what the stores appended to the event log, as ``omnix serve``'s relay does."""
        assert self.container.relay is not None
        return await self.container.relay.relay_once()

    async def subscribe(
        self, query: str, principal: Principal = DEV_ADMIN, **variables: Any
    ) -> AsyncGenerator[ExecutionResult, None]:
        services = Services(
            customers=self.container.customers,
            purchases=self.container.purchases,
            catalogue=self.container.catalogue,
            hub=self.hub,
            anomalies=self.container.anomalies,
        )
        context = Context(services=services, principal=principal, request_id="t")
        stream = await self.schema.subscribe(query, variables, context)
        assert isinstance(stream, AsyncGenerator), stream
        self.open.append(stream)
        return stream

    async def joined(self, channel: str) -> None:
        """Until a subscription listens on ``channel`` (it joins inside its first step)."""
        for _ in range(200):
            if self.hub.stats().get(channel):
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"nobody joined {channel}")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    settings = Settings(data_dir=tmp_path, env="test")
    clock = FixedClock(AS_OF)
    async with (
        open_container(settings, clock=clock) as container,
        SqliteDatabase(settings.sqlite_path) as db,
    ):
        assert container.relay is not None
        await container.relay.start()
        customers = [
            (
                await container.customers.register(
                    name=f"Customer {n}",
                    email=f"c{n}@example.com",
                    consent=None,
                    idempotency_key=None,
                )
            ).id
            for n in range(2)
        ]
        await container.relay.relay_once()  # past the registrations
        hub = SubscriptionHub(container.bus, decode=DomainEvent.from_json)
        w = World(
            container,
            SqliteAnomalyStore(db),
            SqliteInsightStore(db),
            hub,
            build_schema(),
            customers,
        )
        try:
            yield w
        finally:
            for stream in w.open:
                await stream.aclose()
            await hub.close()


async def take(stream: AsyncGenerator[ExecutionResult, None], n: int) -> list[dict[str, Any]]:
    items = []
    for _ in range(n):
        result = await asyncio.wait_for(anext(stream), timeout=5)
        assert result.errors is None, result.errors
        assert result.data is not None
        items.append(next(iter(result.data.values())))
    return items


async def nothing_more(stream: AsyncGenerator[ExecutionResult, None]) -> None:
    """Nothing else arrives for a while; ends the stream (use last)."""
    waiting = asyncio.ensure_future(anext(stream))
    done, _ = await asyncio.wait({waiting}, timeout=0.2)
    assert not done, waiting.result()
    waiting.cancel()
    with pytest.raises((asyncio.CancelledError, StopAsyncIteration)):
        await waiting


async def error_of(stream: AsyncGenerator[ExecutionResult, None]) -> dict[str, Any]:
    result = await asyncio.wait_for(anext(stream), timeout=5)
    assert result.errors, result
    return dict(result.errors[0].extensions or {}) | {"message": result.errors[0].message}


CHANNEL = channel_for("AnomalyDetected")


async def test_a_live_subscriber_receives_each_stored_anomaly_with_its_cursor(world: World) -> None:
    stream = await world.subscribe(ANOMALIES)
    first = asyncio.ensure_future(take(stream, 2))
    await world.joined(CHANNEL)
    a, b = await world.store(), await world.store()
    await world.relay()

    got = await first
    assert [g["id"] for g in got] == [a.id, b.id]
    assert [g["position"] for g in got] == [str(a.position), str(b.position)]
    assert [g["cursor"] for g in got] == [cursor_of(a), cursor_of(b)]
    assert got[0]["kind"] == "BASKET_SPIKE"


async def test_since_replays_exactly_what_was_missed_then_continues_live(world: World) -> None:
    seen, *missed = [await world.store() for _ in range(4)]
    await world.relay()  # published while nobody listened
    cursor = cursor_of(seen)

    stream = await world.subscribe(ANOMALIES, since=cursor)
    replayed = await take(stream, 3)
    assert [r["id"] for r in replayed] == [a.id for a in missed]

    live = await world.store()
    await world.relay()
    [got] = await take(stream, 1)
    assert got["id"] == live.id
    await nothing_more(stream)


def cursor_of(anomaly: Anomaly) -> str:
    return since_cursor(ANOMALY_STREAM, anomaly.position)


async def test_what_is_published_during_the_replay_comes_once_in_order(world: World) -> None:
    seen = await world.store()
    backlog = [await world.store() for _ in range(150)]  # more than one replay page
    await world.relay()
    cursor = cursor_of(seen)

    stream = await world.subscribe(ANOMALIES, since=cursor)
    head = await take(stream, 10)  # the replay is under way, the live listener joined
    during = [await world.store() for _ in range(5)]
    await world.relay()  # these arrive live while the replay still reads the store
    rest = await take(stream, 145)

    ids = [g["id"] for g in head + rest]
    assert ids == [a.id for a in backlog + during]
    await nothing_more(stream)


async def live_with_one_received(world: World) -> tuple[AsyncGenerator[Any, None], Anomaly]:
    """A live subscriber that has received one anomaly, and that anomaly."""
    stream = await world.subscribe(ANOMALIES)
    first = asyncio.ensure_future(take(stream, 1))
    await world.joined(CHANNEL)
    a = await world.store()
    await world.relay()
    await first
    return stream, a


async def test_repeated_live_messages_are_dropped(world: World) -> None:
    stream, a = await live_with_one_received(world)
    # The relay is at least once: a takeover republishes what the old holder had sent.
    await world.container.bus.publish(CHANNEL, anomaly_detected(a).to_json())
    b = await world.store()
    await world.relay()
    [got] = await take(stream, 1)
    assert got["id"] == b.id


async def test_a_message_the_bus_lost_is_filled_from_the_store(world: World) -> None:
    stream, a = await live_with_one_received(world)
    lost, after = await world.store(), await world.store()
    # Only the later one reaches the bus (as when the hub resubscribes in between).
    await world.container.bus.publish(CHANNEL, anomaly_detected(after).to_json())

    got = await take(stream, 2)
    assert [g["id"] for g in got] == [lost.id, after.id]
    assert a.position < lost.position < after.position


async def test_a_live_subscriber_gets_what_arrives_out_of_order_once_in_order(
    world: World,
) -> None:
    before = await world.store()
    await world.relay()  # stored before the subscriber came: not for it
    stream = await world.subscribe(ANOMALIES)
    waiting = asyncio.ensure_future(take(stream, 2))
    await world.joined(CHANNEL)
    a, b = await world.store(), await world.store()
    # A sharded stream may deliver b before a.
    for late in (b, a):
        await world.container.bus.publish(CHANNEL, anomaly_detected(late).to_json())
    got = await waiting
    assert [g["id"] for g in got] == [a.id, b.id]
    assert before.id not in {g["id"] for g in got}
    await nothing_more(stream)


async def test_min_severity_filters_the_replay_and_the_live_stream(world: World) -> None:
    seen = await world.store(severity=Severity.CRITICAL)
    low = await world.store(severity=Severity.LOW)
    high = await world.store(severity=Severity.HIGH)
    await world.relay()
    cursor = cursor_of(seen)

    stream = await world.subscribe(ANOMALIES, minSeverity="HIGH", since=cursor)
    [replayed] = await take(stream, 1)
    assert replayed["id"] == high.id
    await world.store(severity=Severity.MEDIUM)
    critical = await world.store(severity=Severity.CRITICAL)
    await world.relay()
    [live] = await take(stream, 1)
    assert live["id"] == critical.id
    assert low.id not in (replayed["id"], live["id"])


async def test_customer_insights_replays_and_follows_one_customers_insights(world: World) -> None:
    me, other = world.customers
    first = await world.store(me)
    await world.store(other)
    mine = await world.store(me)
    await world.relay()
    insights = await world.service.insights(me, first=10)
    seen = next(i for i in insights.items if i.anomaly_id == first.id)
    stream = await world.subscribe(
        INSIGHTS,
        principal=Principal("me", frozenset({Role.CUSTOMER}), customer_id=me),
        customerId=me,
        since=since_cursor(INSIGHT_STREAM, seen.position),
    )
    [replayed] = await take(stream, 1)
    assert replayed["anomalyId"] == mine.id
    await world.store(other)
    live = await world.store(me)
    await world.relay()
    [got] = await take(stream, 1)
    assert got["anomalyId"] == live.id
    await nothing_more(stream)


async def test_roles(world: World) -> None:
    me, other = world.customers
    customer = Principal("me", frozenset({Role.CUSTOMER}), customer_id=me)
    assert (await error_of(await world.subscribe(ANOMALIES, principal=customer)))["code"] == (
        "FORBIDDEN"
    )
    theirs = await world.subscribe(INSIGHTS, principal=customer, customerId=other)
    assert (await error_of(theirs))["code"] == "FORBIDDEN"
    unknown = await world.subscribe(INSIGHTS, customerId="cus_doesnotexist000000000000")
    assert (await error_of(unknown))["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "since",
    [
        "not a cursor",
        encode_cursor("anomaly", [1]),  # a page cursor of the anomalies query
        encode_cursor(INSIGHT_STREAM, [1]),
        encode_cursor(ANOMALY_STREAM, ["1"]),
        encode_cursor(ANOMALY_STREAM, [0]),
        encode_cursor(ANOMALY_STREAM, [True]),
    ],
)
async def test_a_since_that_is_no_anomalies_cursor_is_invalid(world: World, since: str) -> None:
    error = await error_of(await world.subscribe(ANOMALIES, since=since))
    assert (error["code"], error["field"]) == ("INVALID_CURSOR", "since")


async def test_a_cursor_beyond_everything_stored_is_a_replay_window_error(world: World) -> None:
    a = await world.store()
    stream = await world.subscribe(ANOMALIES, since=since_cursor(ANOMALY_STREAM, a.position + 5))
    assert (await error_of(stream))["code"] == "REPLAY_WINDOW_EXCEEDED"
    ok = await world.subscribe(ANOMALIES, since=since_cursor(ANOMALY_STREAM, a.position))
    await nothing_more(ok)
