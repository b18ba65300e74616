"""``omnix worker``'s realtime handlers on the production path (a DynamoDB store, a Kinesis
stream, on moto): purchases relayed to the stream re-predict their customer and an anomalous
basket is stored with its insight; a worker that crashed after handling a batch but before
acknowledging it is restarted, handles the batch again, and stores and announces nothing twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.kinesis.checkpoints import CheckpointTable
from domain.anomalies import AnomalyKind
from domain.events import ANOMALY_DETECTED, INSIGHT_GENERATED, PURCHASE_RECORDED
from domain.products import PriceTier, Product
from domain.services.purchases import LineRequest
from schema.app import Container, init_event_log, init_store, open_container
from schema.settings import Settings
from schema.worker import DEFAULT_CONSUMER, run_worker, stream_handlers, sweep_tasks

from .conftest import raw_records, stream_url

MILK = Product(
    sku="WRK-MILK-1",
    name="Whole milk 1 l",
    category="Dairy",
    brand="Dairyland",
    price_tier=PriceTier.STANDARD,
    pack_size=1.0,
    unit="l",
    price=200,
)


async def relay_all(container: Container) -> None:
    assert container.outbox_relay is not None
    while await container.outbox_relay.relay_once():
        pass


async def handled_ids(container: Container) -> set[str]:
    """Event ids the worker's consumer has acknowledged (the checkpoints' recent ids)."""
    assert container.kinesis is not None
    table = CheckpointTable(container.kinesis.dynamodb, container.kinesis.settings.checkpoints)
    saved = await table.load(DEFAULT_CONSUMER)
    return {event_id for c in saved.values() for event_id in c.recent_ids}


async def event_id_of(container: Container, purchase_id: str) -> str:
    assert container.kinesis is not None
    for record in await raw_records(container.kinesis):
        event = json.loads(record["Data"])
        if event["type"] == PURCHASE_RECORDED and event["payload"]["purchase"]["id"] == purchase_id:
            return str(event["id"])
    raise AssertionError(f"no PurchaseRecorded of {purchase_id} in the stream")


async def run_worker_until(settings: Settings, container: Container, purchase_id: str) -> None:
    """``omnix worker`` until it has acknowledged the purchase's event, then SIGTERM-like."""
    event_id = await event_id_of(container, purchase_id)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop=stop, report_every=60))
    deadline = asyncio.get_running_loop().time() + 60
    while event_id not in await handled_ids(container):
        assert not worker.done(), worker
        assert asyncio.get_running_loop().time() < deadline, "the worker is stuck"
        await asyncio.sleep(0.2)
    stop.set()
    assert await asyncio.wait_for(worker, timeout=30) == 0


async def test_the_worker_predicts_and_stores_an_anomaly_once_across_a_restart(
    aws_env: dict[str, str], stream_name: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        store_url=f"dynamodb://?prefix=w{uuid.uuid4().hex[:10]}-&timeout=10",
        events_url=stream_url(stream_name),
    )
    await init_store(settings)
    await init_event_log(settings)
    now = datetime.now(UTC).replace(microsecond=0)

    async with open_container(settings) as c:
        # omnix serve on this configuration runs no updaters and no sweeps itself
        assert not c.realtime_in_process
        assert c.prediction_updater is None
        assert c.segment_updater is None
        sweeps = sweep_tasks(c)
        for sweep in sweeps.values():
            sweep.close()
        assert [name.split(" every")[0] for name in sweeps] == ["anomaly sweep", "segment sweep"]

        await c.product_store.upsert_many([MILK])
        customer, other = [
            await c.customers.register(
                name=name, email=f"{name}-{uuid.uuid4().hex[:8]}@example.com", consent=None,
                idempotency_key=None,
            )
            for name in ("ada", "ben")
        ]  # fmt: skip
        for weeks in range(8, 0, -1):  # the models need two customers and some spread
            for who in (customer, other):
                last = await c.purchases.record(
                    customer_id=who.id,
                    lines=[LineRequest(sku=MILK.sku, quantity=1 + weeks % 3)],
                    purchased_at=now - timedelta(weeks=weeks, days=1 if who is other else 0),
                )
        await relay_all(c)
        await run_worker_until(settings, c, last.id)

        assert c.predictions is not None
        assert c.anomalies is not None
        predicted = await c.predictions.for_customer(customer.id)
        assert predicted is not None
        assert predicted.forecast is not None
        assert [p.sku for p in predicted.consumption] == [MILK.sku]
        assert (await c.anomalies.anomalies(first=100)).items == []

        spike = await c.purchases.record(
            customer_id=customer.id, lines=[LineRequest(sku=MILK.sku, quantity=100)]
        )
        await relay_all(c)
        # A worker that handles the spike's batch and crashes before acknowledging it.
        assert c.event_stream is not None
        stream = c.event_stream(DEFAULT_CONSUMER)
        handlers = stream_handlers(c)
        assert [getattr(h, "name", type(h).__name__) for h in handlers] == [
            "BusFanOut", "AnomalyHandler", "segments",
        ]  # fmt: skip
        seen: set[str] = set()
        deadline = asyncio.get_running_loop().time() + 30
        while spike.id not in seen:
            assert asyncio.get_running_loop().time() < deadline, "the spike never arrived"
            batch = await stream.next_batch(timeout=1.0)
            if batch is None:
                continue
            for handler in handlers:
                await handler.handle(batch.events)
            seen |= {
                e.payload["purchase"]["id"] for e in batch.events if e.type == PURCHASE_RECORDED
            }
        await stream.close()

        after = await c.predictions.for_customer(customer.id)
        assert after is not None
        assert after.consumption[0].purchases == 9
        found = (await c.anomalies.anomalies(first=100)).items
        spikes = [a for a in found if a.kind is AnomalyKind.BASKET_SPIKE]
        assert [a.subject for a in spikes] == [spike.id]
        insights = (await c.anomalies.insights(customer.id, first=100)).items
        assert [i.anomaly_id for i in insights] == [spikes[0].id]

        # ``omnix worker`` restarted: the unacknowledged batch comes again.
        await run_worker_until(settings, c, spike.id)

        assert (await c.anomalies.anomalies(first=100)).items == found
        assert (await c.anomalies.insights(customer.id, first=100)).items == insights
        await relay_all(c)
        assert c.kinesis is not None
        announced = [
            event
            for event in (json.loads(r["Data"]) for r in await raw_records(c.kinesis))
            if event["type"] in {ANOMALY_DETECTED, INSIGHT_GENERATED}
        ]
        assert sorted(e["type"] for e in announced) == sorted(
            [ANOMALY_DETECTED] * len(found) + [INSIGHT_GENERATED] * len(insights)
        )
        assert len({e["id"] for e in announced}) == len(announced)

        # The worker's sweeps on this store: a second sweep at once finds nothing new.
        await c.anomalies.sweep()
        assert await c.anomalies.sweep() == 0
        assert c.segments is not None
        assert (await c.segments.sweep()).customers == 2
