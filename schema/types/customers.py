from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from domain.customers import Consent as DomainConsent
from domain.customers import Customer as DomainCustomer
from domain.pagination import Page, check_page_size
from domain.ports import PurchasePageRequest
from schema.context import Context
from schema.types.pages import PageInfo
from schema.types.purchases import PurchaseConnection


@strawberry.type(description="What the customer allowed; everything is opt-in.")
class Consent:
    analytics: bool
    ai_profiling: bool
    marketing: bool

    @classmethod
    def from_domain(cls, c: DomainConsent) -> Consent:
        return cls(analytics=c.analytics, ai_profiling=c.ai_profiling, marketing=c.marketing)


@strawberry.input
class ConsentInput:
    analytics: bool = False
    ai_profiling: bool = False
    marketing: bool = False

    def to_domain(self) -> DomainConsent:
        return DomainConsent(
            analytics=self.analytics, ai_profiling=self.ai_profiling, marketing=self.marketing
        )


@strawberry.type(description="A customer. Name and email are visible to admins and the customer.")
class Customer:
    id: strawberry.ID
    created_at: datetime
    consent: Consent
    household_size: int | None
    _entity: strawberry.Private[DomainCustomer]

    @strawberry.field(description="Null unless the caller is an admin or this customer.")
    def name(self, info: Info[Context, None]) -> str | None:
        return self._entity.name if info.context.principal.can_read_pii(self.id) else None

    @strawberry.field(description="Null unless the caller is an admin or this customer.")
    def email(self, info: Info[Context, None]) -> str | None:
        return self._entity.email if info.context.principal.can_read_pii(self.id) else None

    @strawberry.field(description="Purchases, newest first.")
    async def purchases(
        self, info: Info[Context, None], first: int = 20, after: str | None = None
    ) -> PurchaseConnection:
        check_page_size(first)
        page = await info.context.loaders.purchases.load(PurchasePageRequest(self.id, first, after))
        return PurchaseConnection.from_page(page)

    @classmethod
    def from_domain(cls, c: DomainCustomer) -> Customer:
        return cls(
            id=strawberry.ID(c.id),
            created_at=c.created_at,
            consent=Consent.from_domain(c.consent),
            household_size=c.household_size,
            _entity=c,
        )


@strawberry.type
class CustomerConnection:
    nodes: list[Customer]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[DomainCustomer]) -> CustomerConnection:
        return cls(
            nodes=[Customer.from_domain(c) for c in page.items], page_info=PageInfo.from_page(page)
        )
