"""recordPurchase throughput and latency: the AWS path against the embedded path, same run.

Two OMNIX servers run side by side: the embedded default (SQLite store and event log, in-process
bus) and the AWS path (OMNIX_STORE=dynamodb://, OMNIX_EVENTS=kinesis://, OMNIX_BUS=redis://)
against a private moto_server and redis-server, with ``omnix worker`` reading the stream into
Redis. Each API server is pinned to core 0; the load generator (closed loop, N concurrent
clients, each purchase with its own idempotency key) runs on core 1, where moto, Redis and the
worker also run. Rounds alternate between the paths. After the load, the AWS server's outbox
relay must have published every purchase to Kinesis; its PutRecords calls report the mean
batch fill (records per call, 500 at most).

    make bench BENCH=ingest            # or: .venv/bin/python tests/bench/bench_ingest.py --help
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.e2e.harness import app_environment  # noqa: E402
from tests.servers import aws_environment, free_port, moto_server, redis_server  # noqa: E402

OMNIX = str(Path(sys.executable).with_name("omnix"))
SKUS = [f"BEN-{n:03d}" for n in range(20)]
PRODUCTS = "sku,name,category,brand,price_tier,pack_size,unit,price\n" + "".join(
    f"{sku},Bench item {n},Pantry,Bench,standard,1,pc,{1 + n % 9}.49\n"
    for n, sku in enumerate(SKUS)
)
REGISTER = """mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) {
  __typename ... on RegisterCustomerSuccess { customer { id } } } }"""
RECORD = """mutation($input: RecordPurchaseInput!, $key: String) {
  recordPurchase(input: $input, idempotencyKey: $key) { __typename
    ... on RecordPurchaseSuccess { purchase { id } } } }"""


@dataclass
class Server:
    name: str
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    customers: list[str] = field(default_factory=list)


@dataclass
class Round:
    path: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    return app_environment(data_dir, OMNIX_LOG_LEVEL="WARNING", **extra)


def run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([OMNIX, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"omnix {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


@contextmanager
def server(name: str, root: Path, **extra: str) -> Iterator[Server]:
    data = root / name
    env = environment(data, **extra)
    products = root / "products.csv"
    products.write_text(PRODUCTS)
    if "OMNIX_STORE" in extra:
        run(["init"], env)
    run(["import", "--products", str(products)], env)
    port = free_port()
    log = root / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["taskset", "-c", "0", OMNIX, "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} server did not start:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield Server(name, url, env, process, log)
    finally:
        process.terminate()
        process.wait(30)


@contextmanager
def worker(env: dict[str, str], root: Path) -> Iterator[subprocess.Popen[bytes]]:
    with (root / "worker.log").open("wb") as out:
        process = subprocess.Popen([OMNIX, "worker"], env=env, stdout=out, stderr=out)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(30)


async def register(server: Server, count: int) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for n in range(count):
            body = {
                "query": REGISTER,
                "variables": {
                    "input": {"name": f"Bench {n}", "email": f"b{n}-{uuid.uuid4().hex[:6]}@ex.com"}
                },
            }
            data = (await http.post("/graphql", json=body)).json()["data"]["registerCustomer"]
            server.customers.append(data["customer"]["id"])


async def load(server: Server, seconds: float, clients: int, seed: int) -> Round:
    rng = random.Random(seed)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient, until: float) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            lines = [
                {"sku": rng.choice(SKUS), "quantity": rng.randint(1, 3)}
                for _ in range(rng.randint(1, 4))
            ]
            body = {
                "query": RECORD,
                "variables": {
                    "input": {"customerId": rng.choice(server.customers), "lines": lines},
                    "key": uuid.uuid4().hex,
                },
            }
            started = time.perf_counter()
            try:
                response = await http.post("/graphql", json=body)
                ok = response.status_code == 200 and (
                    response.json()["data"]["recordPurchase"]["__typename"]
                    == "RecordPurchaseSuccess"
                )
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += not ok

    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(client(http, until) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return Round(server.name, len(latencies), errors, elapsed, latencies)


def outbox_status(server: Server) -> dict[str, Any]:
    status: dict[str, Any] = httpx.get(f"{server.url}/statusz", timeout=5).json()["outbox"]
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per path (default 3)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per round (default 10)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--customers", type=int, default=200, help="customers per server")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})

    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="omnix-ingest-")))
        moto = stack.enter_context(moto_server())
        redis = stack.enter_context(redis_server())
        tag = uuid.uuid4().hex[:6]
        aws_env = {
            **aws_environment(moto.url),
            "OMNIX_STORE": f"dynamodb://?region=eu-west-1&prefix=bench-{tag}-",
            "OMNIX_EVENTS": f"kinesis://bench-{tag}?region=eu-west-1&shards=2",
            "OMNIX_BUS": f"redis://127.0.0.1:{redis.port}/0",
        }
        embedded = stack.enter_context(server("embedded", root))
        aws = stack.enter_context(server("aws", root, **aws_env))
        stack.enter_context(worker(aws.env, root))
        warm_up: dict[str, Round] = {}
        for target in (embedded, aws):
            asyncio.run(register(target, args.customers))
            warm_up[target.name] = asyncio.run(load(target, 2, args.clients, seed=0))

        rounds: list[Round] = []
        for n in range(args.rounds):
            for target in (embedded, aws) if n % 2 == 0 else (aws, embedded):
                result = asyncio.run(load(target, args.seconds, args.clients, seed=n))
                rounds.append(result)
                print(
                    f"round {n + 1} {target.name:8s} {result.throughput:7.1f} req/s  "
                    f"p50 {result.p(0.50):6.1f} ms  p99 {result.p(0.99):7.1f} ms  "
                    f"errors {result.errors}",
                    flush=True,
                )

        # Every event the AWS store wrote: registrations, then each accepted purchase.
        written = args.customers + sum(
            r.requests - r.errors for r in [warm_up["aws"], *rounds] if r.path == "aws"
        )
        load_ended = time.monotonic()
        while (status := outbox_status(aws))["relayed"] < written:
            if time.monotonic() > load_ended + 60:
                break
            time.sleep(0.2)
        drain = time.monotonic() - load_ended

    print()
    print(f"load: {args.clients} closed-loop clients on core 1, each API server on core 0; "
          f"{args.rounds} x {args.seconds:g} s rounds per path, alternating; 2-core machine, "
          "AWS services are moto_server (not AWS)")  # fmt: skip
    print(f"{'path':10s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
    for path in ("embedded", "aws"):
        mine = [r for r in rounds if r.path == path]
        merged = Round(path, sum(r.requests for r in mine), sum(r.errors for r in mine),
                       sum(r.seconds for r in mine), [x for r in mine for x in r.latencies])  # fmt: skip
        print(
            f"{path:10s} {statistics.median(r.throughput for r in mine):8.1f} "
            f"{merged.p(0.50):8.1f} {merged.p(0.99):8.1f} {merged.errors:7d}"
        )
    put = status.get("putRecords", {})
    print(
        f"\nAWS outbox relay: {status['relayed']} of {written} events written relayed to Kinesis "
        f"({drain:.1f} s after the load ended); PutRecords calls {put.get('calls')}, mean batch "
        f"fill {put.get('meanBatchFill')} records/call (max 500), records retried "
        f"{put.get('retriedRecords')}"
    )
    failed = sum(r.errors for r in rounds)
    if failed or status["relayed"] < written:
        print("FAILED: errors during the load or purchases not relayed to Kinesis")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
