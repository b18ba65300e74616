"""Recording purchases and reading a customer's purchase history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.clock import Clock
from domain.errors import NotFoundError, ValidationError
from domain.events import purchase_recorded
from domain.ids import is_valid_id, new_id
from domain.money import Cents
from domain.pagination import Page, check_page_size
from domain.ports import (
    CustomerStore,
    IdempotencyClaim,
    ProductStore,
    PurchasePageRequest,
    PurchaseStore,
)
from domain.purchases import Purchase, PurchaseLine
from domain.services.idempotency import Idempotency

MAX_QUANTITY = 10_000
MAX_UNIT_PRICE: Cents = 100_000_000  # 1,000,000.00
MAX_STORE_ID_LENGTH = 64
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class LineRequest:
    sku: str
    quantity: int
    unit_price: Cents | None = None
    discount: Cents | None = None


@dataclass(frozen=True, slots=True)
class PurchaseLimits:
    max_lines: int = 200


def check_line(index: int, line: LineRequest) -> None:
    where = f"lines[{index}]"
    if not line.sku:
        raise ValidationError("sku is required", field=f"{where}.sku", code="REQUIRED")
    if line.quantity < 1:
        raise ValidationError(
            f"quantity must be at least 1, got {line.quantity}",
            field=f"{where}.quantity",
            code="QUANTITY_TOO_SMALL",
        )
    if line.quantity > MAX_QUANTITY:
        raise ValidationError(
            f"quantity must be at most {MAX_QUANTITY}, got {line.quantity}",
            field=f"{where}.quantity",
            code="QUANTITY_TOO_LARGE",
        )
    if line.unit_price is not None:
        if line.unit_price < 0:
            raise ValidationError(
                "unitPrice must not be negative", field=f"{where}.unitPrice", code="NEGATIVE_PRICE"
            )
        if line.unit_price > MAX_UNIT_PRICE:
            raise ValidationError(
                "unitPrice is implausibly large", field=f"{where}.unitPrice", code="PRICE_TOO_LARGE"
            )
    if line.discount is not None and line.discount < 0:
        raise ValidationError(
            "discount must not be negative", field=f"{where}.discount", code="NEGATIVE_DISCOUNT"
        )


def check_purchased_at(purchased_at: datetime, now: datetime) -> None:
    if purchased_at.tzinfo is None:
        raise ValidationError(
            "purchasedAt needs a timezone offset", field="purchasedAt", code="MISSING_TIMEZONE"
        )
    if purchased_at > now + CLOCK_SKEW:
        raise ValidationError(
            "purchasedAt is in the future", field="purchasedAt", code="PURCHASE_IN_FUTURE"
        )


class PurchaseService:
    """Purchases: baskets of lines, validated against the customer base and the catalogue."""

    def __init__(
        self,
        purchases: PurchaseStore,
        customers: CustomerStore,
        products: ProductStore,
        idempotency: Idempotency,
        clock: Clock,
        limits: PurchaseLimits | None = None,
    ) -> None:
        self._purchases = purchases
        self._customers = customers
        self._products = products
        self._idempotency = idempotency
        self._clock = clock
        self._limits = limits or PurchaseLimits()

    async def record(
        self,
        *,
        customer_id: str,
        lines: Sequence[LineRequest],
        purchased_at: datetime | None = None,
        store_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Purchase:
        """Record a basket. Prices default to the catalogue's; the event is written with it."""
        now = self._clock.now()
        if not lines:
            raise ValidationError(
                "a purchase needs at least one line", field="lines", code="EMPTY_BASKET"
            )
        if len(lines) > self._limits.max_lines:
            raise ValidationError(
                f"a purchase has at most {self._limits.max_lines} lines, got {len(lines)}",
                field="lines",
                code="BASKET_TOO_LARGE",
            )
        for i, line in enumerate(lines):
            check_line(i, line)
        if purchased_at is not None:
            check_purchased_at(purchased_at, now)
        if store_id is not None and not (0 < len(store_id) <= MAX_STORE_ID_LENGTH):
            raise ValidationError(
                f"storeId must be 1-{MAX_STORE_ID_LENGTH} characters", field="storeId"
            )
        if not is_valid_id(customer_id) or await self._customers.get(customer_id) is None:
            raise NotFoundError("customer", customer_id, field="customerId")
        catalogue = await self._products.get_many(sorted({ln.sku for ln in lines}))
        priced: list[PurchaseLine] = []
        for i, line in enumerate(lines):
            product = catalogue.get(line.sku)
            if product is None:
                raise NotFoundError("product", line.sku, field=f"lines[{i}].sku")
            unit_price = product.price if line.unit_price is None else line.unit_price
            discount = line.discount or 0
            if discount > unit_price * line.quantity:
                raise ValidationError(
                    "discount exceeds the line's amount",
                    field=f"lines[{i}].discount",
                    code="DISCOUNT_TOO_LARGE",
                )
            priced.append(PurchaseLine(line.sku, line.quantity, unit_price, discount))

        purchase = Purchase(
            id=new_id("pur"),
            customer_id=customer_id,
            purchased_at=purchased_at or now,
            lines=tuple(priced),
            store_id=store_id,
            recorded_at=now,
        )
        request = {
            "customerId": customer_id,
            "purchasedAt": purchased_at.isoformat() if purchased_at else None,
            "storeId": store_id,
            "lines": [[ln.sku, ln.quantity, ln.unit_price, ln.discount] for ln in lines],
        }

        async def create(claim: IdempotencyClaim | None) -> Purchase:
            await self._purchases.add(purchase, purchase_recorded(purchase), claim)
            return purchase

        return await self._idempotency.run(
            scope="recordPurchase",
            key=idempotency_key,
            request=request,
            now=now,
            new_id=purchase.id,
            create=create,
            replay=self.require,
        )

    async def require(self, purchase_id: str) -> Purchase:
        purchase = await self._purchases.get(purchase_id)
        if purchase is None:
            raise NotFoundError("purchase", purchase_id)
        return purchase

    async def pages_for_customers(
        self, requests: Sequence[PurchasePageRequest]
    ) -> list[Page[Purchase]]:
        """A page of each customer's purchases, newest first, in one store round trip."""
        for request in requests:
            check_page_size(request.first)
        return await self._purchases.list_for_customers(requests)
