"""The typed per-request context: the caller, the domain services and the request's loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from strawberry.dataloader import DataLoader

from domain.access import Principal
from domain.customers import Customer
from domain.pagination import Page
from domain.ports import PurchasePageRequest
from domain.predictions import CustomerPredictions
from domain.products import Product
from domain.purchases import Purchase
from domain.segments import SegmentAssignment
from domain.services.analyst import AnalystService
from domain.services.anomalies import AnomalyService
from domain.services.catalogue import CatalogueService
from domain.services.customers import CustomerService
from domain.services.jobs import JobService
from domain.services.predictions import PredictionService
from domain.services.purchases import PurchaseService
from domain.services.recommendations import RecommendationService
from domain.services.segments import SegmentService
from subscriptions.hub import SubscriptionHub


@dataclass(frozen=True)
class Services:
    """The domain services the API calls, built once per process by the composition root."""

    customers: CustomerService
    purchases: PurchaseService
    catalogue: CatalogueService
    hub: SubscriptionHub
    predictions: PredictionService | None = None
    analyst: AnalystService | None = None
    recommendations: RecommendationService | None = None
    segments: SegmentService | None = None
    anomalies: AnomalyService | None = None
    jobs: JobService | None = None


class Loaders:
    """Per-request DataLoaders: each batches one resolver pass's lookups into one store call.

    The load functions close over the services, never over ``self``: a loader that referred back
    to its holder would make a reference cycle, and every customer and basket a request loaded
    would then wait for the cyclic garbage collector instead of being freed when the request
    ends."""

    def __init__(self, services: Services) -> None:
        self._services = services

    @cached_property
    def customer(self) -> DataLoader[str, Customer | None]:
        customers = self._services.customers

        async def load(ids: list[str]) -> list[Customer | None]:
            found = await customers.get_many(ids)
            return [found.get(i) for i in ids]

        return DataLoader(load_fn=load)

    @cached_property
    def product(self) -> DataLoader[str, Product | None]:
        catalogue = self._services.catalogue

        async def load(skus: list[str]) -> list[Product | None]:
            found = await catalogue.get_many(skus)
            return [found.get(s) for s in skus]

        return DataLoader(load_fn=load)

    @cached_property
    def predictions(self) -> DataLoader[str, CustomerPredictions | None]:
        service = self._services.predictions

        async def load(ids: list[str]) -> list[CustomerPredictions | None]:
            if service is None:
                return [None] * len(ids)
            found = await service.for_customers(ids)
            return [found.get(i) for i in ids]

        return DataLoader(load_fn=load)

    @cached_property
    def segment(self) -> DataLoader[str, SegmentAssignment | None]:
        service = self._services.segments

        async def load(ids: list[str]) -> list[SegmentAssignment | None]:
            if service is None:
                return [None] * len(ids)
            found = await service.assignments(ids)
            return [found.get(i) for i in ids]

        return DataLoader(load_fn=load)

    @cached_property
    def purchases(self) -> DataLoader[PurchasePageRequest, Page[Purchase]]:
        return DataLoader(load_fn=self._services.purchases.pages_for_customers)


@dataclass
class Context:
    services: Services
    principal: Principal
    request_id: str
    loaders: Loaders = field(init=False)
    connection_params: dict[str, object] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.services)
