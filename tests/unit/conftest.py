from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.clock import FixedClock
from domain.customers import Consent, Customer
from domain.events import customer_registered
from domain.products import PriceTier, Product
from schema.app import Container, open_container
from schema.settings import Settings

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

PRODUCTS = [
    Product("MILK-1L", "Whole milk 1 l", "Dairy", "Alpine", PriceTier.STANDARD, 1.0, "l", 119),
    Product("BREAD-W", "White loaf", "Bakery", "Hearth", PriceTier.BUDGET, 800, "g", 95),
    Product(
        "COFFEE-P", "Single-origin beans", "Beverages", "Ridge", PriceTier.PREMIUM, 250, "g", 899
    ),
]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, env="test")


@pytest.fixture
async def container(settings: Settings, clock: FixedClock) -> AsyncIterator[Container]:
    async with open_container(settings, clock=clock) as c:
        await c.product_store.upsert_many(PRODUCTS)
        customers = [
            Customer(id=f"cus_{i}", created_at=NOW, name=f"Customer {i}",
                     email=f"c{i}@example.com", consent=Consent(analytics=True))
            for i in range(1, 4)
        ]  # fmt: skip
        await c.customer_store.add_many(customers, [customer_registered(x) for x in customers])
        yield c
