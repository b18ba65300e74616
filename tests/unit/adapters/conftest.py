"""The embedded adapters, fresh for each test: a SQLite file in the test's temporary directory
and an in-process bus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from adapters.memory.bus import MemoryBus
from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.event_log import SqliteEventLog
from adapters.sqlite.predictions import SqlitePredictionStore
from adapters.sqlite.stores import (
    SqliteCustomerStore,
    SqliteIdempotencyStore,
    SqliteProductStore,
    SqlitePurchaseStore,
)


@pytest.fixture
def database_path(tmp_path: Path) -> Path:
    return tmp_path / "omnix.db"


@pytest.fixture
async def database(database_path: Path) -> AsyncIterator[SqliteDatabase]:
    async with SqliteDatabase(database_path, readers=2, timeout=5.0) as db:
        yield db


@pytest.fixture
def customer_store(database: SqliteDatabase) -> SqliteCustomerStore:
    return SqliteCustomerStore(database)


@pytest.fixture
def product_store(database: SqliteDatabase) -> SqliteProductStore:
    return SqliteProductStore(database)


@pytest.fixture
def purchase_store(database: SqliteDatabase) -> SqlitePurchaseStore:
    return SqlitePurchaseStore(database)


@pytest.fixture
def idempotency_store(database: SqliteDatabase) -> SqliteIdempotencyStore:
    return SqliteIdempotencyStore(database)


@pytest.fixture
def event_log(database: SqliteDatabase) -> SqliteEventLog:
    return SqliteEventLog(database)


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus()
    yield bus
    await bus.close()


@pytest.fixture
def listener_count(bus: MemoryBus) -> Callable[[str], Awaitable[int]]:
    async def count(channel: str) -> int:
        return bus.listener_counts().get(channel, 0)

    return count


@pytest.fixture
def prediction_store(database: SqliteDatabase) -> SqlitePredictionStore:
    return SqlitePredictionStore(database)
