"""The JobStore contract on SQLite."""

from __future__ import annotations

import pytest

from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.jobs import SqliteJobStore
from tests.contracts.job_store import *  # noqa: F403


@pytest.fixture
def job_store(database: SqliteDatabase) -> SqliteJobStore:
    return SqliteJobStore(database)
