"""Subscription clean-up when a client goes away, and JWT auth over HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import websockets

from .harness import NodeRunner, RunningApp, serve

pytestmark = pytest.mark.e2e

CHANNEL = "omnix.events.PurchaseRecorded"
SECRET = "e2e-secret-long-enough-for-hs256-signatures"


def status(app: RunningApp) -> dict[str, Any]:
    response = app.http.get(f"{app.base_url}/statusz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["subscriptions"]
    return body


def wait_for(app: RunningApp, predicate: Any, what: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = status(app)
        if predicate(current):
            return current
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; /statusz says {current}\n{app.log()}")
        time.sleep(0.05)


def test_a_client_that_goes_away_leaves_no_listener_or_bus_subscription(
    app: RunningApp, node: NodeRunner
) -> None:
    assert status(app)["busSubscriptions"] == 0
    subscribers = [
        node.spawn(
            "subscribe.mjs",
            app.ws_url,
            "subscription { purchaseRecorded { id } }",
            "--count",
            "1",
            "--timeout",
            "60000",
        )
        for _ in range(3)
    ]
    for subscriber in subscribers:
        assert subscriber.read(timeout=20) == {"ready": True}
    # The three sockets send the same live subscription: they share one stream, which is the
    # hub's one listener on one bus subscription.
    joined = wait_for(
        app,
        lambda s: s["shared"]["subscribers"] == 3 and s["listeners"].get(CHANNEL) == 1,
        "three subscribers of one shared stream listening on one bus subscription",
    )
    assert joined["busSubscriptions"] == 1
    assert joined["shared"]["streams"] == 1
    for subscriber in subscribers:
        subscriber.kill()
    wait_for(
        app,
        lambda s: (
            s["listeners"] == {} and s["busSubscriptions"] == 0 and s["shared"]["streams"] == 0
        ),
        "the hub to drop every listener and its bus subscription",
    )


def token(claims: dict[str, Any]) -> str:
    return jwt.encode({"exp": int(time.time()) + 300, **claims}, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def jwt_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    root = tmp_path_factory.mktemp("jwt-app")
    yield from serve(root / "data", root / "server.log", OMNIX_AUTH="jwt", OMNIX_JWT_SECRET=SECRET)


def post(app: RunningApp, query: str, bearer: str | None, variables: Any = None) -> Any:
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    return app.post(query, variables, headers=headers)


REGISTER = """
mutation($email: String!) {
  registerCustomer(input: {name: "Jo Bloggs", email: $email}) {
    ... on RegisterCustomerSuccess { customer { id } }
  }
}
"""
READ = "query($id: ID!) { customer(id: $id) { id name email } }"


def test_http_without_a_valid_token_is_401(jwt_app: RunningApp) -> None:
    for bearer in (
        None,
        "garbage",
        jwt.encode(
            {"sub": "x", "roles": ["admin"], "exp": int(time.time()) + 60},
            "wrong-secret-of-a-decent-length!!",
            algorithm="HS256",
        ),
    ):
        response = post(jwt_app, "{ products { nodes { sku } } }", bearer)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_roles_decide_what_a_caller_sees(jwt_app: RunningApp) -> None:
    admin = token({"sub": "ops", "roles": ["admin"]})
    created = post(jwt_app, REGISTER, admin, {"email": "jo@example.com"}).json()
    customer_id = created["data"]["registerCustomer"]["customer"]["id"]
    other = post(jwt_app, REGISTER, admin, {"email": "al@example.com"}).json()
    other_id = other["data"]["registerCustomer"]["customer"]["id"]

    as_admin = post(jwt_app, READ, admin, {"id": customer_id}).json()["data"]["customer"]
    assert as_admin["name"] == "Jo Bloggs"

    analyst = token({"sub": "bi", "roles": ["analyst"]})
    as_analyst = post(jwt_app, READ, analyst, {"id": customer_id}).json()["data"]["customer"]
    assert as_analyst == {"id": customer_id, "name": None, "email": None}

    themself = token({"sub": customer_id, "roles": ["customer"]})
    own = post(jwt_app, READ, themself, {"id": customer_id}).json()["data"]["customer"]
    assert own["email"] == "jo@example.com"
    foreign = post(jwt_app, READ, themself, {"id": other_id}).json()
    assert foreign["data"] == {"customer": None}
    assert foreign["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    refused = post(jwt_app, REGISTER, analyst, {"email": "x@example.com"}).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def handshake(url: str, payload: dict[str, Any]) -> tuple[str, int | None]:
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        try:
            message = await asyncio.wait_for(ws.recv(), timeout=10)
        except websockets.ConnectionClosed as closed:
            return "closed", closed.rcvd.code if closed.rcvd else None
        return json.loads(message)["type"], None


def test_websocket_auth_happens_in_connection_init(jwt_app: RunningApp) -> None:
    good = token({"sub": "svc", "roles": ["service"]})
    assert asyncio.run(handshake(jwt_app.ws_url, {"authorization": f"Bearer {good}"})) == (
        "connection_ack",
        None,
    )
    assert asyncio.run(handshake(jwt_app.ws_url, {"token": good})) == ("connection_ack", None)
    assert asyncio.run(handshake(jwt_app.ws_url, {"token": "forged"})) == ("closed", 4403)
    assert asyncio.run(handshake(jwt_app.ws_url, {})) == ("closed", 4403)
