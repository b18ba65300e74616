"""Sockets that send the same live subscription share one stream (subscriptions/shared.py):
each still gets every event under its own operation id, and leaving does not end it for the
others."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from .harness import RunningApp

pytestmark = pytest.mark.e2e

CHANNEL = "omnix.events.PurchaseRecorded"
QUERY = "subscription S($c: ID) { purchaseRecorded(customerId: $c) { id } }"


async def subscribe(url: str, customer_id: str, operation_id: str) -> ClientConnection:
    ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(
        json.dumps(
            {
                "id": operation_id,
                "type": "subscribe",
                "payload": {"query": QUERY, "variables": {"c": customer_id}},
            }
        )
    )
    return ws


async def next_message(ws: ClientConnection) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        return message


def wait_for_status(app: RunningApp, predicate: Any) -> None:
    deadline = time.monotonic() + 10
    while True:
        status = app.http.get(f"{app.base_url}/statusz").json()["subscriptions"]
        if predicate(status):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"/statusz never matched: {status}")
        time.sleep(0.05)


def test_sockets_with_the_same_subscription_share_one_stream(
    seeded_app: RunningApp, seeded_sku: str
) -> None:
    app = seeded_app
    customer, other = app.new_customer(), app.new_customer()
    line = [{"sku": seeded_sku, "quantity": 1}]

    def record(customer_id: str) -> str:
        result = app.record_purchase(customer_id, line)
        assert result["__typename"] == "RecordPurchaseSuccess", result
        return str(result["purchase"]["id"])

    async def scenario() -> None:
        a = await subscribe(app.ws_url, customer, "a1")
        b = await subscribe(app.ws_url, customer, "b7")
        c = await subscribe(app.ws_url, other, "c1")
        # Two streams (one per customer) feed the three sockets, one hub listener each.
        await asyncio.to_thread(
            wait_for_status,
            app,
            lambda s: s["shared"]["subscribers"] >= 3 and s["listeners"].get(CHANNEL, 0) >= 2,
        )
        first = await asyncio.to_thread(record, customer)
        for ws, operation_id in ((a, "a1"), (b, "b7")):
            message = await next_message(ws)
            assert message["id"] == operation_id
            assert message["type"] == "next"
            assert message["payload"]["data"]["purchaseRecorded"]["id"] == first

        await b.send(json.dumps({"id": "b7", "type": "complete"}))
        second = await asyncio.to_thread(record, customer)
        message = await next_message(a)
        assert (message["id"], message["payload"]["data"]["purchaseRecorded"]["id"]) == (
            "a1",
            second,
        )
        theirs = await asyncio.to_thread(record, other)
        message = await next_message(c)
        assert (message["id"], message["payload"]["data"]["purchaseRecorded"]["id"]) == (
            "c1",
            theirs,
        )
        for ws in (a, b, c):
            await ws.close()

    asyncio.run(scenario())
    wait_for_status(app, lambda s: s["shared"]["streams"] == 0 and CHANNEL not in s["listeners"])
