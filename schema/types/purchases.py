from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from domain.pagination import Page
from domain.purchases import Purchase as DomainPurchase
from domain.purchases import PurchaseLine as DomainLine
from schema.context import Context
from schema.scalars import Money
from schema.types.pages import PageInfo
from schema.types.products import Product

if TYPE_CHECKING:
    from schema.types.customers import Customer


@strawberry.type
class PurchaseLine:
    sku: strawberry.ID
    quantity: int
    unit_price: Money
    discount: Money
    amount: Money = strawberry.field(description="quantity x unitPrice - discount.")

    @strawberry.field
    async def product(self, info: Info[Context, None]) -> Product | None:
        """The catalogue entry; null only if the product was removed from the catalogue."""
        product = await info.context.loaders.product.load(self.sku)
        return Product.from_domain(product) if product else None

    @classmethod
    def from_domain(cls, line: DomainLine) -> PurchaseLine:
        return cls(
            sku=strawberry.ID(line.sku),
            quantity=line.quantity,
            unit_price=Money(line.unit_price),
            discount=Money(line.discount),
            amount=Money(line.amount),
        )


@strawberry.type(description="A basket bought by one customer at one moment.")
class Purchase:
    id: strawberry.ID
    customer_id: strawberry.ID
    purchased_at: datetime
    recorded_at: datetime | None = strawberry.field(description="When OMNIX accepted it.")
    store_id: str | None
    total: Money
    lines: list[PurchaseLine]

    @strawberry.field
    async def customer(
        self, info: Info[Context, None]
    ) -> Annotated[Customer, strawberry.lazy("schema.types.customers")] | None:
        from schema.types.customers import Customer

        customer = await info.context.loaders.customer.load(self.customer_id)
        return Customer.from_domain(customer) if customer else None

    @classmethod
    def from_domain(cls, p: DomainPurchase) -> Purchase:
        return cls(
            id=strawberry.ID(p.id),
            customer_id=strawberry.ID(p.customer_id),
            purchased_at=p.purchased_at,
            recorded_at=p.recorded_at,
            store_id=p.store_id,
            total=Money(p.total),
            lines=[PurchaseLine.from_domain(ln) for ln in p.lines],
        )


@strawberry.type
class PurchaseConnection:
    nodes: list[Purchase]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[DomainPurchase]) -> PurchaseConnection:
        return cls(
            nodes=[Purchase.from_domain(p) for p in page.items],
            page_info=PageInfo.from_page(page),
        )
