"""Writing demo data into the stores, in chunks, with the events a live system would have."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from domain.demo.generator import DemoData, generate
from domain.events import customer_registered, purchase_recorded
from domain.ports import CustomerStore, ProductStore, PurchaseStore


@dataclass(frozen=True, slots=True)
class SeedReport:
    products: int
    products_changed: int
    customers_added: int
    customers_present: int
    purchases_added: int
    purchases_present: int

    def summary(self) -> str:
        return (
            f"{self.products:,} products ({self.products_changed:,} new or changed); "
            f"{self.customers_added:,} customers added "
            f"({self.customers_present:,} already present); {self.purchases_added:,} purchases "
            f"added ({self.purchases_present:,} already present)"
        )


async def write(
    data: DemoData,
    customers: CustomerStore,
    products: ProductStore,
    purchases: PurchaseStore,
    *,
    chunk_size: int = 2000,
    on_progress: Callable[[int, int], None] | None = None,
) -> SeedReport:
    """Upsert the products, then add the customers and purchases whose ids are new, each with
    its event (purchases with ``source="seed"``). Writing the same data twice adds nothing.
    ``on_progress(done, total)`` follows the purchases."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    products_changed = await products.upsert_many(data.products)
    customers_added = 0
    for i in range(0, len(data.customers), chunk_size):
        chunk = data.customers[i : i + chunk_size]
        customers_added += await customers.add_many(chunk, [customer_registered(c) for c in chunk])
    purchases_added = 0
    total = len(data.purchases)
    for i in range(0, total, chunk_size):
        batch = data.purchases[i : i + chunk_size]
        purchases_added += await purchases.add_many(
            batch, [purchase_recorded(p, source="seed") for p in batch]
        )
        if on_progress is not None:
            on_progress(i + len(batch), total)
    return SeedReport(
        products=len(data.products),
        products_changed=products_changed,
        customers_added=customers_added,
        customers_present=len(data.customers) - customers_added,
        purchases_added=purchases_added,
        purchases_present=total - purchases_added,
    )


async def seed(
    customers: CustomerStore,
    products: ProductStore,
    purchases: PurchaseStore,
    *,
    as_of: datetime,
    n_customers: int = 500,
    seed: int = 42,
    chunk_size: int = 2000,
    on_progress: Callable[[int, int], None] | None = None,
) -> SeedReport:
    """Generate a year of demo data ending at ``as_of`` and write it; idempotent for the same
    arguments. Generation runs in a worker thread so the event loop stays responsive."""
    data = await asyncio.to_thread(generate, as_of=as_of, n_customers=n_customers, seed=seed)
    return await write(
        data, customers, products, purchases, chunk_size=chunk_size, on_progress=on_progress
    )
