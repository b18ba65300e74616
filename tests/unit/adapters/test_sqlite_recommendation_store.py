"""The RecommendationStore contract on SQLite."""

import pytest

from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.recommendations import SqliteRecommendationStore
from tests.contracts.recommendation_store import *  # noqa: F403


@pytest.fixture
def recommendation_store(database: SqliteDatabase) -> SqliteRecommendationStore:
    return SqliteRecommendationStore(database)
