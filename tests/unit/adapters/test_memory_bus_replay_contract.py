"""The replay contract, run against MemoryBus's in-process history."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.memory.bus import MemoryBus
from tests.contracts.replay import *  # noqa: F403

HISTORY = 5


@pytest.fixture
async def replay_bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus(history_size=HISTORY)
    yield bus
    await bus.close()


@pytest.fixture
def overflow() -> int:
    return HISTORY + 2
