"""Customer.consumption, Customer.forecast and Customer.profile over GraphQL, on demo data whose
predictions were recomputed and stored."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.access import DEV_ADMIN
from domain.clock import FixedClock
from domain.demo import DemoData, generate
from domain.demo.seeding import write
from domain.services.predictions import PredictionService
from schema.app import Container, open_container
from schema.context import Context, Services
from schema.schema import build_schema
from schema.settings import Settings
from subscriptions.hub import SubscriptionHub

AS_OF = datetime(2026, 11, 1, 18, 0, tzinfo=UTC)

QUERY = """
query One($id: ID!, $status: ConsumptionStatus, $first: Int!) {
  customer(id: $id) {
    id
    consent { aiProfiling }
    consumption(first: $first, status: $status) {
      sku product { sku category } purchases meanIntervalDays unitsPerDay
      lastPurchasedAt nextExpectedAt windowLow windowHigh status confidence
      week: probabilityWithin(days: 7) month: probabilityWithin(days: 30) daysOverdue
      computedAt modelVersion
    }
    forecast {
      pAlive churnRisk overdueStaples frequency recencyDays ageDays averageSpend clv
      clvHorizonDays computedAt modelVersion
      month: expectedPurchases(days: 30) year: expectedPurchases(days: 365)
      spend: expectedSpend(days: 30)
    }
    profile {
      affluence confidence drivers householdSize priceTierMix { budget standard premium }
      relativePriceIndex promotionShare spendPerBasket weekendShare modelVersion
    }
  }
}
"""


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate(as_of=AS_OF, n_customers=60, seed=11)


@pytest.fixture
async def container(tmp_path: Path, demo: DemoData) -> AsyncIterator[Container]:
    async with open_container(
        Settings(data_dir=tmp_path, env="test"), clock=FixedClock(AS_OF)
    ) as c:
        await write(demo, c.customer_store, c.product_store, c.purchase_store)
        assert c.predictions is not None
        await c.predictions.recompute()
        yield c


def services(c: Container, predictions: Any = None) -> Services:
    return Services(
        customers=c.customers,
        purchases=c.purchases,
        catalogue=c.catalogue,
        hub=SubscriptionHub(c.bus),
        predictions=predictions or c.predictions,
    )


async def run(c: Container, query: str, **variables: Any) -> dict[str, Any]:
    result = await build_schema().execute(
        query,
        variable_values=variables,
        context_value=Context(services=services(c), principal=DEV_ADMIN, request_id="t"),
    )
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data


async def test_a_customer_reads_cycles_forecast_and_profile(
    container: Container, demo: DemoData
) -> None:
    customer = next(
        c for c in demo.customers if c.consent.ai_profiling and demo.habits[c.id].lapsed_at is None
    )
    data = await run(container, QUERY, id=customer.id, status=None, first=100)
    c = data["customer"]
    patterns = c["consumption"]
    assert patterns
    assert [p["nextExpectedAt"] for p in patterns] == sorted(p["nextExpectedAt"] for p in patterns)
    for p in patterns:
        assert p["product"]["sku"] == p["sku"]
        assert p["windowLow"] <= p["nextExpectedAt"] <= p["windowHigh"]
        assert 0.0 <= p["week"] <= p["month"] <= 1.0
        assert 0.0 <= p["confidence"] <= 1.0
        assert p["daysOverdue"] >= 0.0
        assert datetime.fromisoformat(p["nextExpectedAt"]) >= AS_OF
    f = c["forecast"]
    assert 0.0 <= f["pAlive"] <= 1.0
    assert f["churnRisk"] in {"LOW", "MEDIUM", "HIGH"}
    assert f["month"] < f["year"]
    assert f["clvHorizonDays"] == 365
    assert isinstance(f["clv"], str)
    assert float(f["clv"]) > 0
    assert isinstance(f["spend"], str)
    assert f["modelVersion"] == patterns[0]["modelVersion"]
    profile = c["profile"]
    assert profile["affluence"] in {"BUDGET", "MID", "PREMIUM"}
    mix = profile["priceTierMix"]
    assert mix["budget"] + mix["standard"] + mix["premium"] == pytest.approx(1.0)


async def test_status_filter_and_first_bound(container: Container, demo: DemoData) -> None:
    ids = [c.id for c in demo.customers]
    overdue_seen = False
    for cid in ids[:20]:
        data = await run(container, QUERY, id=cid, status="OVERDUE", first=100)
        statuses = {p["status"] for p in data["customer"]["consumption"]}
        assert statuses <= {"OVERDUE"}
        overdue_seen |= bool(statuses)
    assert overdue_seen
    data = await run(container, QUERY, id=ids[0], status=None, first=2)
    assert len(data["customer"]["consumption"]) <= 2

    bad = await build_schema().execute(
        QUERY,
        variable_values={"id": ids[0], "status": None, "first": 0},
        context_value=Context(services=services(container), principal=DEV_ADMIN, request_id="t"),
    )
    assert bad.errors
    assert "first must be between 1 and 100" in bad.errors[0].message


async def test_probability_days_out_of_range_is_a_typed_error(
    container: Container, demo: DemoData
) -> None:
    query = """query($id: ID!) { customer(id: $id) {
        consumption(first: 1) { probabilityWithin(days: 0) } } }"""
    result = await build_schema().execute(
        query,
        variable_values={"id": demo.customers[0].id},
        context_value=Context(services=services(container), principal=DEV_ADMIN, request_id="t"),
    )
    assert result.errors
    assert result.errors[0].extensions["code"] == "DAYS_OUT_OF_RANGE"


async def test_no_profile_without_ai_profiling_consent(
    container: Container, demo: DemoData
) -> None:
    customer = next(c for c in demo.customers if not c.consent.ai_profiling)
    data = await run(container, QUERY, id=customer.id, status=None, first=5)
    assert data["customer"]["profile"] is None
    assert data["customer"]["forecast"] is not None


async def test_a_page_of_customers_reads_predictions_in_one_store_call(
    container: Container,
) -> None:
    calls: Counter[str] = Counter()
    assert container.predictions is not None
    inner = container.predictions

    class CountingService(PredictionService):
        def __init__(self) -> None:
            self.__dict__.update(inner.__dict__)

        async def for_customers(self, customer_ids):  # type: ignore[no-untyped-def]
            calls["for_customers"] += 1
            return await inner.for_customers(customer_ids)

    query = """{ customers(first: 40) { nodes { id
        forecast { pAlive } consumption(first: 3) { sku status } } } }"""
    result = await build_schema().execute(
        query,
        context_value=Context(
            services=services(container, CountingService()), principal=DEV_ADMIN, request_id="t"
        ),
    )
    assert result.errors is None
    assert len(result.data["customers"]["nodes"]) == 40  # type: ignore[index]
    assert calls == Counter({"for_customers": 1})


async def test_a_customer_without_purchases_has_no_predictions(container: Container) -> None:
    customer = await container.customers.register(
        name="New", email="new@example.com", consent=None, idempotency_key=None
    )
    data = await run(container, QUERY, id=customer.id, status=None, first=5)
    assert data["customer"]["consumption"] == []
    assert data["customer"]["forecast"] is None


async def test_readings_move_with_the_clock(container: Container, demo: DemoData) -> None:
    cid = demo.customers[0].id
    before = (await run(container, QUERY, id=cid, status=None, first=100))["customer"]
    clock = container.clock
    assert isinstance(clock, FixedClock)
    clock.set(AS_OF + timedelta(days=60))
    after = (await run(container, QUERY, id=cid, status=None, first=100))["customer"]
    assert after["forecast"]["ageDays"] == pytest.approx(before["forecast"]["ageDays"] + 60)
    assert after["forecast"]["pAlive"] <= before["forecast"]["pAlive"]
    assert all(
        datetime.fromisoformat(p["nextExpectedAt"]) >= AS_OF + timedelta(days=60)
        for p in after["consumption"]
    )
