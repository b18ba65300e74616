"""Subscription fan-out: 1,000 / 5,000 / 10,000 graphql-transport-ws subscribers on one server.

One `omnix serve` process on the embedded default (SQLite store and event log, in-process bus)
holds every subscriber. Subscriber ``i`` subscribes to ``purchaseRecorded(customerId)`` for
customer ``i mod K``; a driver records one purchase a second for each of the K customers with
real ``recordPurchase`` mutations, spread evenly over the second, so every subscriber receives
one event a second and the server delivers N messages a second. The events take production's
whole path: mutation, store and event log, the relay, the bus, the subscription hub, the
resolver, the protocol handler, the socket.

Latency is event to client: the receive time minus the purchase's ``purchasedAt`` (set by the
server when it accepts the purchase; clients and server share the machine's clock). Memory per
connection is the server's RSS once every subscriber is live minus its RSS before they connected,
divided by N. The server's CPU with the purchases alone is measured before any subscriber
connects, so what the fan-out costs per message is the rest. The same clients, in the same run,
then measure a bare `websockets` broadcast server (fanout_peer.py) that sends the same messages
at the same rate with no GraphQL at all.

Clients are separate processes (fanout_clients.py, 1,000 sockets each) on one core; the server
under test is pinned to the other. Each level starts fresh servers.

    .venv/bin/python tests/bench/bench_fanout.py [--subscribers 1000,5000,10000 --seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import queue
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_graphql import free_port, wait_ready

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BAR_SUBSCRIBERS = 10_000
BAR_P99 = 0.250
# Delivered messages must reach this share of those the window's events owed the subscribers.
DELIVERY_FLOOR = 0.99
# The purchases-only baseline: measured once the updaters have caught up with the warm-up.
BASELINE_SETTLE, BASELINE_SECONDS = 3.0, 5.0
SOCKETS_PER_CLIENT = 1_000
SERVER_CORE, CLIENT_CORE = "0", 1

RECORD_PURCHASE = (
    "mutation Fanout($input: RecordPurchaseInput!) { recordPurchase(input: $input) "
    "{ __typename ... on RecordPurchaseSuccess { purchase { id purchasedAt } } } }"
)
REGISTER_CUSTOMER = (
    "mutation Register($input: RegisterCustomerInput!) { registerCustomer(input: $input) "
    "{ __typename ... on RegisterCustomerSuccess { customer { id } } } }"
)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on port {port} after {timeout}s")


class GraphQL:
    """A keep-alive HTTP connection posting GraphQL documents."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def execute(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables})
        self._conn.request("POST", "/graphql", body, {"content-type": "application/json"})
        document = json.loads(self._conn.getresponse().read())
        if "errors" in document:
            raise RuntimeError(f"GraphQL errors: {document['errors']}")
        data: dict[str, Any] = document["data"]
        return data

    def record(self, customer: str, sku: str) -> dict[str, Any]:
        purchase = {
            "customerId": customer,
            "storeId": "bench",
            "lines": [{"sku": sku, "quantity": 1}],
        }
        result: dict[str, Any] = self.execute(RECORD_PURCHASE, {"input": purchase})[
            "recordPurchase"
        ]
        if result["__typename"] != "RecordPurchaseSuccess":
            raise RuntimeError(f"recordPurchase failed: {result}")
        return result

    def close(self) -> None:
        self._conn.close()


