"""The segment updater (own checkpoint, never ahead of the prediction updater) and the sweep."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from domain.clock import FixedClock
from domain.customers import Customer
from domain.events import customer_registered, purchase_recorded
from domain.purchases import Purchase, PurchaseLine
from domain.segments import SegmentCode
from domain.services.segment_updates import SegmentSweeper, SegmentUpdater
from schema.app import Container
from tests.unit.conftest import NOW

LINE = (PurchaseLine("MILK-1L", 2, 119, 0),)


async def _buy(container: Container, customer_id: str, days_ago: list[float]) -> None:
    purchases = [
        Purchase(f"p_{customer_id}_{d}", customer_id, NOW - timedelta(days=d), LINE, "s1")
        for d in days_ago
    ]
    await container.purchase_store.add_many(purchases, [purchase_recorded(p) for p in purchases])


async def test_the_updater_follows_the_prediction_checkpoint(container: Container) -> None:
    assert container.events is not None
    assert container.segments is not None
    people = [Customer(f"u{i}", NOW - timedelta(days=300)) for i in range(12)]
    await container.customer_store.add_many(people, [customer_registered(c) for c in people])
    for i, c in enumerate(people):
        await _buy(container, c.id, [float(5 + 20 * i + k) for k in range(i + 1)])
    updater = SegmentUpdater(container.events, container.segments, follows="predictions")
    await updater.start()  # no model yet: refits everyone, starts at the head
    assert await container.segments.model() is not None
    assert updater.position == await container.events.head()

    newcomer = Customer("fresh", NOW)
    await container.customer_store.add_many([newcomer], [customer_registered(newcomer)])
    await _buy(container, "fresh", [0.1])
    assert await updater.process_once() == 0  # the prediction updater has not got there yet
    assert await container.segments.assignments(["fresh"]) == {}

    await container.events.save_checkpoint("predictions", await container.events.head())
    assert await updater.process_once() > 0
    assert (await container.segments.assignments(["fresh"]))["fresh"].segment in {
        SegmentCode.NEW, SegmentCode.PROMISING, SegmentCode.POTENTIAL_LOYALIST,
    }  # fmt: skip
    assert await container.events.checkpoint(SegmentUpdater.CONSUMER) == updater.position


async def test_the_sweeper_sweeps_on_its_interval(container: Container, clock: FixedClock) -> None:
    assert container.segments is not None
    people = [Customer(f"w{i}", NOW - timedelta(days=300)) for i in range(10)]
    await container.customer_store.add_many(people, [customer_registered(c) for c in people])
    for i, c in enumerate(people):
        await _buy(container, c.id, [float(1 + 3 * k) for k in range(2 * i + 1)])
    await container.segments.refit()
    clock.set(NOW + timedelta(days=400))
    sweeper = SegmentSweeper(container.segments, interval_seconds=0.01)
    task = asyncio.create_task(sweeper.run())
    try:
        for _ in range(500):
            if sweeper.sweeps:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert sweeper.sweeps >= 1
    found = await container.segments.assignments([c.id for c in people])
    assert {a.segment for a in found.values()} <= {
        SegmentCode.LOST, SegmentCode.HIBERNATING, SegmentCode.AT_RISK, SegmentCode.CANT_LOSE,
    }  # fmt: skip
