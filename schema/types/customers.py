from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from domain.customers import Consent as DomainConsent
from domain.customers import Customer as DomainCustomer
from domain.pagination import Page, check_page_size
from domain.ports import PurchasePageRequest
from domain.predictions import ConsumptionStatus as DomainConsumptionStatus
from schema.context import Context
from schema.types.analysis import CustomerAnalysis, analysis_of
from schema.types.anomalies import InsightConnection, insights_of
from schema.types.pages import PageInfo
from schema.types.predictions import ConsumptionPattern, CustomerForecast, SocioeconomicProfile
from schema.types.purchases import PurchaseConnection
from schema.types.recommendations import Recommendation, RecommendationContext, recommendations_for
from schema.types.segments import SegmentAssignment


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

    @strawberry.field(
        description="Consumption cycles per product, soonest expected first; `status` keeps "
        "only the products in that state. `first` is 1..100."
    )
    async def consumption(
        self,
        info: Info[Context, None],
        first: int = 20,
        status: DomainConsumptionStatus | None = None,
    ) -> list[ConsumptionPattern]:
        check_page_size(first)
        predictions = await info.context.loaders.predictions.load(self.id)
        if predictions is None:
            return []
        patterns = [p for p in predictions.consumption if status is None or p.status == status]
        patterns.sort(key=lambda p: p.next_expected_at)
        p_alive = predictions.forecast.p_alive if predictions.forecast is not None else 1.0
        return [ConsumptionPattern.from_domain(p, p_alive) for p in patterns[:first]]

    @strawberry.field(
        description="Null until the customer's first purchase has been through the models."
    )
    async def forecast(self, info: Info[Context, None]) -> CustomerForecast | None:
        predictions = await info.context.loaders.predictions.load(self.id)
        if predictions is None or predictions.forecast is None:
            return None
        return CustomerForecast.from_domain(predictions.forecast)

    @strawberry.field(description="Null without the customer's ai_profiling consent.")
    async def profile(self, info: Info[Context, None]) -> SocioeconomicProfile | None:
        if not self._entity.consent.ai_profiling:
            return None
        predictions = await info.context.loaders.predictions.load(self.id)
        if predictions is None or predictions.profile is None:
            return None
        return SocioeconomicProfile.from_domain(predictions.profile)

    @strawberry.field(
        description="The AI analyst's structured view of the customer (staff only), cached until "
        "the customer's purchases or statistics change; `refresh` asks the model again."
    )
    async def analysis(
        self, info: Info[Context, None], refresh: bool = False
    ) -> CustomerAnalysis | None:
        return await analysis_of(info, self.id, refresh)

    @strawberry.field(
        description="The customer's segment (RFM scores, behaviour cluster, when and by which "
        "model it was assigned); null until their first purchase is scored."
    )
    async def segment(self, info: Info[Context, None]) -> SegmentAssignment | None:
        found = await info.context.loaders.segment.load(self.id)
        return SegmentAssignment.from_domain(found) if found is not None else None

    @strawberry.field(
        description="Products to offer next, best first (`limit` 1..50), each with a score, a "
        "reason and an explanation; `context` (moment, store, basket) re-ranks them. Promotional "
        "offers only with marketing consent. See docs/recommendations.md."
    )
    async def recommendations(
        self,
        info: Info[Context, None],
        limit: int = 10,
        context: RecommendationContext | None = None,
    ) -> list[Recommendation]:
        return await recommendations_for(info, self._entity, limit, context)

    @strawberry.field(
        description="What the analyst wrote about this customer's anomalies, newest first "
        "(staff only). `first` is 1..100."
    )
    async def insights(
        self, info: Info[Context, None], first: int = 20, after: str | None = None
    ) -> InsightConnection:
        return await insights_of(info, self.id, first, after)

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
