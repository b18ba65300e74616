"""The bare peer for bench_fanout.py: a `websockets` broadcast server with no GraphQL.

    fanout_peer.py PORT --customers c1,c2,...

It speaks just enough graphql-transport-ws for the benchmark's clients (connection_init is
acknowledged, a subscribe message puts the socket in its customer's group, pings are answered)
and, once a second for every customer, builds one ``next`` message carrying a fresh
``purchasedAt`` and hands it to ``websockets.broadcast`` for that customer's group: the events
are spread evenly over each second, as the benchmark spreads its purchases. This is the floor
for fan-out in Python on this machine: no bus, no queue per subscriber, no GraphQL execution.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from datetime import UTC, datetime

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

groups: dict[str, set[ServerConnection]] = {}


async def handler(ws: ServerConnection) -> None:
    joined: set[ServerConnection] | None = None
    try:
        async for raw in ws:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "connection_init":
                await ws.send('{"type":"connection_ack"}')
            elif kind == "subscribe":
                customer = message["payload"]["variables"]["customerId"]
                joined = groups.setdefault(customer, set())
                joined.add(ws)
            elif kind == "ping":
                await ws.send('{"type":"pong"}')
    except ConnectionClosed:
        pass  # the benchmark's clients leave without a closing handshake
    finally:
        if joined is not None:
            joined.discard(ws)


async def tick(customers: list[str]) -> None:
    interval = 1.0 / len(customers)
    start = time.monotonic()
    n = 0
    while True:
        customer = customers[n % len(customers)]
        sockets = groups.get(customer)
        if sockets:
            now = datetime.now(UTC).isoformat()
            event = {"id": f"pur_peer{n}", "purchasedAt": now}
            message = json.dumps(
                {"id": "1", "type": "next", "payload": {"data": {"purchaseRecorded": event}}}
            )
            broadcast(sockets, message)
        n += 1
        await asyncio.sleep(max(0.0, start + n * interval - time.monotonic()))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--customers", required=True)
    args = parser.parse_args()
    async with serve(
        handler,
        "127.0.0.1",
        args.port,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        ping_interval=None,
        compression=None,
        backlog=4096,
    ):
        await tick(args.customers.split(","))


if __name__ == "__main__":
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.run(main())
