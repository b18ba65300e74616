"""The AnomalyStore and InsightStore contract on SQLite."""

from __future__ import annotations

import pytest

from adapters.sqlite.anomalies import SqliteAnomalyStore, SqliteInsightStore
from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.event_log import SqliteEventLog
from domain.events import DomainEvent
from tests.contracts.anomaly_store import *  # noqa: F403
from tests.contracts.anomaly_store import WrittenEvents


@pytest.fixture
def anomaly_store(database: SqliteDatabase) -> SqliteAnomalyStore:
    return SqliteAnomalyStore(database)


@pytest.fixture
def insight_store(database: SqliteDatabase) -> SqliteInsightStore:
    return SqliteInsightStore(database)


@pytest.fixture
def written_events(database: SqliteDatabase) -> WrittenEvents:
    async def read() -> list[DomainEvent]:
        return [e.event for e in await SqliteEventLog(database).read(after=0, limit=1000)]

    return read
