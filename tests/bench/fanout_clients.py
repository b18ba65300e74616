"""Subscribers for bench_fanout.py: one process holding many graphql-transport-ws sockets.

    fanout_clients.py URL --customers c1,c2,... --sockets N --first-index I

Socket ``i`` (counting from ``--first-index``) subscribes to ``purchaseRecorded`` for customer
``i % len(customers)``. The process reports on stdout, one JSON object a line: ``subscribed``
once every socket sent its subscribe message, ``live`` once every socket received an event.
It then reads ``WINDOW t0 t1`` (Unix times) on stdin, keeps listening until GRACE seconds after
t1, and prints the latency (receive time minus the event's ``purchasedAt``, in seconds) of every
event received whose ``purchasedAt`` lies in the window, how many sockets are still open, and any
socket errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from datetime import datetime

import uvloop
from websockets.asyncio.client import ClientConnection, connect

QUERY = (
    "subscription Fanout($customerId: ID) "
    "{ purchaseRecorded(customerId: $customerId) { id purchasedAt } }"
)
CONNECT_CONCURRENCY = 64
# An event of the window that arrives later than this after the window's end counts as lost.
GRACE = 3.0


class Subscribers:
    def __init__(self, url: str, customers: list[str], count: int, first: int) -> None:
        self.url = url
        self.customers = customers
        self.count = count
        self.first = first
        self.received: list[tuple[float, float]] = []
        self.per_socket = [0] * count
        self.errors: Counter[str] = Counter()
        self.subscribed = 0
        self.live = 0
        self.all_subscribed = asyncio.Event()
        self.all_live = asyncio.Event()
        self._gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def run_one(self, n: int) -> None:
        customer = self.customers[(self.first + n) % len(self.customers)]
        try:
            async with self._gate:
                ws = await connect(
                    self.url,
                    subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                    open_timeout=120,
                    ping_interval=None,
                    close_timeout=1,
                    compression=None,
                )
                await ws.send('{"type":"connection_init","payload":{}}')
                ack = json.loads(await asyncio.wait_for(ws.recv(), 120))
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"expected connection_ack, got {ack}")
                subscribe = {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": QUERY, "variables": {"customerId": customer}},
                }
                await ws.send(json.dumps(subscribe))
            self.subscribed += 1
            if self.subscribed == self.count:
                self.all_subscribed.set()
            await self.listen(ws, n)
        except Exception as e:  # every failure is counted and reported
            self.errors[f"{type(e).__name__}: {e}"[:160]] += 1

    async def listen(self, ws: ClientConnection, n: int) -> None:
        received = self.received
        fromisoformat = datetime.fromisoformat
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await ws.send('{"type":"pong"}')
                continue
            if kind != "next":
                raise RuntimeError(f"unexpected message {str(message)[:120]}")
            event = message["payload"]["data"]["purchaseRecorded"]
            received.append((now, now - fromisoformat(event["purchasedAt"]).timestamp()))
            if self.per_socket[n] == 0:
                self.live += 1
                if self.live == self.count:
                    self.all_live.set()
            self.per_socket[n] += 1


def report(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--customers", required=True)
    parser.add_argument("--sockets", type=int, required=True)
    parser.add_argument("--first-index", type=int, default=0)
    args = parser.parse_args()
    subscribers = Subscribers(args.url, args.customers.split(","), args.sockets, args.first_index)
    tasks = [asyncio.create_task(subscribers.run_one(n)) for n in range(args.sockets)]
    for event, name in ((subscribers.all_subscribed, "subscribed"), (subscribers.all_live, "live")):
        while not event.is_set():
            try:
                await asyncio.wait_for(event.wait(), 1)
            except TimeoutError:
                if all(t.done() for t in tasks):
                    break
            report({"progress": f"{subscribers.subscribed} subscribed, {subscribers.live} "
                    f"live, {sum(subscribers.errors.values())} failed"})  # fmt: skip
        report({name: True})
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    _, t0, t1 = line.split()
    start, end = float(t0), float(t1)
    await asyncio.sleep(max(0.0, end - time.time()) + GRACE)
    inside = [latency for at, latency in subscribers.received if start <= at - latency < end]
    report(
        {
            "latencies": [round(x, 5) for x in inside],
            "sockets": args.sockets,
            "errors": dict(subscribers.errors),
            "open": sum(1 for t in tasks if not t.done()),
        }
    )
    # Leave without closing each socket politely: the server sees the connections drop at once.
    os._exit(0)


if __name__ == "__main__":
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.run(main())
