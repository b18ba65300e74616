"""Reading the whole base through the store ports, a page at a time: what the batch fits
(predictions, segments) read before computing."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from domain.customers import Customer
from domain.ports import CustomerStore, ProductStore, PurchasePageRequest, PurchaseStore
from domain.products import Product
from domain.purchases import Purchase

PAGE = 100
CUSTOMERS_PER_READ = 50

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``."""


async def all_products(products: ProductStore) -> list[Product]:
    found: list[Product] = []
    after: str | None = None
    while True:
        page = await products.list(first=PAGE, after=after, category=None)
        found.extend(page.items)
        if not page.has_next_page:
            return found
        after = page.end_cursor


async def all_customers(customers: CustomerStore, progress: Progress) -> list[Customer]:
    """Every customer in id order, reporting ``reading`` progress."""
    total = await customers.count()
    found: list[Customer] = []
    after: str | None = None
    while True:
        page = await customers.list(first=PAGE, after=after, search=None)
        found.extend(page.items)
        progress("reading", len(found), total)
        if not page.has_next_page:
            return found
        after = page.end_cursor


async def histories(
    purchases: PurchaseStore, customer_ids: Sequence[str], progress: Progress | None = None
) -> dict[str, list[Purchase]]:
    """Every purchase of each customer, a few customers per round trip."""
    found: dict[str, list[Purchase]] = {cid: [] for cid in customer_ids}
    for start in range(0, len(customer_ids), CUSTOMERS_PER_READ):
        cursors: dict[str, str | None] = dict.fromkeys(
            customer_ids[start : start + CUSTOMERS_PER_READ]
        )
        while cursors:
            requests = [PurchasePageRequest(c, PAGE, after) for c, after in cursors.items()]
            pages = await purchases.list_for_customers(requests)
            following: dict[str, str | None] = {}
            for request, page in zip(requests, pages, strict=True):
                found[request.customer_id].extend(page.items)
                if page.has_next_page:
                    following[request.customer_id] = page.end_cursor
            cursors = following
        if progress is not None:
            progress("reading", min(start + CUSTOMERS_PER_READ, len(customer_ids)), 0)
    return found
