from __future__ import annotations

import strawberry

from domain.pagination import Page
from domain.products import PriceTier as DomainPriceTier
from domain.products import Product as DomainProduct
from schema.scalars import Money
from schema.types.pages import PageInfo

PriceTier = strawberry.enum(DomainPriceTier, name="PriceTier")


@strawberry.type(description="A catalogue product.")
class Product:
    sku: strawberry.ID
    name: str
    category: str
    brand: str
    price_tier: DomainPriceTier
    pack_size: float = strawberry.field(description="Pack size in `unit`s, e.g. 1.5 (l).")
    unit: str
    price: Money = strawberry.field(description="The catalogue's current unit price.")
    tags: list[str]

    @classmethod
    def from_domain(cls, p: DomainProduct) -> Product:
        return cls(
            sku=strawberry.ID(p.sku),
            name=p.name,
            category=p.category,
            brand=p.brand,
            price_tier=p.price_tier,
            pack_size=p.pack_size,
            unit=p.unit,
            price=Money(p.price),
            tags=list(p.tags),
        )


@strawberry.type
class ProductConnection:
    nodes: list[Product]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[DomainProduct]) -> ProductConnection:
        return cls(
            nodes=[Product.from_domain(p) for p in page.items],
            page_info=PageInfo.from_page(page),
        )
