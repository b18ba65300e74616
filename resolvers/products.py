"""Catalogue queries."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from schema.context import Context
from schema.types.products import Product, ProductConnection


async def product(info: Info[Context, None], sku: strawberry.ID) -> Product | None:
    """One product by sku; null when there is none."""
    found = await info.context.loaders.product.load(sku)
    return Product.from_domain(found) if found else None


async def products(
    info: Info[Context, None],
    first: int = 20,
    after: str | None = None,
    category: str | None = None,
) -> ProductConnection:
    """Products in sku order, optionally of one category."""
    page = await info.context.services.catalogue.list(first=first, after=after, category=category)
    return ProductConnection.from_page(page)
