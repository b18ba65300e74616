"""The anomaly processor in the product: a purchase recorded through PurchaseService, the
prediction updater's pass over the event log with the detectors around it, the stored anomaly,
its insight and their events; redelivery and a crash between storing and checkpointing; the
sweep with a clock moved forward."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.anomalies import AnomalyKind, Severity
from domain.clock import FixedClock
from domain.demo import DemoData, generate
from domain.demo.seeding import write
from domain.events import ANOMALY_DETECTED, INSIGHT_GENERATED
from domain.services.anomalies import AnomalyService
from domain.services.local_analyst import LOCAL_MODEL
from domain.services.predictions import PredictionUpdater
from domain.services.purchases import LineRequest
from schema.app import Container, open_container
from schema.settings import Settings

AS_OF = datetime(2026, 11, 1, 18, 0, tzinfo=UTC)


@dataclass
class World:
    container: Container
    clock: FixedClock
    data: DemoData
    updater: PredictionUpdater
    anomalies: AnomalyService


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate(as_of=AS_OF, n_customers=40, seed=11, days=240)


@pytest.fixture
async def world(tmp_path: Path, demo: DemoData) -> AsyncIterator[World]:
    clock = FixedClock(AS_OF)
    async with open_container(Settings(data_dir=tmp_path, env="test"), clock=clock) as c:
        await write(demo, c.customer_store, c.product_store, c.purchase_store)
        assert c.prediction_updater is not None
        assert c.anomalies is not None
        await c.prediction_updater.start()  # fits on the seeded history
        yield World(c, clock, demo, c.prediction_updater, c.anomalies)


def regular_customer(w: World) -> str:
    """A demo customer with a long, ordinary history."""
    counts: dict[str, int] = {}
    for p in w.data.purchases:
        counts[p.customer_id] = counts.get(p.customer_id, 0) + 1
    return max(counts, key=lambda c: counts[c])


async def record_spike(w: World, customer: str, *, key: str | None = "spike-1") -> str:
    """A basket about 20x the customer's usual spend, an hour after the seeded history."""
    totals = sorted(p.total for p in w.data.purchases if p.customer_id == customer)
    median = totals[len(totals) // 2]
    product = max(w.data.products, key=lambda p: p.price)
    quantity = max(1, round(20 * median / product.price))
    at = AS_OF + timedelta(hours=1)
    w.clock.set(max(w.clock.now(), at))
    purchase = await w.container.purchases.record(
        customer_id=customer,
        lines=[LineRequest(sku=product.sku, quantity=quantity)],
        purchased_at=at,
        store_id="store_01",
        idempotency_key=key,
    )
    return purchase.id


def updater_of(w: World) -> PredictionUpdater:
    """Another updater on the same log and services, as after a restart."""
    assert w.container.events is not None
    assert w.container.predictions is not None
    return PredictionUpdater(w.container.events, w.container.predictions, hook=w.anomalies)


async def events_of(w: World, kind: str) -> list[str]:
    assert w.container.events is not None
    logged = await w.container.events.read(after=0, limit=100_000)
    return [e.event.id for e in logged if e.event.type == kind]


async def spikes(w: World) -> list[str]:
    page = await w.anomalies.anomalies(first=100)
    return [a.id for a in page.items if a.kind is AnomalyKind.BASKET_SPIKE]


async def test_an_anomalous_purchase_yields_one_anomaly_one_insight_and_their_events(
    world: World,
) -> None:
    customer = regular_customer(world)
    purchase_id = await record_spike(world, customer)

    assert await world.updater.process_once() == 1

    page = await world.anomalies.anomalies(first=100, min_severity=Severity.HIGH)
    [spike] = [a for a in page.items if a.kind is AnomalyKind.BASKET_SPIKE]
    assert spike.customer_id == customer
    assert spike.subject == purchase_id
    assert spike.evidence["ratio"] > 10
    assert "median basket" in spike.explanation
    assert await events_of(world, ANOMALY_DETECTED) == [f"evt_{spike.id}"]
    insights = await world.anomalies.insights(customer)
    [insight] = insights.items
    assert insight.anomaly_id == spike.id
    assert insight.text.startswith(spike.explanation)
    assert insight.model == LOCAL_MODEL
    assert len(await events_of(world, INSIGHT_GENERATED)) == 1


async def test_processing_the_same_events_again_duplicates_nothing(world: World) -> None:
    customer = regular_customer(world)
    await record_spike(world, customer)
    start = world.updater.position
    await world.updater.process_once()

    # Redelivery: a second updater from the old position (as after a lost checkpoint).
    again = PredictionUpdater(
        world.container.events, world.container.predictions, hook=world.anomalies
    )  # type: ignore[arg-type]
    again.position = start
    assert await again.process_once() == 3  # the purchase, then the anomaly's and insight's events

    assert len(await spikes(world)) == 1
    assert len(await events_of(world, ANOMALY_DETECTED)) == 1
    assert len((await world.anomalies.insights(customer)).items) == 1


async def test_a_crash_between_storing_and_checkpointing_loses_and_duplicates_nothing(
    world: World,
) -> None:
    events = world.container.events
    assert events is not None
    customer = regular_customer(world)
    await record_spike(world, customer)
    checkpoint = await events.checkpoint(PredictionUpdater.CONSUMER)

    class Crash(Exception):
        pass

    async def crash(consumer: str, position: int) -> None:
        raise Crash

    saved = events.save_checkpoint
    events.save_checkpoint = crash  # type: ignore[method-assign]
    try:
        with pytest.raises(Crash):
            await world.updater.process_once()
    finally:
        events.save_checkpoint = saved  # type: ignore[method-assign]
    assert await events.checkpoint(PredictionUpdater.CONSUMER) == checkpoint
    assert len(await spikes(world)) == 1

    # The restarted process resumes from the checkpoint and handles the purchase again.
    restarted = updater_of(world)
    await restarted.start()
    assert restarted.position == checkpoint
    assert await restarted.process_once() >= 1

    assert len(await spikes(world)) == 1
    assert len(await events_of(world, ANOMALY_DETECTED)) == 1
    assert len((await world.anomalies.insights(customer)).items) == 1


async def test_a_retried_request_is_one_purchase_and_one_anomaly(world: World) -> None:
    customer = regular_customer(world)
    await record_spike(world, customer, key="same-key")
    await record_spike(world, customer, key="same-key")
    await world.updater.process_once()

    assert len(await spikes(world)) == 1


async def test_ordinary_baskets_raise_nothing(world: World) -> None:
    customer = regular_customer(world)
    usual = [p for p in world.data.purchases if p.customer_id == customer][-3:]
    for i, p in enumerate(usual):
        world.clock.set(AS_OF + timedelta(days=7 * (i + 1), minutes=1))
        await world.container.purchases.record(
            customer_id=customer,
            lines=[LineRequest(sku=ln.sku, quantity=ln.quantity) for ln in p.lines],
            purchased_at=AS_OF + timedelta(days=7 * (i + 1)),
            store_id=p.store_id,
            idempotency_key=None,
        )
    await world.updater.process_once()

    page = await world.anomalies.anomalies(first=100)
    assert [a for a in page.items if a.kind is AnomalyKind.BASKET_SPIKE] == []
    assert [a for a in page.items if a.kind is AnomalyKind.BURST] == []


async def test_the_sweep_finds_an_overdue_staple_when_time_passes(world: World) -> None:
    assert world.container.predictions is not None
    await world.anomalies.sweep()  # whatever the seeded history shows now
    before = {a.dedup_key for a in (await world.anomalies.anomalies(first=100)).items}

    world.clock.set(AS_OF + timedelta(days=60))
    found = await world.anomalies.sweep()

    page = await world.anomalies.anomalies(first=100)
    overdue = [a for a in page.items if a.kind is AnomalyKind.OVERDUE and a.dedup_key not in before]
    assert found >= len(overdue) > 0
    assert all(a.evidence["daysPastWindow"] > 0 for a in overdue)
    # Sweeping again at the same moment finds the same anomalies: nothing new is stored.
    assert await world.anomalies.sweep() == 0
    assert len((await world.anomalies.anomalies(first=100)).items) == len(page.items)
