"""graphql-transport-ws conformance of /graphql, with a raw WebSocket client: every close code the
protocol defines for a misbehaving client, ping/pong, and the per-socket subscription cap."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from .harness import RunningApp, serve

pytestmark = pytest.mark.e2e

PROTOCOL = "graphql-transport-ws"
CAP = 3
SUBSCRIBE = {"query": "subscription { purchaseRecorded { id } }"}


@pytest.fixture(scope="module")
def strict_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app with a one-second connection_init deadline and a cap of three operations."""
    root = tmp_path_factory.mktemp("ws-app")
    yield from serve(
        root / "data",
        root / "server.log",
        OMNIX_WS_INIT_TIMEOUT="1",
        OMNIX_MAX_SUBSCRIPTIONS_PER_SOCKET=str(CAP),
    )


async def _talk(url: str, messages: list[dict[str, Any]], *, wait: float = 3.0) -> list[Any]:
    """Send ``messages`` in order and collect what comes back until the server closes the
    socket (the close code is the last entry) or ``wait`` seconds pass quietly."""
    received: list[Any] = []
    async with websockets.connect(url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        for message in messages:
            await ws.send(json.dumps(message))
        try:
            while True:
                received.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=wait)))
        except websockets.ConnectionClosed as closed:
            received.append(closed.rcvd.code if closed.rcvd else None)
        except TimeoutError:
            pass
    return received


def talk(app: RunningApp, *messages: dict[str, Any], wait: float = 3.0) -> list[Any]:
    return asyncio.run(_talk(app.ws_url, list(messages), wait=wait))


INIT = {"type": "connection_init", "payload": {}}


def kinds(replies: list[Any]) -> list[Any]:
    """Each message's type, and the close code where the socket was closed."""
    return [r["type"] if isinstance(r, dict) else r for r in replies]


def test_no_connection_init_in_time_closes_with_4408(strict_app: RunningApp) -> None:
    assert talk(strict_app) == [4408]


def test_subscribing_before_the_ack_closes_with_4401(strict_app: RunningApp) -> None:
    assert talk(strict_app, {"type": "subscribe", "id": "1", "payload": SUBSCRIBE}) == [4401]


def test_a_second_connection_init_closes_with_4429(strict_app: RunningApp) -> None:
    assert kinds(talk(strict_app, INIT, INIT)) == ["connection_ack", 4429]


def test_a_duplicate_subscription_id_closes_with_4409(strict_app: RunningApp) -> None:
    subscribe = {"type": "subscribe", "id": "same", "payload": SUBSCRIBE}
    assert kinds(talk(strict_app, INIT, subscribe, subscribe)) == ["connection_ack", 4409]


@pytest.mark.parametrize(
    "message",
    [
        {"type": "no-such-type"},
        {"type": "subscribe", "id": "1"},
        "not an object",
    ],
)
def test_invalid_messages_close_with_4400(strict_app: RunningApp, message: Any) -> None:
    assert talk(strict_app, INIT, message)[-1] == 4400


def test_ping_is_answered_with_pong(strict_app: RunningApp) -> None:
    replies = talk(strict_app, INIT, {"type": "ping"}, wait=1.0)
    assert kinds(replies) == ["connection_ack", "pong"]


def test_subscriptions_beyond_the_cap_are_refused_on_their_id(strict_app: RunningApp) -> None:
    messages = [INIT] + [
        {"type": "subscribe", "id": str(i), "payload": SUBSCRIBE} for i in range(CAP + 1)
    ]
    replies = talk(strict_app, *messages, wait=1.5)
    assert kinds(replies)[0] == "connection_ack"
    errors = [r for r in replies[1:] if isinstance(r, dict) and r.get("type") == "error"]
    assert [e["id"] for e in errors] == [str(CAP)]
    assert errors[0]["payload"][0]["message"] == "Subscription limit reached"
    assert not any(isinstance(r, int) for r in replies)  # the socket stays open


def test_a_completed_subscription_frees_its_place(strict_app: RunningApp) -> None:
    messages: list[dict[str, Any]] = [INIT]
    messages += [{"type": "subscribe", "id": str(i), "payload": SUBSCRIBE} for i in range(CAP)]
    messages += [{"type": "complete", "id": "0"}]
    messages += [{"type": "subscribe", "id": "again", "payload": SUBSCRIBE}]
    replies = talk(strict_app, *messages, wait=1.5)
    assert not [r for r in replies if isinstance(r, dict) and r.get("type") == "error"]