class Driver:
    """Records one purchase a second per customer, the customers' purchases spread evenly over
    each second. Each customer has its own thread and connection on a fixed schedule, so a slow
    mutation delays neither the other customers' purchases nor this customer's next one."""

    def __init__(self, port: int, customers: list[str], sku: str) -> None:
        self._port = port
        self._sku = sku
        self._halt = threading.Event()
        self._start = time.monotonic() + 0.1
        self.round_trips: list[float] = []
        self.recorded: list[tuple[str, float]] = []
        self.late: list[str] = []
        self.failure: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._run, args=(c, i / len(customers)), daemon=True)
            for i, c in enumerate(customers)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, customer: str, offset: float) -> None:
        client = GraphQL(self._port)
        due = self._start + offset
        try:
            while not self._halt.wait(max(0.0, due - time.monotonic())):
                began = time.monotonic()
                purchase = client.record(customer, self._sku)["purchase"]
                self.round_trips.append(time.monotonic() - began)
                at = datetime.fromisoformat(purchase["purchasedAt"]).timestamp()
                self.recorded.append((customer, at))
                due += 1.0
                if due < time.monotonic():
                    self.late.append(customer)
                    due = time.monotonic()
        except BaseException as e:  # reported by the main thread
            self.failure = e
        finally:
            client.close()

    def messages_between(self, start: float, end: float, subscribers: Counter[str]) -> int:
        """How many messages the purchases made in [start, end) owe the subscribers."""
        return sum(subscribers[c] for c, at in list(self.recorded) if start <= at < end)

    def stop(self) -> None:
        self._halt.set()
        for thread in self._threads:
            thread.join(30)


def subscribers_per_customer(customers: list[str], n: int) -> Counter[str]:
    """Subscriber ``i`` follows customer ``i mod K`` (see fanout_clients.py)."""
    return Counter(customers[i % len(customers)] for i in range(n))


@dataclass
class Figures:
    subscribers: int
    delivered: float
    share: float
    p50: float
    p99: float
    worst: float
    memory_per_connection: float
    cpu: float
    errors: dict[str, int]
    open_sockets: int
    idle_cpu: float = 0.0
    """The server's CPU share with the same events and no subscriber."""

    def line(self, name: str) -> str:
        errors = sum(self.errors.values())
        return (
            f"{name:6s} {self.subscribers:6,d} subscribers  {self.delivered:8,.0f} msg/s "
            f"({self.share:6.1%} of those sent)  p50 {self.p50 * 1e3:7.1f} ms  "
            f"p99 {self.p99 * 1e3:7.1f} ms  max {self.worst * 1e3:7.1f} ms  "
            f"{self.memory_per_connection / 1024:6.1f} KiB/connection  server CPU "
            f"{self.cpu:4.0%}  open {self.open_sockets:,}  errors {errors}"
        ) + (
            f"\n{'':6s} server CPU {self.idle_cpu:.0%} with no subscriber: fan-out "
            f"{1e6 * (self.cpu - self.idle_cpu) / self.delivered:.0f} CPU us/message"
        )


