"""End-to-end fixtures: the real app in a uvicorn subprocess, and the Node clients.

- ``app``: ``omnix serve`` over an empty data directory (no demo data, no catalogue).
- ``seeded_app``: ``omnix serve`` over ``omnix seed --customers 20`` (customers, catalogue,
  purchases); use it whenever a test needs products.
- ``seeded_sku``: a sku from ``seeded_app``'s catalogue.
- ``node``: runs the scripts in ``tests/e2e/node`` (``node("audit.mjs", url)`` -> parsed JSON;
  ``node.spawn("subscribe.mjs", ...)`` -> a process whose JSON lines are read one by one).

Both apps run with OMNIX_ENV=test and OMNIX_AUTH=dev (every caller is an admin), are started
once per session on a free loopback port, and are waited for on ``/readyz`` (30 s). Nothing
skips: a server that does not come up fails with its log, and missing ``node_modules`` fails
with the command to run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import SEEDED_CUSTOMERS, NodeRunner, RunningApp, find_node, seed, serve


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app over an empty store: no demo data, no products."""
    root = tmp_path_factory.mktemp("app")
    yield from serve(root / "data", root / "server.log")


@pytest.fixture(scope="session")
def seeded_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app over a small generated dataset (``omnix seed --customers 20``)."""
    root = tmp_path_factory.mktemp("seeded-app")
    seed(root / "data", SEEDED_CUSTOMERS)
    yield from serve(root / "data", root / "server.log")


@pytest.fixture(scope="session")
def seeded_sku(seeded_app: RunningApp) -> str:
    """A sku from the seeded catalogue."""
    return seeded_app.any_sku()


@pytest.fixture(scope="session")
def node() -> Iterator[NodeRunner]:
    """Runs the Node clients in tests/e2e/node; needs Node 20+ and ``npm ci`` at the repo root."""
    runner = NodeRunner(find_node())
    try:
        yield runner
    finally:
        runner.stop_all()
