"""Customer.recommendations over GraphQL, on demo data whose predictions and recommendation
model were recomputed and stored (one recompute fits both)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.access import DEV_ADMIN
from domain.clock import FixedClock
from domain.demo import DemoData, generate
from domain.demo.seeding import write
from schema.app import Container, open_container
from schema.context import Context, Services
from schema.schema import build_schema
from schema.settings import Settings
from subscriptions.hub import SubscriptionHub

AS_OF = datetime(2026, 11, 1, 18, 0, tzinfo=UTC)

QUERY = """
query Recs($id: ID!, $limit: Int!, $context: RecommendationContext) {
  customer(id: $id) {
    recommendations(limit: $limit, context: $context) {
      sku score reason explanation promotional product { sku name category }
    }
  }
}
"""


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate(as_of=AS_OF, n_customers=40, seed=7)


@pytest.fixture
async def container(tmp_path: Path, demo: DemoData) -> AsyncIterator[Container]:
    async with open_container(
        Settings(data_dir=tmp_path, env="test"), clock=FixedClock(AS_OF)
    ) as c:
        await write(demo, c.customer_store, c.product_store, c.purchase_store)
        assert c.predictions is not None
        await c.predictions.recompute()
        yield c


async def run(c: Container, query: str, **variables: Any) -> Any:
    services = Services(
        customers=c.customers,
        purchases=c.purchases,
        catalogue=c.catalogue,
        hub=SubscriptionHub(c.bus),
        predictions=c.predictions,
        recommendations=c.recommendations,
    )
    return await build_schema().execute(
        query,
        variable_values=variables,
        context_value=Context(services=services, principal=DEV_ADMIN, request_id="t"),
    )


async def test_a_customer_gets_ranked_explained_recommendations(
    container: Container, demo: DemoData
) -> None:
    assert container.recommendations is not None
    assert container.recommendations.last_fit is not None  # the recompute refitted it
    customer = next(c for c in demo.customers if demo.habits[c.id].lapsed_at is None)

    result = await run(container, QUERY, id=customer.id, limit=10, context=None)

    assert result.errors is None, result.errors
    recs = result.data["customer"]["recommendations"]
    assert 1 <= len(recs) <= 10
    assert [r["score"] for r in recs] == sorted((r["score"] for r in recs), reverse=True)
    assert recs[0]["reason"] == "REPLENISHMENT_DUE"
    for r in recs:
        assert r["product"]["sku"] == r["sku"]
        assert 0.0 < r["score"] <= 1.0
        assert r["explanation"]


async def test_the_basket_is_left_out_and_unknown_skus_are_ignored(
    container: Container, demo: DemoData
) -> None:
    customer = next(c for c in demo.customers if demo.habits[c.id].lapsed_at is None)
    first = await run(container, QUERY, id=customer.id, limit=5, context=None)
    top = first.data["customer"]["recommendations"][0]["sku"]

    result = await run(
        container,
        QUERY,
        id=customer.id,
        limit=5,
        context={"at": "2026-11-02T08:30:00+00:00", "storeId": "store_01",
                 "basket": [top, "NOT-A-SKU"]},
    )  # fmt: skip

    assert result.errors is None, result.errors
    assert top not in [r["sku"] for r in result.data["customer"]["recommendations"]]


@pytest.mark.parametrize("limit", [0, 51, -3])
async def test_a_limit_out_of_range_is_a_typed_error(
    container: Container, demo: DemoData, limit: int
) -> None:
    result = await run(container, QUERY, id=demo.customers[0].id, limit=limit, context=None)

    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "LIMIT_OUT_OF_RANGE", "field": "limit"}
    assert result.data == {"customer": None}  # the non-null list nulls its nullable parent
