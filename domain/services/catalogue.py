"""Reading the product catalogue."""

from __future__ import annotations

from collections.abc import Sequence

from domain.errors import ValidationError
from domain.pagination import Page, check_page_size
from domain.ports import ProductStore
from domain.products import Product


class CatalogueService:
    """Products: skus, categories, brands, price tiers and pack sizes."""

    def __init__(self, store: ProductStore) -> None:
        self._store = store

    async def get(self, sku: str) -> Product | None:
        return await self._store.get(sku)

    async def get_many(self, skus: Sequence[str]) -> dict[str, Product]:
        return await self._store.get_many(skus)

    async def list(self, *, first: int, after: str | None, category: str | None) -> Page[Product]:
        check_page_size(first)
        if category is not None and not 0 < len(category) <= 64:
            raise ValidationError("category must be 1-64 characters", field="category")
        return await self._store.list(first=first, after=after, category=category)

    async def upsert_many(self, products: Sequence[Product]) -> int:
        return await self._store.upsert_many(products)