class Clients:
    """The subscriber processes for one measurement, and the lines they report."""

    def __init__(self, url: str, customers: list[str], n: int) -> None:
        self._lines: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue()
        self._reports: dict[int, dict[str, Any]] = {}
        self.procs: list[subprocess.Popen[str]] = []
        script = str(HERE / "fanout_clients.py")
        for index in range(math.ceil(n / SOCKETS_PER_CLIENT)):
            count = min(SOCKETS_PER_CLIENT, n - index * SOCKETS_PER_CLIENT)
            proc = subprocess.Popen(
                [sys.executable, script, url, "--customers", ",".join(customers),
                 "--sockets", str(count), "--first-index", str(index * SOCKETS_PER_CLIENT)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(index, proc), daemon=True).start()

    def _read(self, index: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._lines.put((index, json.loads(line)))
        self._lines.put((index, {"exited": proc.wait()}))

    def wait_all(self, key: str, timeout: float) -> list[dict[str, Any]]:
        """Wait until every process reported ``key``; returns those reports in process order.
        Reports read while waiting for an earlier key are kept for the later ones."""
        progress: dict[int, str] = {}
        deadline = time.monotonic() + timeout
        while any(key not in self._reports.get(i, {}) for i in range(len(self.procs))):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SystemExit(f"clients not {key} after {timeout:.0f}s: {progress}")
            try:
                index, message = self._lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if "progress" in message:
                progress[index] = message["progress"]
                continue
            reports = self._reports.setdefault(index, {})
            if "exited" in message and key not in reports:
                raise SystemExit(f"client {index} exited ({message['exited']}) before {key}")
            reports.update(message)
        return [self._reports[i] for i in range(len(self.procs))]

    def window(self, start: float, end: float) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(f"WINDOW {start} {end}\n")
            proc.stdin.flush()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def measure(
    pid: int,
    url: str,
    customers: list[str],
    n: int,
    seconds: float,
    rss_before: int,
    expected: Callable[[float, float], int],
) -> Figures:
    """Connect N subscribers, wait until each has received an event, then measure the events
    made in a window of ``seconds``; ``expected(start, end)`` says how many messages the events
    made in [start, end) owe the subscribers."""
    connect_timeout = 60 + n / 50
    started = time.monotonic()
    clients = Clients(url, customers, n)
    try:
        clients.wait_all("subscribed", connect_timeout)
        subscribed = time.monotonic() - started
        clients.wait_all("live", 30)
        print(f"  {n:,} sockets subscribed in {subscribed:.1f}s, all live after "
              f"{time.monotonic() - started:.1f}s", flush=True)  # fmt: skip
        start = time.time() + 1.0
        end = start + seconds
        clients.window(start, end)
        time.sleep(max(0.0, start - time.time()))
        cpu_before = cpu_seconds(pid)
        rss = 0
        while time.time() < end:
            rss = max(rss, rss_bytes(pid))
            time.sleep(0.25)
        cpu = (cpu_seconds(pid) - cpu_before) / seconds
        results = clients.wait_all("latencies", seconds + 60)
        owed = expected(start, end)
    finally:
        clients.stop()
    latencies = sorted(x for r in results for x in r["latencies"])
    errors: dict[str, int] = {}
    for r in results:
        for message, count in r["errors"].items():
            errors[message] = errors.get(message, 0) + count
    if not latencies:
        raise SystemExit(f"no event received inside the window; errors: {errors}")
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return Figures(
        subscribers=n,
        delivered=len(latencies) / seconds,
        share=len(latencies) / max(owed, 1),
        p50=quantiles[49],
        p99=quantiles[98],
        worst=latencies[-1],
        memory_per_connection=(rss - rss_before) / n,
        cpu=cpu,
        errors=errors,
        open_sockets=sum(r["open"] for r in results),
    )


# Read before main() pins this process (and what it starts) to the clients' core.
SPLIT_CORES = len(os.sched_getaffinity(0)) > 1


def pinned(cmd: list[str]) -> list[str]:
    return ["taskset", "-c", SERVER_CORE, *cmd] if SPLIT_CORES else cmd


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run_omnix(
    env: dict[str, str], customers: list[str], sku: str, n: int, seconds: float
) -> Figures:
    port = free_port()
    # The server's log (clients leaving all at once are logged one by one) goes to a file.
    server_log = Path(env["OMNIX_DATA_DIR"], f"serve-{n}.log").open("wb")  # noqa: SIM115
    server = subprocess.Popen(
        pinned([sys.executable, "-m", "schema.cli", "serve", "--host", "127.0.0.1",
                "--port", str(port)]),
        env=env, cwd=ROOT, stdout=server_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    driver = None
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", server)
        warm = GraphQL(port)
        for customer in customers:
            warm.record(customer, sku)
        warm.close()
        time.sleep(1.0)
        rss_before = rss_bytes(server.pid)
        driver = Driver(port, customers, sku)
        # The server's CPU for the purchases alone (store, event log, relay, the updaters that
        # follow the log), before any subscriber connects: the rest is the fan-out's.
        time.sleep(BASELINE_SETTLE)
        before = cpu_seconds(server.pid)
        time.sleep(BASELINE_SECONDS)
        idle_cpu = (cpu_seconds(server.pid) - before) / BASELINE_SECONDS
        owed = subscribers_per_customer(customers, n)
        figures = measure(
            server.pid,
            f"ws://127.0.0.1:{port}/graphql",
            customers,
            n,
            seconds,
            rss_before,
            lambda start, end: driver.messages_between(start, end, owed),
        )
        figures.idle_cpu = idle_cpu
        if driver.failure is not None:
            raise SystemExit(f"the purchase driver failed: {driver.failure!r}")
        trips = sorted(driver.round_trips)
        print(f"  {len(trips):,} purchases recorded, round trip median "
              f"{statistics.median(trips) * 1e3:.1f} ms, max {trips[-1] * 1e3:.1f} ms; "
              f"{len(driver.late)} more than a second late", flush=True)  # fmt: skip
        return figures
    finally:
        try:
            if driver is not None:
                driver.stop()
        finally:
            stop(server)
            server_log.close()


def run_peer(customers: list[str], n: int, seconds: float) -> Figures:
    port = free_port()
    peer = subprocess.Popen(
        pinned([sys.executable, str(HERE / "fanout_peer.py"), str(port),
                "--customers", ",".join(customers)]),
    )  # fmt: skip
    try:
        wait_port(port, peer)
        time.sleep(0.5)
        rss_before = rss_bytes(peer.pid)
        # The peer sends every customer's event once a second, on its own clock.
        return measure(
            peer.pid,
            f"ws://127.0.0.1:{port}/",
            customers,
            n,
            seconds,
            rss_before,
            lambda start, end: round(n * (end - start)),
        )
    finally:
        stop(peer)


def setup(env: dict[str, str], k: int) -> tuple[list[str], str]:
    """Seed the catalogue and register K customers; returns their ids and a sku."""
    subprocess.run(
        [sys.executable, "-m", "schema.cli", "seed", "--customers", "1"],
        check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "schema.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", server)
        client = GraphQL(port)
        sku = client.execute("{ products(first: 1) { nodes { sku } } }", {})["products"]["nodes"][
            0
        ]["sku"]
        customers = []
        for i in range(k):
            result = client.execute(
                REGISTER_CUSTOMER,
                {"input": {"name": f"Fanout {i}", "email": f"fanout-{i}@example.com"}},
            )["registerCustomer"]
            customers.append(result["customer"]["id"])
        client.close()
        return customers, sku
    finally:
        stop(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", default="1000,5000,10000")
    parser.add_argument("--customers", type=int, default=10, help="purchases a second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args()
    levels = [int(x) for x in args.subscribers.split(",")]

    # Servers and clients inherit the raised limit. The server holds one descriptor per
    # subscriber plus a few hundred of its own (database, listeners, pipes).
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    most = hard - 300
    if max(levels) > most:
        print(f"RLIMIT_NOFILE hard limit is {hard}: at most {most:,} subscribers here")
        levels = sorted({min(n, most) for n in levels})
    if SPLIT_CORES:
        os.sched_setaffinity(0, {CLIENT_CORE})
        print(f"server pinned to core {SERVER_CORE}; clients and driver on core {CLIENT_CORE}")

    failed = False
    with tempfile.TemporaryDirectory(prefix="omnix-fanout-") as tmp:
        env = {
            **os.environ,
            "OMNIX_DATA_DIR": tmp,
            "OMNIX_SEED_DEMO": "false",
            "OMNIX_LOG_LEVEL": "WARNING",
        }
        customers, sku = setup(env, args.customers)
        print(f"{len(customers)} customers, one purchase a second each; subscribers share them "
              f"evenly; {args.seconds:.0f}s measured per run")  # fmt: skip
        for n in levels:
            omnix = run_omnix(env, customers, sku, n, args.seconds)
            print(omnix.line("omnix"), flush=True)
            if not args.skip_peer:
                peer = run_peer(customers, n, args.seconds)
                print(peer.line("peer"), flush=True)
            if n >= BAR_SUBSCRIBERS:
                met = omnix.p99 <= BAR_P99 and omnix.share >= DELIVERY_FLOOR
                failed = failed or not met
                print(f"bar: {BAR_SUBSCRIBERS:,} subscribers with p99 at most "
                      f"{BAR_P99 * 1e3:.0f} ms and at least {DELIVERY_FLOOR:.0%} delivered: "
                      f"{'met' if met else 'MISSED'} (p99 {omnix.p99 * 1e3:.1f} ms, "
                      f"{omnix.share:.1%} delivered)", flush=True)  # fmt: skip
        if max(levels) < BAR_SUBSCRIBERS:
            print(
                f"bar: {BAR_SUBSCRIBERS:,} subscribers not measured (largest level {max(levels):,})"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
