"""Purchases and their lines.

These types are resolved straight from ``domain.purchases.Purchase`` and ``PurchaseLine``
instances: each field is named after the entity's attribute (``unit_price``, ``total``,
``amount``...), so a page of baskets reaches the client without a per-request copy. The
resolvers below read the entity through ``self``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry
from strawberry.types import Info

from domain.pagination import Page
from domain.purchases import Purchase as DomainPurchase
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

    @staticmethod
    def from_domain(purchase: DomainPurchase) -> Purchase:
        return cast(Purchase, purchase)


@strawberry.type
class PurchaseConnection:
    nodes: list[Purchase]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[DomainPurchase]) -> PurchaseConnection:
        return cls(nodes=cast(list[Purchase], page.items), page_info=PageInfo.from_page(page))
