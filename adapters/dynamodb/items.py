"""Mapping between domain objects and DynamoDB items, and the 400 KB item limit.

Timestamps are fixed-width ISO-8601 UTC text with microseconds, so string order is time order
(purchase sort keys rely on it). Money is integer cents; a basket's lines are one compact JSON
array, the same shape the SQLite store keeps.
"""

from __future__ import annotations

import json
import time
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from pynamodb.models import Model

from adapters.dynamodb.models import (
    CUSTOMER_LISTING,
    PRODUCT_LISTING,
    ClaimItem,
    CustomerItem,
    EmailItem,
    EventItem,
    ProductItem,
    PurchaseIdItem,
    PurchaseItem,
    Tables,
)
from domain.customers import Consent, Customer
from domain.errors import ValidationError
from domain.events import DomainEvent
from domain.ports import IdempotencyClaim
from domain.products import PriceTier, Product
from domain.purchases import Purchase, PurchaseLine

MAX_ITEM_BYTES = 400 * 1024
CLAIM_RETENTION = timedelta(days=30)
PUBLISHED_EVENT_RETENTION = timedelta(days=7)
# Pending events are spread over this many GSI partitions (by customer, so one customer's
# events stay in one of them, in order). Raise it only: events in a shard above a lowered
# count would never be found.
OUTBOX_SHARDS = 8

