"""The bus contract, run against MemoryBus (fixtures in conftest.py)."""

from tests.contracts.bus import *  # noqa: F403
