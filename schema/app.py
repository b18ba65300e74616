"""The composition root: the one module that reads settings, builds adapters and domain services,
assembles the GraphQL schema and the Starlette app. Nothing connects at import time; resources
open in ``open_container`` (driven by the app's lifespan or by a CLI command) and close with it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from adapters.memory.bus import MemoryBus
from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.event_log import SqliteEventLog
from adapters.sqlite.stores import (
    SqliteCustomerStore,
    SqliteIdempotencyStore,
    SqliteProductStore,
    SqlitePurchaseStore,
)
from domain.clock import Clock, SystemClock
from domain.ports import Bus, EventLog, HealthCheck
from domain.services.catalogue import CatalogueService
from domain.services.customers import CustomerService
from domain.services.idempotency import Idempotency
from domain.services.importing import TransactionImporter
from domain.services.purchases import PurchaseLimits, PurchaseService
from domain.services.relay import EventRelay
from schema.settings import Settings, SettingsError

log = logging.getLogger("omnix")


@dataclass
class Container:
    """Everything a request, a worker or a CLI command needs, built once per process."""

    settings: Settings
    clock: Clock
    customers: CustomerService
    purchases: PurchaseService
    catalogue: CatalogueService
    importer: TransactionImporter
    events: EventLog
    bus: Bus
    relay: EventRelay
    health: list[HealthCheck] = field(default_factory=list)


def _scheme(url: str) -> str:
    return urlsplit(url).scheme


@asynccontextmanager
async def open_container(settings: Settings, *, clock: Clock | None = None) -> AsyncIterator[Container]:
    clock = clock or SystemClock()
    async with AsyncExitStack() as stack:
        store_scheme = _scheme(settings.store_url or "sqlite://")
        if store_scheme != "sqlite":
            raise SettingsError(f"OMNIX_STORE scheme {store_scheme!r} is not supported; use sqlite://")
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        db = SqliteDatabase(path, readers=settings.db_threads, timeout=settings.db_timeout_seconds)
        await db.open()
        stack.push_async_callback(db.close)

        if _scheme(settings.events_url) != "sqlite":
            raise SettingsError(f"OMNIX_EVENTS {settings.events_url!r} is not supported; use sqlite://")
        events = SqliteEventLog(db)

        if _scheme(settings.bus_url) != "memory":
            raise SettingsError(f"OMNIX_BUS {settings.bus_url!r} is not supported; use memory://")
        bus = MemoryBus()
        stack.push_async_callback(bus.close)

        customer_store = SqliteCustomerStore(db)
        product_store = SqliteProductStore(db)
        purchase_store = SqlitePurchaseStore(db)
        idempotency = Idempotency(SqliteIdempotencyStore(db))
        yield Container(
            settings=settings,
            clock=clock,
            customers=CustomerService(customer_store, idempotency, clock),
            purchases=PurchaseService(
                purchase_store,
                customer_store,
                product_store,
                idempotency,
                clock,
                PurchaseLimits(max_lines=settings.max_basket_lines),
            ),
            catalogue=CatalogueService(product_store),
            importer=TransactionImporter(customer_store, product_store, purchase_store, clock),
            events=events,
            bus=bus,
            relay=EventRelay(events, bus),
            health=[db],
        )
