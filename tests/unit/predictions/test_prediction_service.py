"""The prediction engine in the product: recompute, incremental update, reads as time passes,
and the event-driven updater, on the embedded SQLite store with demo data whose true habits are
known."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from domain.clock import FixedClock
from domain.customers import Consent
from domain.demo import DemoData, generate
from domain.demo.seeding import write
from domain.predictions import ChurnRiskBand, ConsumptionStatus
from domain.services.predictions import (
    ALGORITHMS,
    PredictionUpdater,
    expected_purchases,
    probability_within,
)
from domain.services.purchases import LineRequest
from schema.app import Container, open_container
from schema.settings import Settings

AS_OF = datetime(2026, 11, 1, 18, 0, tzinfo=UTC)


@dataclass
class Seeded:
    container: Container
    clock: FixedClock
    data: DemoData


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate(as_of=AS_OF, n_customers=120, seed=7)


@pytest.fixture
async def seeded(tmp_path: Path, demo: DemoData) -> AsyncIterator[Seeded]:
    clock = FixedClock(AS_OF)
    settings = Settings(data_dir=tmp_path, env="test")
    async with open_container(settings, clock=clock) as c:
        await write(demo, c.customer_store, c.product_store, c.purchase_store)
        yield Seeded(c, clock, demo)


def service(s: Seeded):  # type: ignore[no-untyped-def]
    assert s.container.predictions is not None
    return s.container.predictions


async def test_recompute_stores_a_versioned_model_and_every_customers_predictions(
    seeded: Seeded,
) -> None:
    progress: list[tuple[str, int, int]] = []
    report = await service(seeded).recompute(progress=lambda *a: progress.append(a))

    assert report.model_version is not None
    assert report.model_version.startswith(ALGORITHMS)
    assert report.customers == len(seeded.data.customers)
    assert report.predicted > 0.9 * report.customers
    assert report.patterns > report.predicted
    assert {stage for stage, _, _ in progress} == {"reading", "computing", "saving"}
    model = await service(seeded).model()
    assert model is not None
    assert model.version == report.model_version
    assert model.customers == report.customers
    assert model.lines == report.lines
    assert model.bgnbd.params.r > 0
    assert model.gamma_gamma.params.q > 1
    assert model.sku_priors
    assert model.category_priors

    ids = [c.id for c in seeded.data.customers]
    stored = await service(seeded).for_customers(ids)
    some = stored[ids[0]]
    assert some.forecast is not None
    assert some.forecast.model_version == report.model_version
    assert some.forecast.computed_at == AS_OF
    assert all(p.model_version == report.model_version for p in some.consumption)


async def test_stored_cycles_recover_the_true_staple_intervals(seeded: Seeded) -> None:
    await service(seeded).recompute()
    truth = {
        (h.customer_id, s.sku): s.mean_interval_days
        for h in seeded.data.habits.values()
        if h.lapsed_at is None
        for s in h.staples
    }
    stored = await service(seeded).for_customers(list({c for c, _ in truth}))
    estimated, actual = [], []
    for (customer, sku), interval in truth.items():
        pattern = next((p for p in stored[customer].consumption if p.sku == sku), None)
        if pattern is not None and pattern.purchases >= 5:
            estimated.append(pattern.mean_interval_days)
            actual.append(interval)
    assert len(estimated) > 50
    ratio = np.array(estimated) / np.array(actual)
    assert 0.8 < float(np.median(ratio)) < 1.25
    assert float(np.mean(np.abs(np.log(ratio)))) < 0.35


async def test_consent_decides_who_gets_a_profile(seeded: Seeded) -> None:
    await service(seeded).recompute()
    customers = seeded.data.customers
    stored = await service(seeded).for_customers([c.id for c in customers])
    for c in customers:
        profile = stored.get(c.id) and stored[c.id].profile
        if c.consent.ai_profiling:
            assert profile is not None or c.id not in stored
        else:
            assert not profile


async def test_a_new_purchase_updates_only_that_customer_against_the_stored_model(
    seeded: Seeded,
) -> None:
    svc = service(seeded)
    await svc.recompute()
    model = await svc.model()
    customer = seeded.data.customers[3].id
    other = seeded.data.customers[4].id
    before = await svc.for_customers([customer, other])
    staple = max(before[customer].consumption, key=lambda p: p.purchases)

    seeded.clock.set(AS_OF + timedelta(days=1))
    purchase = await seeded.container.purchases.record(
        customer_id=customer,
        lines=[LineRequest(sku=staple.sku, quantity=1)],
        purchased_at=AS_OF + timedelta(hours=20),
        store_id=None,
        idempotency_key=None,
    )
    assert purchase.customer_id == customer
    assert await svc.update([customer]) == 1

    after = await svc.for_customers([customer, other])
    updated = next(p for p in after[customer].consumption if p.sku == staple.sku)
    assert updated.purchases == staple.purchases + 1
    assert updated.last_purchased_at == AS_OF + timedelta(hours=20)
    assert updated.computed_at == AS_OF + timedelta(days=1)
    assert updated.model_version == model.version  # applied, not refitted
    assert after[customer].forecast.frequency >= before[customer].forecast.frequency
    assert after[other].forecast.computed_at == AS_OF  # untouched
    assert (await svc.model()).version == model.version


async def test_reads_move_with_time_without_refitting(seeded: Seeded) -> None:
    svc = service(seeded)
    await svc.recompute()
    ids = [c.id for c in seeded.data.customers]
    now = await svc.for_customers(ids)
    seeded.clock.set(AS_OF + timedelta(days=120))
    later = await svc.for_customers(ids)

    for cid, then in now.items():
        if then.forecast is None:
            continue
        assert later[cid].forecast.p_alive <= then.forecast.p_alive + 1e-12
        assert later[cid].forecast.age_days == pytest.approx(then.forecast.age_days + 120)
        for p in later[cid].consumption:
            assert p.next_expected_at >= AS_OF + timedelta(days=120) - timedelta(seconds=1)
    statuses = [p.status for s in later.values() for p in s.consumption]
    assert statuses.count(ConsumptionStatus.ON_TRACK) < 0.2 * len(statuses)
    bands = [s.forecast.churn_risk for s in later.values() if s.forecast]
    before_bands = [s.forecast.churn_risk for s in now.values() if s.forecast]
    assert bands.count(ChurnRiskBand.HIGH) > before_bands.count(ChurnRiskBand.HIGH)


async def test_derived_figures_are_consistent(seeded: Seeded) -> None:
    svc = service(seeded)
    await svc.recompute()
    model = await svc.model()
    stored = await svc.for_customers([c.id for c in seeded.data.customers])
    forecast = next(s.forecast for s in stored.values() if s.forecast and s.forecast.frequency > 5)
    year = expected_purchases(forecast, model, 365.0)
    assert year == pytest.approx(forecast.expected_transactions, rel=1e-9)
    assert expected_purchases(forecast, model, 30.0) < year
    pattern = next(p for s in stored.values() for p in s.consumption if p.purchases > 4)
    week = probability_within(pattern, AS_OF, 7.0)
    month = probability_within(pattern, AS_OF, 30.0)
    assert 0.0 <= week <= month <= 1.0


async def test_the_updater_follows_the_event_log_from_its_checkpoint(seeded: Seeded) -> None:
    c = seeded.container
    updater = c.prediction_updater
    assert isinstance(updater, PredictionUpdater)
    await updater.start()  # no model yet: recomputes and checkpoints at the head
    assert await service(seeded).model() is not None
    head = await c.events.head()
    assert updater.position == head

    customer = seeded.data.customers[10].id
    sku = seeded.data.products[0].sku
    await c.purchases.record(
        customer_id=customer,
        lines=[LineRequest(sku=sku, quantity=2)],
        purchased_at=AS_OF - timedelta(hours=1),
        store_id=None,
        idempotency_key=None,
    )
    assert await updater.process_once() == 1
    assert updater.updated == 1
    stored = await service(seeded).for_customer(customer)
    assert any(p.sku == sku and p.last_quantity >= 2 for p in stored.consumption)

    # A restarted updater resumes from the saved checkpoint: nothing to do.
    again = PredictionUpdater(c.events, service(seeded))
    await again.start()
    assert again.position == updater.position
    assert await again.process_once() == 0


async def test_withdrawing_ai_profiling_consent_removes_the_profile(seeded: Seeded) -> None:
    c = seeded.container
    updater = c.prediction_updater
    await updater.start()
    profiled = next(x.id for x in seeded.data.customers if x.consent.ai_profiling)
    assert (await service(seeded).for_customer(profiled)).profile is not None
    await c.customers.set_consent(profiled, Consent(analytics=True, ai_profiling=False))
    await updater.process_once()
    assert (await service(seeded).for_customer(profiled)).profile is None
