"""Mapping between domain objects and SQLite rows.

Timestamps are stored as fixed-width ISO-8601 UTC text with microseconds
(``2024-05-01T09:30:00.000000+00:00``), so text order is time order and they come back as
timezone-aware UTC datetimes. Money is integer cents; JSON columns are compact JSON text.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson

from domain.customers import Consent, Customer
from domain.events import DomainEvent, LoggedEvent
from domain.ports import IdempotencyClaim
from domain.products import PriceTier, Product
from domain.purchases import Purchase, PurchaseLine

Row = tuple[Any, ...]

CUSTOMER_COLUMNS = (
    "id, name, email, created_at, consent_analytics, consent_ai_profiling, consent_marketing, "
    "household_size"
)
PRODUCT_COLUMNS = "sku, name, category, brand, price_tier, pack_size, unit, price_cents, tags"
PURCHASE_COLUMNS = "id, customer_id, purchased_at, recorded_at, store_id, lines"
EVENT_COLUMNS = "position, id, type, customer_id, occurred_at, payload"
CLAIM_COLUMNS = "scope, key, request_hash, result_id, created_at"

_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def db_time(moment: datetime) -> str:
    if moment.tzinfo is not UTC:
        if moment.utcoffset() is None:
            raise ValueError(f"refusing to store a naive datetime: {moment!r}")
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


def customer_row(customer: Customer) -> Row:
    consent = customer.consent
    search_key = f"{customer.name or ''}\n{customer.email or ''}".lower()
    return (
        customer.id,
        customer.name,
        customer.email,
        db_time(customer.created_at),
        consent.analytics,
        consent.ai_profiling,
        consent.marketing,
        customer.household_size,
        search_key,
    )


def customer_from_row(row: Row) -> Customer:
    return Customer(
        id=row[0],
        name=row[1],
        email=row[2],
        created_at=datetime.fromisoformat(row[3]),
        consent=Consent(analytics=bool(row[4]), ai_profiling=bool(row[5]), marketing=bool(row[6])),
        household_size=row[7],
    )


def product_row(product: Product) -> Row:
    return (
        product.sku,
        product.name,
        product.category,
        product.brand,
        product.price_tier.value,
        product.pack_size,
        product.unit,
        product.price,
        _json(list(product.tags)),
    )


def product_from_row(row: Row) -> Product:
    return Product(
        sku=row[0],
        name=row[1],
        category=row[2],
        brand=row[3],
        price_tier=PriceTier(row[4]),
        pack_size=row[5],
        unit=row[6],
        price=row[7],
        tags=tuple(json.loads(row[8])),
    )


def purchase_row(purchase: Purchase) -> Row:
    recorded_at = purchase.recorded_at
    return (
        purchase.id,
        purchase.customer_id,
        db_time(purchase.purchased_at),
        db_time(recorded_at) if recorded_at is not None else None,
        purchase.store_id,
        orjson.dumps([tuple(line) for line in purchase.lines]).decode(),
    )


def line_rows(purchase: Purchase) -> list[Row]:
    return [
        (purchase.id, line_no, line.sku, line.quantity, line.unit_price, line.discount)
        for line_no, line in enumerate(purchase.lines)
    ]


def purchase_from_row(row: Row) -> Purchase:
    """A purchase from ``PURCHASE_COLUMNS``, its lines from the ``lines`` JSON column."""
    recorded_at = row[3]
    return Purchase(
        id=row[0],
        customer_id=row[1],
        purchased_at=datetime.fromisoformat(row[2]),
        recorded_at=datetime.fromisoformat(recorded_at) if recorded_at is not None else None,
        store_id=row[4],
        lines=lines_from_json(row[5]),
    )


_new_line = partial(tuple.__new__, PurchaseLine)


def lines_from_json(text: str) -> tuple[PurchaseLine, ...]:
    """Lines from a ``[[sku, quantity, unit_price_cents, discount_cents], ...]`` array."""
    return tuple(map(_new_line, orjson.loads(text)))


def event_row(event: DomainEvent) -> Row:
    return (
        event.id,
        event.type,
        event.customer_id,
        db_time(event.occurred_at),
        _json(event.payload),
    )


def logged_event_from_row(row: Row) -> LoggedEvent:
    event = DomainEvent(
        id=row[1],
        type=row[2],
        customer_id=row[3],
        occurred_at=datetime.fromisoformat(row[4]),
        payload=json.loads(row[5]),
    )
    return LoggedEvent(position=row[0], event=event)


def claim_row(claim: IdempotencyClaim) -> Row:
    return (claim.scope, claim.key, claim.request_hash, claim.result_id, db_time(claim.created_at))


def claim_from_row(row: Row) -> IdempotencyClaim:
    return IdempotencyClaim(
        scope=row[0],
        key=row[1],
        request_hash=row[2],
        result_id=row[3],
        created_at=datetime.fromisoformat(row[4]),
    )