_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def iso(moment: datetime) -> str:
    if moment.utcoffset() is None:
        raise ValueError(f"refusing to store a naive datetime: {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def customer_pk(customer_id: str) -> str:
    return f"CUSTOMER#{customer_id}"


CUSTOMER_SK = "CUSTOMER"
EMAIL_SK = "EMAIL"
PRODUCT_SK = "PRODUCT"
PURCHASE_ID_SK = "PURCHASE"
PURCHASE_PREFIX = "PURCHASE#"


def email_pk(email: str) -> str:
    return f"EMAIL#{email.lower()}"


def product_pk(sku: str) -> str:
    return f"PRODUCT#{sku}"


def purchase_id_pk(purchase_id: str) -> str:
    return f"PURCHASE#{purchase_id}"


def purchase_sk(purchased_at: str, purchase_id: str) -> str:
    return f"{PURCHASE_PREFIX}{purchased_at}#{purchase_id}"


# --- customers ------------------------------------------------------------------------------


def customer_item(tables: Tables, customer: Customer) -> CustomerItem:
    consent = customer.consent
    return tables.customer(
        customer_pk(customer.id),
        CUSTOMER_SK,
        customer_id=customer.id,
        listing=CUSTOMER_LISTING,
        listing_key=customer.id,
        name=customer.name,
        email=customer.email,
        created_at=iso(customer.created_at),
        analytics=consent.analytics,
        ai_profiling=consent.ai_profiling,
        marketing=consent.marketing,
        household_size=customer.household_size,
        search_key=f"{customer.name or ''}\n{customer.email or ''}".lower(),
    )


def customer_from_item(item: CustomerItem) -> Customer:
    household = item.household_size
    return Customer(
        id=item.customer_id,
        created_at=datetime.fromisoformat(item.created_at),
        name=item.name,
        email=item.email,
        consent=Consent(
            analytics=item.analytics, ai_profiling=item.ai_profiling, marketing=item.marketing
        ),
        household_size=int(household) if household is not None else None,
    )


def email_item(tables: Tables, customer: Customer) -> EmailItem | None:
    if customer.email is None:
        return None
    return tables.email(email_pk(customer.email), EMAIL_SK, customer_id=customer.id)


# --- products -------------------------------------------------------------------------------


def product_item(tables: Tables, product: Product) -> ProductItem:
    return tables.product(
        product_pk(product.sku),
        PRODUCT_SK,
        sku=product.sku,
        listing=PRODUCT_LISTING,
        listing_key=product.sku,
        name=product.name,
        category=product.category,
        brand=product.brand,
        price_tier=product.price_tier.value,
        pack_size=product.pack_size,
        unit=product.unit,
        price=product.price,
        tags=_json(list(product.tags)),
    )


def product_from_item(item: ProductItem) -> Product:
    return Product(
        sku=item.sku,
        name=item.name,
        category=item.category,
        brand=item.brand,
        price_tier=PriceTier(item.price_tier),
        pack_size=float(item.pack_size),
        unit=item.unit,
        price=int(item.price),
        tags=tuple(json.loads(item.tags)),
    )


# --- purchases ------------------------------------------------------------------------------


def purchase_item(tables: Tables, purchase: Purchase) -> PurchaseItem:
    purchased_at = iso(purchase.purchased_at)
    recorded_at = purchase.recorded_at
    return tables.purchase(
        customer_pk(purchase.customer_id),
        purchase_sk(purchased_at, purchase.id),
        purchase_id=purchase.id,
        customer_id=purchase.customer_id,
        purchased_at=purchased_at,
        recorded_at=iso(recorded_at) if recorded_at is not None else None,
        store_id=purchase.store_id,
        lines=orjson.dumps([tuple(line) for line in purchase.lines]).decode(),
    )


def purchase_id_item(tables: Tables, item: PurchaseItem) -> PurchaseIdItem:
    return tables.purchase_id(
        purchase_id_pk(item.purchase_id),
        PURCHASE_ID_SK,
        customer_id=item.customer_id,
        purchase_sk=item.sk,
    )


def purchase_from_item(item: PurchaseItem) -> Purchase:
    recorded_at = item.recorded_at
    return Purchase(
        id=item.purchase_id,
        customer_id=item.customer_id,
        purchased_at=datetime.fromisoformat(item.purchased_at),
        recorded_at=datetime.fromisoformat(recorded_at) if recorded_at is not None else None,
        store_id=item.store_id,
        lines=tuple(PurchaseLine(*line) for line in orjson.loads(item.lines)),
    )


# --- idempotency claims ---------------------------------------------------------------------


def claim_item(tables: Tables, claim: IdempotencyClaim) -> ClaimItem:
    return tables.claim(
        claim.scope,
        claim.key,
        request_hash=claim.request_hash,
        result_id=claim.result_id,
        created_at=iso(claim.created_at),
        expires_at=int((claim.created_at + CLAIM_RETENTION).timestamp()),
    )


def claim_from_item(item: ClaimItem) -> IdempotencyClaim:
    return IdempotencyClaim(
        scope=item.scope,
        key=item.key,
        request_hash=item.request_hash,
        result_id=item.result_id,
        created_at=datetime.fromisoformat(item.created_at),
    )


# --- events (the outbox) --------------------------------------------------------------------


def outbox_shard(customer_id: str) -> str:
    return str(zlib.crc32(customer_id.encode()) % OUTBOX_SHARDS)


def written_key(batch_index: int) -> str:
    """Orders the outbox: the write's clock reading, then the event's place in its call (one
    call may write several events of a customer at the same nanosecond)."""
    return f"{time.time_ns():020d}.{batch_index:06d}"


def event_item(tables: Tables, event: DomainEvent, batch_index: int = 0) -> EventItem:
    key = written_key(batch_index)
    return tables.event(
        event.id,
        type=event.type,
        customer_id=event.customer_id,
        occurred_at=iso(event.occurred_at),
        payload=_json(event.payload),
        written_key=key,
        pending_shard=outbox_shard(event.customer_id),
        pending_key=key,
    )


def event_from_item(item: EventItem) -> DomainEvent:
    return DomainEvent(
        id=item.event_id,
        type=item.type,
        customer_id=item.customer_id,
        occurred_at=datetime.fromisoformat(item.occurred_at),
        payload=json.loads(item.payload),
    )


# --- the 400 KB item limit ------------------------------------------------------------------


def _value_size(value: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for one attribute value (numbers rounded up)."""
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        digits = len(str(Decimal(str(data))).lstrip("-").replace(".", ""))
        return digits // 2 + 2
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "B":
        return len(data)
    if kind in {"L", "M"}:
        members = data if kind == "L" else data.values()
        names = sum(len(name.encode()) for name in data) if kind == "M" else 0
        return 3 + names + sum(_value_size(m) + 1 for m in members)
    if kind in {"SS", "NS", "BS"}:
        return sum(_value_size({kind[0]: member}) for member in data)
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Model) -> int:
    return sum(len(name.encode()) + _value_size(value) for name, value in item.serialize().items())


def check_item_size(item: Model, *, what: str, field: str) -> None:
    """ValidationError (nothing written) for an item DynamoDB would refuse as over 400 KB."""
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise ValidationError(
            f"{what} is too large to store ({size:,} bytes; the limit is {MAX_ITEM_BYTES:,}): "
            "split it into smaller ones",
            field=field,
            code="TOO_LARGE",
        )
