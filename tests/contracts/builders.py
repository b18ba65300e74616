"""Small, valid domain objects for the contract tests; each test spells out what it cares about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from domain.customers import Consent, Customer
from domain.ports import IdempotencyClaim
from domain.products import PriceTier, Product
from domain.purchases import Purchase, PurchaseLine

T0 = datetime(2024, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
CET = timezone(timedelta(hours=1))


def customer(
    customer_id: str,
    *,
    name: str | None = None,
    email: str | None = None,
    created_at: datetime = T0,
    consent: Consent | None = None,
    household_size: int | None = None,
) -> Customer:
    return Customer(
        id=customer_id,
        created_at=created_at,
        name=name,
        email=email,
        consent=consent or Consent(),
        household_size=household_size,
    )


def product(
    sku: str,
    *,
    category: str = "Dairy",
    price: int = 119,
    tags: tuple[str, ...] = (),
) -> Product:
    return Product(
        sku=sku,
        name=f"Product {sku}",
        category=category,
        brand="Alpine",
        price_tier=PriceTier.STANDARD,
        pack_size=1.5,
        unit="l",
        price=price,
        tags=tags,
    )


def purchase(
    purchase_id: str,
    customer_id: str,
    *,
    purchased_at: datetime = T0,
    lines: tuple[PurchaseLine, ...] = (PurchaseLine("MILK-1L", 2, 119, 10),),
    store_id: str | None = "store-1",
    recorded_at: datetime | None = None,
) -> Purchase:
    return Purchase(
        id=purchase_id,
        customer_id=customer_id,
        purchased_at=purchased_at,
        lines=lines,
        store_id=store_id,
        recorded_at=recorded_at,
    )


def claim(
    key: str, result_id: str, *, scope: str = "test", request_hash: str = "h1"
) -> IdempotencyClaim:
    return IdempotencyClaim(
        scope=scope, key=key, request_hash=request_hash, result_id=result_id, created_at=T0
    )
