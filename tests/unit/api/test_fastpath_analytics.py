"""The compiled path answers queries on the analytics fields of Customer (consumption with its
enum argument and enum results, forecast with its argument fields, the consent-gated profile,
segment, recommendations, the staff-only insights) exactly as strawberry's executor does, on
demo data whose predictions and segments were recomputed. (``analysis`` is left out: its first
read stores what the second returns as cached.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.access import DEV_ADMIN, Principal, Role
from domain.clock import FixedClock
from domain.demo import DemoData, generate
from domain.demo.seeding import write
from schema.app import Container, open_container
from schema.context import Context, Services
from schema.errors_policy import present_error
from schema.schema import build_schema
from schema.settings import Settings
from subscriptions.hub import SubscriptionHub

AS_OF = datetime(2026, 11, 1, 18, 0, tzinfo=UTC)
FIELDS = ("consumption", "forecast", "profile", "segment", "recommendations")

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
    purchases(first: 3) { nodes { id total lines { sku amount } } }
    segment {
      segment recencyScore frequencyScore monetaryScore cluster assignedAt modelVersion
    }
    recommendations(limit: 5) {
      sku score reason explanation promotional product { sku name }
    }
    insights(first: 3) { nodes { id text createdAt cursor } pageInfo { hasNextPage } }
  }
}
"""


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate(as_of=AS_OF, n_customers=30, seed=5)


@pytest.fixture
async def container(tmp_path: Path, demo: DemoData) -> AsyncIterator[Container]:
    async with open_container(
        Settings(data_dir=tmp_path, env="test"), clock=FixedClock(AS_OF)
    ) as c:
        await write(demo, c.customer_store, c.product_store, c.purchase_store)
        assert c.predictions is not None
        assert c.segments is not None
        await c.predictions.recompute()
        await c.segments.refit()
        yield c


def context(c: Container, principal: Principal) -> Context:
    services = Services(
        customers=c.customers,
        purchases=c.purchases,
        catalogue=c.catalogue,
        hub=SubscriptionHub(c.bus),
        predictions=c.predictions,
        recommendations=c.recommendations,
        segments=c.segments,
        anomalies=c.anomalies,
    )
    return Context(services=services, principal=principal, request_id="req-p")


async def both(c: Container, principal: Principal, variables: dict[str, Any]) -> tuple[Any, Any]:
    schema = build_schema()
    result = await schema.execute(
        QUERY, variable_values=variables, context_value=context(c, principal)
    )
    expected = (result.data, [e.formatted for e in result.errors or []])
    prepared = schema.fast_path.prepare(QUERY, None)
    assert prepared.plan is not None, "the prediction fields should compile"
    data, errors = await schema.fast_path.execute(prepared, variables, context(c, principal))
    return expected, (data, [present_error(e, "req-p").formatted for e in errors])


async def test_analytics_fields_agree(container: Container, demo: DemoData) -> None:
    seen: set[str] = set()
    for status, first in [(None, 100), ("OVERDUE", 100), ("DUE_SOON", 2), (None, 0), ("NOPE", 5)]:
        for customer in demo.customers[:5]:
            variables = {"id": customer.id, "status": status, "first": first}
            expected, actual = await both(container, DEV_ADMIN, variables)
            assert actual == expected, (status, first, customer.id)
            data, errors = expected
            found = (data or {}).get("customer") or {}
            seen.update(key for key in FIELDS if found.get(key))
            seen.update("error" for _ in errors)
    assert seen == {*FIELDS, "error"}, "the cases must cover them"
    me, other = demo.customers[0].id, demo.customers[1].id
    principal = Principal(me, frozenset({Role.CUSTOMER}), me)
    for target in (me, other):
        variables = {"id": target, "status": None, "first": 5}
        expected, actual = await both(container, principal, variables)
        assert actual == expected, (principal, target)
