"""Anomalies end to end, with the reference Node client (graphql-ws + ws): a basket ~20x a seeded
customer's usual spend, recorded over HTTP, reaches an ``anomalies`` subscriber; a subscriber
that disconnects and comes back with ``since`` (the cursor of the last anomaly it received)
gets exactly the anomalies stored while it was away, in order, then the live ones; a
``customerInsights`` subscriber gets the insight written about its customer's anomaly."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from .harness import NodeProcess, NodeRunner, RunningApp, seed, serve

pytestmark = pytest.mark.e2e

WAIT_SECONDS = 60.0
CUSTOMERS = 12

ANOMALIES = """
subscription Anomalies($since: String) {
  anomalies(minSeverity: LOW, since: $since) {
    id kind severity customerId subject explanation position cursor
  }
}
"""
INSIGHTS = """
subscription Insights($customerId: ID!) {
  customerInsights(customerId: $customerId) { id text anomalyId cursor }
}
"""
STORED = """
query Stored($after: String) {
  anomalies(first: 100, after: $after) {
    nodes { id kind customerId subject position }
    pageInfo { hasNextPage endCursor }
  }
}
"""
HISTORY = """
query History($first: Int!) {
  customers(first: $first) { nodes { id purchases(first: 60) { nodes { total } } } }
}
"""
INSIGHTS_OF = (
    "query I($id: ID!) { customer(id: $id) { insights(first: 20) { nodes { anomalyId } } } }"
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """Its own ``omnix serve`` over ``omnix seed``: customers with a history to judge against."""
    root = tmp_path_factory.mktemp("anomalies-app")
    seed(root / "data", CUSTOMERS)
    yield from serve(root / "data", root / "server.log")


@pytest.fixture(scope="module")
def usual_spend(app: RunningApp) -> dict[str, Decimal]:
    """The median basket of each seeded customer with a history long enough to judge."""
    nodes = app.execute(HISTORY, {"first": 100})["customers"]["nodes"]
    medians = {
        c["id"]: statistics.median(Decimal(p["total"]) for p in c["purchases"]["nodes"])
        for c in nodes
        if len(c["purchases"]["nodes"]) >= 6
    }
    assert len(medians) >= 7, f"too few seeded customers with a history: {nodes}"
    return medians


@pytest.fixture(scope="module")
def sku(app: RunningApp) -> str:
    return app.any_sku()


def eventually(check: Callable[[], Any], what: str, app: RunningApp) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"{what} within {WAIT_SECONDS:.0f} s\n--- server log ---\n{app.log()}")


def spike(app: RunningApp, customer_id: str, usual: Decimal, sku: str) -> str:
    """Record one basket 20x the customer's median over HTTP; returns the purchase id."""
    price = (usual * 20).quantize(Decimal("0.01"))
    result = app.record_purchase(
        customer_id, [{"sku": sku, "quantity": 1, "unitPrice": str(price)}]
    )
    assert result["__typename"] == "RecordPurchaseSuccess", result
    return str(result["purchase"]["id"])


def stored(app: RunningApp) -> list[dict[str, Any]]:
    """Every stored anomaly, oldest first."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = app.execute(STORED, {"after": after})["anomalies"]
        found += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return sorted(found, key=lambda a: int(a["position"]))
        after = page["pageInfo"]["endCursor"]


def explained(app: RunningApp, customer_id: str, purchase_id: str) -> dict[str, Any] | None:
    """The BASKET_SPIKE on ``purchase_id`` once the processor has finished its batch (the
    insight is the last thing it writes), else None."""
    [found] = [a for a in stored(app) if a["subject"] == purchase_id] or [None]
    if found is None:
        return None
    insights = app.execute(INSIGHTS_OF, {"id": customer_id})["customer"]["insights"]["nodes"]
    return found if any(i["anomalyId"] == found["id"] for i in insights) else None


@dataclass
class Subscription:
    """A Node subscriber, with what it received before its "ready" line: a replay from
    ``since`` can start arriving before the client's readiness probe comes back."""

    process: NodeProcess
    early: list[Any] = field(default_factory=list)

    def read(self, timeout: float) -> Any:
        return self.early.pop(0) if self.early else self.process.read(timeout=timeout)

    def try_read(self, timeout: float) -> Any | None:
        return self.early.pop(0) if self.early else self.process.try_read(timeout=timeout)

    def kill(self) -> None:
        self.process.kill()


