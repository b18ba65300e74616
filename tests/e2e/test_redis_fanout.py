"""Two API processes sharing one Redis bus and one data directory: a purchase recorded through
one reaches a graphql-ws subscriber connected to the other, exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import ServerProcess, redis_server

from .harness import SEEDED_CUSTOMERS, NodeRunner, RunningApp, seed, serve
from .test_subscriptions import record_until_received, subscribe

pytestmark = pytest.mark.e2e

QUIET_SECONDS = 2.0


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[ServerProcess]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def shared_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("redis-fanout")
    seed(root / "data", SEEDED_CUSTOMERS)
    return root


def _serve_on_redis(root: Path, name: str, redis: ServerProcess) -> Iterator[RunningApp]:
    yield from serve(
        root / "data",
        root / f"{name}.log",
        OMNIX_BUS=f"redis://127.0.0.1:{redis.port}/0",
    )


@pytest.fixture(scope="module")
def app_a(shared_data: Path, shared_redis: ServerProcess) -> Iterator[RunningApp]:
    yield from _serve_on_redis(shared_data, "a", shared_redis)


@pytest.fixture(scope="module")
def app_b(
    shared_data: Path, shared_redis: ServerProcess, app_a: RunningApp
) -> Iterator[RunningApp]:
    yield from _serve_on_redis(shared_data, "b", shared_redis)


def test_a_purchase_through_one_process_reaches_a_subscriber_of_the_other_once(
    app_a: RunningApp, app_b: RunningApp, node: NodeRunner
) -> None:
    customer_id = app_a.new_customer()
    line = {"sku": app_a.any_sku(), "quantity": 2, "unitPrice": "1.25"}
    subscriber = subscribe(node, app_b, customer_id, count=100)

    def record() -> str:
        result = app_a.record_purchase(customer_id, [line])
        assert result["__typename"] == "RecordPurchaseSuccess", result
        return str(result["purchase"]["id"])

    first, recorded = record_until_received(app_a, subscriber, record)
    # The subscription is live on B now: one more purchase through A must arrive exactly once.
    last = record()
    received = [first]
    while (message := subscriber.try_read(timeout=QUIET_SECONDS)) is not None:
        received.append(message)
    ids = [m["data"]["purchaseRecorded"]["id"] for m in received]

    assert len(ids) == len(set(ids)), f"a purchase was delivered twice: {ids}"
    assert last in ids
    assert set(ids) == recorded | {last}
    assert {m["data"]["purchaseRecorded"]["customer"]["id"] for m in received} == {customer_id}
    statuses = [app.http.get(f"{app.base_url}/statusz").json() for app in (app_a, app_b)]
    relays = [status["relay"] for status in statuses]
    assert sum(1 for r in relays if r["leading"]) == 1, relays
    assert sum(1 for r in relays if r["published"] > 0) == 1, relays
    assert all(s["bus"]["kind"] == "redis" and s["bus"]["connected"] for s in statuses)
    subscriber.stop()
