"""The ProductStore contract. Fixture: ``product_store``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from domain.errors import ValidationError
from domain.pagination import encode_cursor
from domain.ports import ProductStore
from domain.products import PriceTier, Product
from tests.contracts.builders import product


async def test_product_round_trips_with_exact_money(product_store: ProductStore) -> None:
    original = Product(
        sku="COFFEE-P",
        name="Single-origin beans",
        category="Beverages",
        brand="Ridge",
        price_tier=PriceTier.PREMIUM,
        pack_size=0.25,
        unit="kg",
        price=99_999_999_999,
        tags=("fairtrade", "organic"),
    )

    assert await product_store.upsert_many([original]) == 1

    loaded = await product_store.get("COFFEE-P")
    assert loaded == original
    assert loaded is not None
    assert isinstance(loaded.price, int)


async def test_unknown_product_is_none(product_store: ProductStore) -> None:
    assert await product_store.get("NOPE") is None
    assert await product_store.get_many(["NOPE"]) == {}
    assert await product_store.get_many([]) == {}


async def test_upsert_many_inserts_and_replaces(product_store: ProductStore) -> None:
    milk, bread = product("MILK-1L"), product("BREAD-W", category="Bakery")
    assert await product_store.upsert_many([milk, bread]) == 2

    dearer = replace(milk, price=129, tags=("promo",))
    await product_store.upsert_many([dearer])

    assert await product_store.get("MILK-1L") == dearer
    assert await product_store.get("BREAD-W") == bread
    assert await product_store.count() == 2


async def test_get_many_products_by_sku(product_store: ProductStore) -> None:
    products = [product(f"SKU-{i:03d}") for i in range(20)]
    await product_store.upsert_many(products)

    found = await product_store.get_many(["SKU-003", "SKU-017", "SKU-999"])

    assert found == {"SKU-003": products[3], "SKU-017": products[17]}


async def test_list_pages_through_products_in_sku_order(product_store: ProductStore) -> None:
    skus = ["D", "B", "E", "A", "C"]
    await product_store.upsert_many([product(s) for s in skus])

    first = await product_store.list(first=3, after=None, category=None)
    second = await product_store.list(first=3, after=first.end_cursor, category=None)

    assert [p.sku for p in first.items] == ["A", "B", "C"]
    assert [p.sku for p in second.items] == ["D", "E"]
    assert first.has_next_page
    assert not second.has_next_page


async def test_list_products_of_one_category(product_store: ProductStore) -> None:
    await product_store.upsert_many(
        [
            product("A", category="Dairy"),
            product("B", category="Bakery"),
            product("C", category="Dairy"),
            product("D", category="Dairy"),
        ]
    )

    first = await product_store.list(first=2, after=None, category="Dairy")
    second = await product_store.list(first=2, after=first.end_cursor, category="Dairy")
    none = await product_store.list(first=2, after=None, category="Frozen")

    assert [p.sku for p in first.items] == ["A", "C"]
    assert [p.sku for p in second.items] == ["D"]
    assert first.has_next_page
    assert not second.has_next_page
    assert (none.items, none.has_next_page, none.end_cursor) == ([], False, None)


@pytest.mark.parametrize(
    "cursor", ["garbage", encode_cursor("customers", ["cus_1"]), encode_cursor("products", [1])]
)
async def test_malformed_product_cursor_is_a_validation_error(
    product_store: ProductStore, cursor: str
) -> None:
    with pytest.raises(ValidationError):
        await product_store.list(first=5, after=cursor, category=None)


async def test_count_counts_products(product_store: ProductStore) -> None:
    assert await product_store.count() == 0
    await product_store.upsert_many([product("A"), product("B")])
    assert await product_store.count() == 2