def subscribe(node: NodeRunner, app: RunningApp, query: str, **variables: Any) -> Subscription:
    subscriber = node.spawn(
        "subscribe.mjs",
        app.ws_url,
        query,
        "--variables",
        json.dumps(variables),
        "--count",
        "1000",
        "--timeout",
        "120000",
    )
    subscription = Subscription(subscriber)
    while (line := subscriber.read(timeout=20)) != {"ready": True}:
        assert "data" in line or "errors" in line, f"expected the ready line, got {line}"
        subscription.early.append(line)
    return subscription


def received(subscriber: Subscription, field: str = "anomalies") -> dict[str, Any]:
    message = subscriber.read(timeout=WAIT_SECONDS)
    assert "errors" not in message, message
    item: dict[str, Any] = message["data"][field]
    return item


def test_an_anomalous_purchase_reaches_a_subscriber_and_since_replays_what_it_missed(
    app: RunningApp, usual_spend: dict[str, Decimal], sku: str, node: NodeRunner
) -> None:
    customers = iter(usual_spend)
    watched = next(customers)
    insights = subscribe(node, app, INSIGHTS, customerId=watched)
    subscriber = subscribe(node, app, ANOMALIES)

    # "ready" does not prove the resolver has joined the fan-out yet (see subscribe.mjs): with
    # no cursor to resume from, a spike in that instant may be missed, so spike again.
    purchases: set[str] = set()
    seen: list[dict[str, Any]] = []
    for _ in range(3):
        customer = next(customers)
        purchases.add(spike(app, customer, usual_spend[customer], sku))
        message = subscriber.try_read(timeout=5.0)
        if message is not None:
            assert "errors" not in message, message
            seen.append(message["data"]["anomalies"])
            break
    while not any(a["subject"] in purchases for a in seen):
        seen.append(received(subscriber))
    first = next(a for a in seen if a["subject"] in purchases)
    assert first["kind"] == "BASKET_SPIKE"
    assert first["severity"] in ("HIGH", "CRITICAL")
    assert "median basket" in first["explanation"]
    cursor, last = seen[-1]["cursor"], int(seen[-1]["position"])

    subscriber.kill()  # a client that drops off without a goodbye
    away = [next(customers) for _ in range(3)]
    missed = [spike(app, c, usual_spend[c], sku) for c in away]
    for customer, purchase in zip(away, missed, strict=True):
        eventually(
            lambda c=customer, p=purchase: explained(app, c, p),
            f"the spike on {purchase} was not stored and explained",
            app,
        )
    expected = [a for a in stored(app) if int(a["position"]) > last]
    assert set(missed) <= {a["subject"] for a in expected}

    back = subscribe(node, app, ANOMALIES, since=cursor)
    replayed = [received(back) for _ in expected]
    assert [a["id"] for a in replayed] == [a["id"] for a in expected]

    live_purchase = spike(app, watched, usual_spend[watched], sku)
    live = [received(back)]
    while live[-1]["subject"] != live_purchase:
        live.append(received(back))
    between = [
        a["id"]
        for a in stored(app)
        if int(expected[-1]["position"]) < int(a["position"]) <= int(live[-1]["position"])
    ]
    assert [a["id"] for a in live] == between
    back.kill()

    about_watched = {a["id"] for a in stored(app) if a["customerId"] == watched}
    got = [received(insights, "customerInsights")]
    while got[-1]["anomalyId"] != live[-1]["id"]:
        got.append(received(insights, "customerInsights"))
    assert {i["anomalyId"] for i in got} <= about_watched
    assert got[-1]["text"].startswith(live[-1]["explanation"])
    insights.kill()


def test_a_since_that_is_no_cursor_is_a_typed_error(app: RunningApp, node: NodeRunner) -> None:
    subscriber = node.spawn("subscribe.mjs", app.ws_url, ANOMALIES, "--variables", '{"since":"x"}')
    for _ in range(3):
        line = subscriber.read(timeout=20)
        errors = line.get("errors") or line.get("error")
        if errors:
            break
    assert isinstance(errors, list), line
    assert errors[0]["extensions"]["code"] == "INVALID_CURSOR", errors
    subscriber.stop()
