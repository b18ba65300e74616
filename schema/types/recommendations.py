"""Recommendations on a customer: what to offer next, with a score, a reason and an
explanation; the request's context (moment, store, basket) re-ranks them."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from domain.customers import Customer as DomainCustomer
from domain.recommendations import Recommendation as DomainRecommendation
from domain.recommendations import RecommendationContext as DomainContext
from domain.recommendations import RecommendationReason as DomainReason
from domain.services.recommendations import check_limit
from schema.context import Context
from schema.types.products import Product

RecommendationReason = strawberry.enum(
    DomainReason,
    name="RecommendationReason",
    description="The source that contributed most to a recommendation: REPLENISHMENT_DUE (the "
    "customer's consumption cycle says it is due), BOUGHT_TOGETHER (often in the same baskets "
    "as the basket, what is due or the favourites; lift above 1), SIMILAR (like a favourite by "
    "category, brand, price tier and tags), SEGMENT_STRATEGY (the offer the customer's segment "
    "gets; promotional, only with marketing consent).",
)


@strawberry.input(
    description="Where and when the recommendations are shown. Basket skus missing from the "
    "catalogue are ignored (a till may scan items the catalogue does not know yet)."
)
class RecommendationContext:
    at: datetime | None = strawberry.field(
        default=None, description="The moment to recommend for (default: now)."
    )
    store_id: str | None = strawberry.field(default=None, description="The store, if any.")
    basket: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Skus already in the basket (at most 200): left out, and "
        "what is bought with them moves up.",
    )

    def to_domain(self) -> DomainContext:
        return DomainContext(
            at=self.at, store_id=self.store_id, basket=tuple(str(s) for s in self.basket or ())
        )


@strawberry.type(description="A product recommended to a customer.")
class Recommendation:
    sku: strawberry.ID
    score: float = strawberry.field(
        description="0..1, roughly the chance the customer takes it up now (the sources "
        "combined, re-ranked by the context)."
    )
    reason: DomainReason
    explanation: str = strawberry.field(description="Why, in words, with the figures behind it.")
    promotional: bool = strawberry.field(
        description="A marketing offer (segment strategy or a promotion-tagged product); only "
        "shown to customers with marketing consent."
    )

    @strawberry.field(description="The product.")
    async def product(self, info: Info[Context, None]) -> Product:
        product = await info.context.loaders.product.load(str(self.sku))
        if product is None:
            raise LookupError(f"product {self.sku} is not in the catalogue")
        return Product.from_domain(product)

    @classmethod
    def from_domain(cls, r: DomainRecommendation) -> Recommendation:
        return cls(
            sku=strawberry.ID(r.sku),
            score=r.score,
            reason=r.reason,
            explanation=r.explanation,
            promotional=r.promotional,
        )


async def recommendations_for(
    info: Info[Context, None],
    customer: DomainCustomer,
    limit: int,
    context: RecommendationContext | None,
) -> list[Recommendation]:
    check_limit(limit)
    service = info.context.services.recommendations
    if service is None:
        return []
    found = await service.for_customer(
        customer, limit=limit, context=context.to_domain() if context is not None else None
    )
    return [Recommendation.from_domain(r) for r in found]
