"""GraphQL throughput against a plain Starlette peer, alternating in one run.

The typical dashboard query — a customer with the last 20 purchases and their lines — is executed
for real (no response cache) by OMNIX on the embedded store, and compared with a plain Starlette
endpoint that returns the same response bytes with no per-request work. A second OMNIX server
with OMNIX_COMPILED_QUERIES=false runs the same query on strawberry's own executor, so the
compiled path's gain is measured in the same run. Every server runs under uvicorn with one worker
pinned to one core; wrk drives them from the other core. Rounds alternate between the servers so
drift on the machine affects all alike; medians and per-round ratios are reported. Each
server's CPU time per request (user + system, all threads, from /proc) is reported beside its
rate: on a machine shared with other work it varies far less than requests/s.

    make bench            # or: .venv/bin/python tests/bench/bench_graphql.py [--rounds 5 --seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Issue 2's bar for now; the project's bar (DESIGN §4) is 0.5.
BAR = 0.08
QUERY = """
query Dashboard($id: ID!) {
  customer(id: $id) {
    id
    createdAt
    householdSize
    purchases(first: 20) {
      nodes {
        id
        purchasedAt
        storeId
        total
        lines { sku quantity unitPrice discount amount }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} not ready after {timeout}s")


def post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(
        url, data=body, headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return bytes(r.read())


def uvicorn(app: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [
        "taskset", "-c", "0",
        sys.executable, "-m", "uvicorn", *app,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(cmd, env={**os.environ, **env})


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads included (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, lua: Path, seconds: int, connections: int, pid: int) -> tuple[float, float, str]:
    """Requests/s, the server's CPU microseconds per request, and the p99 latency."""
    before = cpu_seconds(pid)
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(lua), url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    used = cpu_seconds(pid) - before
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", out)
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx responses during the run:\n{out}")
    return rate, 1e6 * used / max(count, 1), p99.group(1) if p99 else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--customers", type=int, default=60)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="omnix-bench-") as tmp:
        env = {"OMNIX_DATA_DIR": tmp, "OMNIX_SEED_DEMO": "false", "OMNIX_LOG_LEVEL": "WARNING"}
        subprocess.run(
            [sys.executable, "-m", "schema.cli", "seed", "--customers", str(args.customers)],
            check=True, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        omnix_port, plain_port, slow_port = free_port(), free_port(), free_port()
        omnix = uvicorn(["--factory", "schema.app:app_from_env"], omnix_port, env)
        slow = uvicorn(
            ["--factory", "schema.app:app_from_env"],
            slow_port,
            {**env, "OMNIX_COMPILED_QUERIES": "false"},
        )
        plain = None
        compiled = 0.0
        try:
            wait_ready(f"http://127.0.0.1:{omnix_port}/readyz", omnix)
            wait_ready(f"http://127.0.0.1:{slow_port}/readyz", slow)
            omnix_url = f"http://127.0.0.1:{omnix_port}/graphql"
            listing = json.loads(post(omnix_url, json.dumps({
                "query": "{ customers(first: 100) { nodes { id purchases(first: 20) "
                         "{ nodes { id } } } } }"}).encode()))  # fmt: skip
            customer = next(
                c["id"]
                for c in listing["data"]["customers"]["nodes"]
                if len(c["purchases"]["nodes"]) == 20
            )
            body = json.dumps({"query": QUERY, "variables": {"id": customer}}).encode()
            expected = post(omnix_url, body)
            document = json.loads(expected)
            assert "errors" not in document, document
            lines = sum(len(p["lines"]) for p in document["data"]["customer"]["purchases"]["nodes"])
            body_file = Path(tmp, "response.json")
            body_file.write_bytes(expected)
            lua = Path(tmp, "post.lua")
            lua.write_text(
                'wrk.method = "POST"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = {json.dumps(body.decode())}\n"
            )
            plain = uvicorn(
                ["--app-dir", str(HERE), "plain_app:app"],
                plain_port,
                {"OMNIX_BENCH_BODY": str(body_file)},
            )
            wait_ready(f"http://127.0.0.1:{plain_port}/healthz", plain, 30)
            plain_url = f"http://127.0.0.1:{plain_port}/graphql"
            slow_url = f"http://127.0.0.1:{slow_port}/graphql"
            assert post(plain_url, body) == expected
            assert post(slow_url, body) == expected, "both execution paths must answer alike"

            print(f"query: customer {customer} with 20 purchases, {lines} lines, "
                  f"{len(expected)} response bytes")  # fmt: skip
            servers = (
                ("omnix", omnix_url, omnix.pid),
                ("strawberry", slow_url, slow.pid),
                ("plain", plain_url, plain.pid),
            )
            for _, url, pid in servers:
                wrk(url, lua, 2, args.connections, pid)  # warm-up
            rates: dict[str, list[float]] = {name: [] for name, _, _ in servers}
            cpu: dict[str, list[float]] = {name: [] for name, _, _ in servers}
            for n in range(args.rounds):
                for name, url, pid in servers:
                    rate, micros, p99 = wrk(url, lua, args.seconds, args.connections, pid)
                    rates[name].append(rate)
                    cpu[name].append(micros)
                    print(f"round {n + 1} {name:10s} {rate:9.1f} req/s  "
                          f"{micros:7.1f} CPU us/request  p99 {p99}")  # fmt: skip
            plain_rate = statistics.median(rates["plain"])
            compiled = statistics.median(
                o / p for o, p in zip(rates["omnix"], rates["plain"], strict=True)
            )
            for name in ("omnix", "strawberry"):
                rate = statistics.median(rates[name])
                paired = [o / p for o, p in zip(rates[name], rates["plain"], strict=True)]
                label = "compiled path" if name == "omnix" else "strawberry executor"
                print(f"{label}: median {rate:.1f} req/s against plain Starlette "
                      f"{plain_rate:.1f} req/s, ratio {rate / plain_rate:.3f}; per round "
                      + ", ".join(f"{r:.3f}" for r in paired)
                      + f" (median {statistics.median(paired):.3f})")  # fmt: skip
            # CPU time per request counts the work each server does, whatever else the machine
            # runs: its ratio is the steadier figure on a shared machine.
            plain_cpu = statistics.median(cpu["plain"])
            for name in ("omnix", "strawberry"):
                micros = statistics.median(cpu[name])
                print(f"{name}: median {micros:.1f} CPU us/request against plain Starlette "
                      f"{plain_cpu:.1f}, ratio {plain_cpu / micros:.3f}")  # fmt: skip
            # The bar counts the lower of the two ratios: a busy machine flatters the requests/s
            # one (the peer's rate waits on its neighbours, not on its core) far more.
            compiled = min(compiled, plain_cpu / statistics.median(cpu["omnix"]))
            verdict = "met" if compiled >= BAR else "MISSED"
            print(
                f"bar: compiled path at least {BAR} of plain Starlette (the lower of the paired "
                f"requests/s and the CPU ratio): {verdict} ({compiled:.3f})"
            )
        finally:
            for proc in (omnix, slow, plain):
                if proc is not None:
                    proc.terminate()
                    proc.wait(10)
    return 0 if compiled >= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
