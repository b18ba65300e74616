"""A page of customers with their purchases and each line's product costs a constant number of
store round trips, whatever the page size."""

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from domain.access import DEV_ADMIN
from domain.events import purchase_recorded
from domain.purchases import Purchase, PurchaseLine
from domain.services.catalogue import CatalogueService
from domain.services.customers import CustomerService
from domain.services.idempotency import Idempotency
from domain.services.purchases import PurchaseService
from schema.app import Container
from schema.context import Context, Services
from schema.schema import build_schema
from subscriptions.hub import SubscriptionHub
from tests.unit.conftest import NOW

QUERY = """
query Page($first: Int!) {
  customers(first: $first) {
    nodes {
      id
      purchases(first: 5) {
        nodes { id total lines { quantity product { name } } customer { id } }
      }
    }
  }
}
"""


class Counting:
    """Wraps a store and counts the calls made to each of its methods."""

    def __init__(self, inner: Any, calls: Counter[str], name: str) -> None:
        self._inner, self._calls, self._name = inner, calls, name

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._inner, attr)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self._calls[f"{self._name}.{attr}"] += 1
            return await target(*args, **kwargs)

        return counted


async def add_customers_with_purchases(container: Container, n: int) -> None:
    from domain.customers import Customer
    from domain.events import customer_registered

    customers = [Customer(id=f"cus_x{i:03d}", created_at=NOW) for i in range(n)]
    await container.customer_store.add_many(customers, [customer_registered(c) for c in customers])
    purchases = [
        Purchase(
            id=f"pur_x{i:03d}_{k}",
            customer_id=c.id,
            purchased_at=NOW - timedelta(days=k),
            lines=(PurchaseLine("MILK-1L", 1, 119), PurchaseLine("BREAD-W", 2, 95)),
        )
        for i, c in enumerate(customers)
        for k in range(7)
    ]
    await container.purchase_store.add_many(purchases, [purchase_recorded(p) for p in purchases])


@pytest.mark.parametrize("page_size", [5, 40])
async def test_store_round_trips_do_not_grow_with_the_page(
    container: Container, page_size: int
) -> None:
    await add_customers_with_purchases(container, 40)
    calls: Counter[str] = Counter()
    customers = Counting(container.customer_store, calls, "customers")
    products = Counting(container.product_store, calls, "products")
    purchases = Counting(container.purchase_store, calls, "purchases")
    idempotency = Idempotency(
        Counting(container.customer_store, calls, "idempotency")
    )  # unused here
    services = Services(
        customers=CustomerService(customers, idempotency, container.clock),
        purchases=PurchaseService(purchases, customers, products, idempotency, container.clock),
        catalogue=CatalogueService(products),
        hub=SubscriptionHub(container.bus),
    )
    result = await build_schema().execute(
        QUERY,
        variable_values={"first": page_size},
        context_value=Context(services=services, principal=DEV_ADMIN, request_id="t"),
    )
    assert result.errors is None
    nodes = result.data["customers"]["nodes"]  # type: ignore[index]
    assert len(nodes) == page_size
    assert all(len(n["purchases"]["nodes"]) == 5 for n in nodes if n["id"].startswith("cus_x"))
    assert calls == Counter(
        {
            "customers.list": 1,
            "purchases.list_for_customers": 1,
            "products.get_many": 1,
            "customers.get_many": 1,
        }
    )
