from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.memory.cache import MemoryCache
from adapters.sqlite.ai_usage import SqliteAiUsageStore
from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.stores import SqliteCustomerStore, SqliteProductStore, SqlitePurchaseStore
from domain.clock import FixedClock
from domain.events import customer_registered, purchase_recorded
from domain.ports import Analyst
from domain.predictions import CustomerPredictions
from domain.services.analyst import AnalystService
from domain.services.local_analyst import LocalAnalyst
from tests.unit.analysis.fakes import (
    NOW,
    PRODUCTS,
    RecordingUsageStore,
    ScriptedAnalyst,
    customer,
    predictions,
    purchases,
)


@dataclass
class World:
    service: AnalystService
    analyst: Any  # ScriptedAnalyst unless another is given
    cache: MemoryCache
    ticks: list[float]  # the cache's monotonic clock
    usage: RecordingUsageStore
    clock: FixedClock
    purchases: SqlitePurchaseStore
    predictions: dict[str, CustomerPredictions]


@asynccontextmanager
async def open_world(path: Path, analyst: Analyst | None = None) -> AsyncIterator[World]:
    """Three customers (cus_1 and cus_2 with predictions, cus_2 consenting to profiling, cus_3
    with two purchases and nothing predicted) in a SQLite file, behind an AnalystService."""
    async with SqliteDatabase(path / "omnix.db", readers=1) as db:
        customers, products, bought = (
            SqliteCustomerStore(db), SqliteProductStore(db), SqlitePurchaseStore(db)
        )  # fmt: skip
        people = [customer("cus_1"), customer("cus_2", profiling=True), customer("cus_3")]
        await customers.add_many(people, [customer_registered(c) for c in people])
        await products.upsert_many(list(PRODUCTS.values()))
        history = purchases("cus_1") + purchases("cus_2") + purchases("cus_3", n=2)
        await bought.add_many(history, [purchase_recorded(p) for p in history])
        stored = {c: predictions(c) for c in ("cus_1", "cus_2")}

        async def lookup(customer_id: str) -> CustomerPredictions | None:
            return stored.get(customer_id)

        clock, ticks = FixedClock(NOW), [0.0]
        analyst = analyst or ScriptedAnalyst()
        cache = MemoryCache(clock=lambda: ticks[0])
        usage = RecordingUsageStore(SqliteAiUsageStore(db))
        service = AnalystService(
            analyst=analyst,
            fallback=LocalAnalyst(),
            customers=customers,
            purchases=bought,
            products=products,
            predictions=lookup,
            cache=cache,
            usage=usage,
            clock=clock,
            ttl_seconds=3600,
        )
        yield World(service, analyst, cache, ticks, usage, clock, bought, stored)
