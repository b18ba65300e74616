"""The AiUsageStore contract against the SQLite adapter."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.sqlite.ai_usage import SqliteAiUsageStore
from adapters.sqlite.database import SqliteDatabase
from tests.contracts.ai_usage_store import *  # noqa: F403


@pytest.fixture
async def ai_usage_store(tmp_path: Path) -> AsyncIterator[SqliteAiUsageStore]:
    async with SqliteDatabase(tmp_path / "usage.db", readers=1) as db:
        yield SqliteAiUsageStore(db)
