"""The SegmentStore contract on SQLite (fixtures in conftest.py)."""

import pytest

from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.segments import SqliteSegmentStore
from tests.contracts.segment_store import *  # noqa: F403


@pytest.fixture
def segment_store(database: SqliteDatabase) -> SqliteSegmentStore:
    return SqliteSegmentStore(database)
