"""The cache contract, run against MemoryCache."""

from __future__ import annotations

import pytest

from adapters.memory.cache import MemoryCache
from tests.contracts.cache import *  # noqa: F403


@pytest.fixture
def cache() -> MemoryCache:
    return MemoryCache()
