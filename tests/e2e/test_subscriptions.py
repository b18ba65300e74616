"""Subscriptions over graphql-transport-ws, with the reference Node client (graphql-ws + ws)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from .harness import NodeProcess, NodeRunner, RunningApp

pytestmark = pytest.mark.e2e

PURCHASE_RECORDED = """
subscription PurchaseRecorded($customerId: ID) {
  purchaseRecorded(customerId: $customerId) {
    id
    total
    customer { id }
    lines { sku quantity unitPrice }
  }
}
"""

ATTEMPTS = 5


def subscribe(node: NodeRunner, app: RunningApp, customer_id: str, count: int = 1) -> NodeProcess:
    """Start the Node subscriber and wait for its ``ready`` line."""
    subscriber = node.spawn(
        "subscribe.mjs",
        app.ws_url,
        PURCHASE_RECORDED,
        "--variables",
        json.dumps({"customerId": customer_id}),
        "--count",
        str(count),
        "--timeout",
        "60000",
    )
    first = subscriber.read(timeout=20)
    assert first == {"ready": True}, f"expected the ready line, got {first}"
    return subscriber


def record_until_received(
    app: RunningApp,
    subscriber: NodeProcess,
    record: Callable[[], str],
) -> tuple[dict[str, Any], set[str]]:
    """Record purchases until the subscriber prints one. "ready" means the server has accepted the
    subscription, not necessarily that its resolver has joined the fan-out yet (see
    subscribe.mjs), so a purchase made in that instant may legitimately be missed: retry."""
    recorded: set[str] = set()
    for attempt in range(1, ATTEMPTS + 1):
        recorded.add(record())
        message = subscriber.try_read(timeout=1.0 * attempt)
        if message is not None:
            return message, recorded
    pytest.fail(
        f"no purchaseRecorded after {ATTEMPTS} purchases\n--- subscriber stderr ---\n"
        f"{subscriber.stderr}\n--- server log ---\n{app.log()}",
        pytrace=False,
    )


def test_a_purchase_recorded_over_http_reaches_a_graphql_ws_subscriber(
    seeded_app: RunningApp, seeded_sku: str, node: NodeRunner
) -> None:
    customer_id = seeded_app.new_customer()
    line = {"sku": seeded_sku, "quantity": 3, "unitPrice": "2.50"}
    subscriber = subscribe(node, seeded_app, customer_id)

    def record() -> str:
        result = seeded_app.record_purchase(customer_id, [line])
        assert result["__typename"] == "RecordPurchaseSuccess", result
        return str(result["purchase"]["id"])

    message, recorded = record_until_received(seeded_app, subscriber, record)

    assert "errors" not in message, message
    event = message["data"]["purchaseRecorded"]
    assert event["id"] in recorded
    assert event["total"] == "7.50"
    assert event["customer"] == {"id": customer_id}
    assert event["lines"] == [line]
    assert subscriber.wait() == []


def test_a_subscriber_to_one_customer_sees_only_that_customers_purchases(
    seeded_app: RunningApp, seeded_sku: str, node: NodeRunner
) -> None:
    watched = seeded_app.new_customer()
    other = seeded_app.new_customer()
    line = {"sku": seeded_sku, "quantity": 1}
    subscriber = subscribe(node, seeded_app, watched)

    def record_other_then_watched() -> str:
        noise = seeded_app.record_purchase(other, [line])
        assert noise["__typename"] == "RecordPurchaseSuccess", noise
        result = seeded_app.record_purchase(watched, [line])
        assert result["__typename"] == "RecordPurchaseSuccess", result
        return str(result["purchase"]["id"])

    message, recorded = record_until_received(seeded_app, subscriber, record_other_then_watched)

    event = message["data"]["purchaseRecorded"]
    assert event["customer"] == {"id": watched}
    assert event["id"] in recorded
    assert subscriber.wait() == []
