"""Purchase mutations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from domain import errors as domain_errors
from domain.access import Role
from domain.services.purchases import LineRequest
from schema.context import Context
from schema.errors import (
    ConflictError,
    NotFoundError,
    ValidationError,
    conflict_error,
    not_found_error,
    validation_error,
)
from schema.scalars import Money
from schema.types.purchases import Purchase


@strawberry.input
class PurchaseLineInput:
    sku: strawberry.ID
    quantity: int
    unit_price: Money | None = strawberry.field(
        default=None, description="Defaults to the catalogue price."
    )
    discount: Money | None = None


@strawberry.input
class RecordPurchaseInput:
    customer_id: strawberry.ID
    lines: list[PurchaseLineInput]
    purchased_at: datetime | None = strawberry.field(
        default=None, description="With a timezone offset; defaults to now."
    )
    store_id: str | None = None


@strawberry.type
class RecordPurchaseSuccess:
    purchase: Purchase


RecordPurchaseResult = Annotated[
    RecordPurchaseSuccess | ValidationError | NotFoundError | ConflictError,
    strawberry.union("RecordPurchaseResult"),
]


async def record_purchase(
    info: Info[Context, None], input: RecordPurchaseInput, idempotency_key: str | None = None
) -> RecordPurchaseResult:
    """Record a basket; a retry with the same idempotencyKey returns the first purchase."""
    principal = info.context.principal
    if not principal.has(Role.ADMIN, Role.SERVICE):
        principal.require_customer(input.customer_id)
        principal.require(Role.CUSTOMER)
    try:
        purchase = await info.context.services.purchases.record(
            customer_id=input.customer_id,
            purchased_at=input.purchased_at,
            store_id=input.store_id,
            lines=[
                LineRequest(ln.sku, ln.quantity, ln.unit_price, ln.discount) for ln in input.lines
            ],
            idempotency_key=idempotency_key,
        )
    except domain_errors.ValidationError as e:
        return validation_error(e)
    except domain_errors.NotFoundError as e:
        return not_found_error(e)
    except domain_errors.ConflictError as e:
        return conflict_error(e)
    return RecordPurchaseSuccess(purchase=Purchase.from_domain(purchase))
