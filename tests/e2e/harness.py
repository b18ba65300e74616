"""Drivers for the end-to-end tests: the real app in a subprocess, and the Node clients.

``serve`` starts ``omnix serve`` on a free loopback port with its own data directory and waits for
``/readyz``; ``RunningApp`` talks to it over HTTP. ``NodeRunner`` runs the scripts in ``node/``
(the graphql-ws client and the graphql-http audit). Nothing here skips: a server that does not
come up, or missing ``node_modules``, fails with the reason and the server's log.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_SCRIPTS = Path(__file__).resolve().parent / "node"
NODE_MODULES = REPO_ROOT / "node_modules"
NODE_PACKAGES = ("graphql", "graphql-http", "graphql-ws", "ws")

READY_TIMEOUT = 30.0
SEED_TIMEOUT = 180.0
STOP_TIMEOUT = 10.0
SEEDED_CUSTOMERS = 20
LOG_TAIL_CHARS = 12_000

GRAPHQL_RESPONSE = "application/graphql-response+json"


def omnix_command(*args: str) -> list[str]:
    """The installed ``omnix`` console script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("omnix")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "schema.cli", *args]


def app_environment(data_dir: Path, **overrides: str) -> dict[str, str]:
    """The process environment minus the developer's own OMNIX_* settings, plus test settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIX_")}
    env.update(
        OMNIX_DATA_DIR=str(data_dir),
        OMNIX_ENV="test",
        OMNIX_AUTH="dev",
        OMNIX_SEED_DEMO="false",
        OMNIX_HOST="127.0.0.1",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no output)"
    if len(text) > LOG_TAIL_CHARS:
        text = "...\n" + text[-LOG_TAIL_CHARS:]
    return text or "(no output)"


# --- GraphQL operations ---

REGISTER_CUSTOMER = """
mutation RegisterCustomer($input: RegisterCustomerInput!, $key: String) {
  registerCustomer(input: $input, idempotencyKey: $key) {
    __typename
    ... on RegisterCustomerSuccess {
      customer { id name email consent { analytics aiProfiling marketing } }
    }
    ... on ValidationError { code message field }
    ... on ConflictError { code message field }
  }
}
"""

RECORD_PURCHASE = """
mutation RecordPurchase($input: RecordPurchaseInput!, $key: String) {
  recordPurchase(input: $input, idempotencyKey: $key) {
    __typename
    ... on RecordPurchaseSuccess {
      purchase { id total storeId purchasedAt lines { sku quantity unitPrice discount } }
    }
    ... on ValidationError { code message field }
    ... on NotFoundError { code message field }
  }
}
"""


def unique_email(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


# --- the app under test ---


@dataclass
class RunningApp:
    """A live ``omnix serve`` process and an HTTP client pointed at it."""

    base_url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    http: httpx.Client = field(repr=False)

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    @property
    def ws_url(self) -> str:
        return "ws" + self.graphql_url.removeprefix("http")

    def log(self) -> str:
        """The server's combined stdout and stderr so far (tail)."""
        return log_tail(self.log_path)

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        if operation_name is not None:
            body["operationName"] = operation_name
        return self.http.post(
            self.graphql_url,
            json=body,
            headers={"accept": f"{GRAPHQL_RESPONSE}, application/json;q=0.9", **(headers or {})},
        )

    def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
    ) -> dict[str, Any]:
        """POST an operation that must succeed; returns ``data`` or fails with the whole answer."""
        response = self.post(query, variables, operation_name)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or body.get("errors"):
            pytest.fail(
                f"GraphQL request failed: HTTP {response.status_code}\n"
                f"query: {query}\nvariables: {json.dumps(variables)}\n"
                f"response: {response.text}\n--- server log ---\n{self.log()}",
                pytrace=False,
            )
        data = body.get("data")
        assert isinstance(data, dict), f"no data in {response.text}"
        return data

    # --- the operations most tests need ---

    def register_customer(
        self,
        *,
        name: str = "E2E Customer",
        email: str | None = None,
        consent: dict[str, bool] | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        """``registerCustomer``: the union result (``__typename`` and its fields)."""
        customer_input: dict[str, Any] = {"name": name, "email": email or unique_email()}
        if consent is not None:
            customer_input["consent"] = consent
        data = self.execute(REGISTER_CUSTOMER, {"input": customer_input, "key": key})
        result: dict[str, Any] = data["registerCustomer"]
        return result

    def new_customer(self) -> str:
        """Register a fresh customer; returns its id."""
        result = self.register_customer()
        assert result["__typename"] == "RegisterCustomerSuccess", result
        return str(result["customer"]["id"])

    def record_purchase(
        self,
        customer_id: str,
        lines: list[dict[str, Any]],
        *,
        purchased_at: datetime | None = None,
        store_id: str | None = "e2e-store",
        key: str | None = None,
    ) -> dict[str, Any]:
        """``recordPurchase``: the union result. ``purchased_at`` defaults to an hour ago."""
        when = purchased_at or datetime.now(UTC) - timedelta(hours=1)
        purchase_input: dict[str, Any] = {
            "customerId": customer_id,
            "purchasedAt": when.isoformat(timespec="seconds"),
            "lines": lines,
        }
        if store_id is not None:
            purchase_input["storeId"] = store_id
        data = self.execute(RECORD_PURCHASE, {"input": purchase_input, "key": key})
        result: dict[str, Any] = data["recordPurchase"]
        return result

    def any_sku(self) -> str:
        """A sku from the catalogue (fails when the catalogue is empty)."""
        nodes = self.execute("query AnySku { products(first: 1) { nodes { sku } } }")["products"][
            "nodes"
        ]
        assert nodes, "the catalogue is empty: use the seeded_app fixture"
        return str(nodes[0]["sku"])


def eventually(check: Callable[[], Any], what: str, app: RunningApp, seconds: float = 60.0) -> Any:
    """Poll ``check`` every 250 ms until it returns something true, which is returned; fail
    with ``what`` and the server log after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"{what} within {seconds:.0f} s\n--- server log ---\n{app.log()}")


def wait_until_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> int | None:
    """None once ``/readyz`` answers 200, or the exit code if the process ended first; fails
    with the server's log when neither happens within READY_TIMEOUT."""
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                return code
            try:
                response = client.get(f"{base_url}/readyz")
            except httpx.TransportError as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if response.status_code == 200:
                    return None
                last = f"HTTP {response.status_code}: {response.text[:500]}"
            time.sleep(0.1)
    pytest.fail(
        f"omnix serve was not ready within {READY_TIMEOUT:.0f}s at {base_url}/readyz "
        f"(last: {last})\n--- server log ---\n{log_tail(log_path)}",
        pytrace=False,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(data_dir: Path, log_path: Path, **env: str) -> Iterator[RunningApp]:
    """Run ``omnix serve`` on a free port until ``/readyz`` answers 200; yields the driver and
    stops the server (SIGTERM, then SIGKILL after 10 s) when the generator closes."""
    for attempt in range(3):
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        command = omnix_command("serve", "--host", "127.0.0.1", "--port", str(port))
        with log_path.open("ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=app_environment(data_dir, OMNIX_PORT=str(port), **env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            exit_code = wait_until_ready(process, base_url, log_path)
        except BaseException:
            stop(process)
            raise
        if exit_code is not None:
            output = log_tail(log_path)
            if "address already in use" in output.lower().rsplit("$ ", 1)[-1] and attempt < 2:
                continue  # another process took the port between free_port() and the bind
            pytest.fail(
                f"omnix serve exited with code {exit_code} before it was ready\n"
                f"command: {' '.join(command)}\n--- server log ---\n{output}",
                pytrace=False,
            )
        with httpx.Client(timeout=10.0) as http:
            try:
                yield RunningApp(base_url, data_dir, log_path, process, http)
            finally:
                stop(process)
        return


def seed(data_dir: Path, customers: int) -> None:
    """``omnix seed --customers N`` into ``data_dir``; fails loudly with its output."""
    command = omnix_command("seed", "--customers", str(customers))
    try:
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=app_environment(data_dir),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=SEED_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(command)} took more than {SEED_TIMEOUT:.0f}s: {e}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed with exit code {done.returncode}\n"
            f"--- stdout ---\n{done.stdout.decode(errors='replace')}\n"
            f"--- stderr ---\n{done.stderr.decode(errors='replace')}",
            pytrace=False,
        )


# --- Node clients ---


class NodeProcess:
    """A running Node script whose stdout is read as JSON lines, one at a time, with timeouts."""

    def __init__(self, process: subprocess.Popen[str], script: str) -> None:
        self.process = process
        self.script = script
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _pump_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def read(self, timeout: float = 10.0) -> Any:
        """The next JSON line; fails when the script ends or says nothing in ``timeout`` s."""
        message = self.try_read(timeout)
        if message is None:
            pytest.fail(
                f"{self.script} printed nothing for {timeout}s\n--- stderr ---\n{self.stderr}",
                pytrace=False,
            )
        return message

    def try_read(self, timeout: float) -> Any | None:
        """The next JSON line, or None if there is none within ``timeout`` s (still running)."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return None
        if line is None:
            self.stop()
            pytest.fail(
                f"{self.script} exited with code {self.process.returncode} before printing the "
                f"expected line\n--- stderr ---\n{self.stderr}",
                pytrace=False,
            )
        try:
            return json.loads(line)
        except ValueError:
            pytest.fail(f"{self.script} printed a line that is not JSON: {line!r}", pytrace=False)

    def wait(self, timeout: float = 30.0) -> list[Any]:
        """Wait for the script to exit 0; returns the JSON lines it printed that were not read."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"{self.script} did not finish in {timeout}s\n{self.stderr}", pytrace=False)
        self.stop()
        rest: list[Any] = []
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is not None and line.strip():
                rest.append(json.loads(line))
        if self.process.returncode != 0:
            pytest.fail(
                f"{self.script} exited with code {self.process.returncode}\n"
                f"--- stdout (unread) ---\n{rest}\n--- stderr ---\n{self.stderr}",
                pytrace=False,
            )
        return rest

    def kill(self) -> None:
        """End the client abruptly (SIGKILL, so no close frame), as a crashed client would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for reader in self._readers:
            reader.join(timeout=STOP_TIMEOUT)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class NodeRunner:
    """Runs scripts from tests/e2e/node with the repository's node_modules."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._running: list[NodeProcess] = []

    def _command(self, script: str, args: Sequence[str]) -> list[str]:
        path = NODE_SCRIPTS / script
        if not path.is_file():
            pytest.fail(f"no Node script {path}", pytrace=False)
        return [self.node, str(path), *args]

    def __call__(self, script: str, *args: str, timeout: float = 120.0) -> Any:
        """Run ``script`` to completion; it must exit 0 and print one JSON document."""
        command = self._command(script, args)
        try:
            done = subprocess.run(
                command,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"{script} did not finish in {timeout}s: {e}", pytrace=False)
        if done.returncode != 0:
            pytest.fail(
                f"{script} exited with code {done.returncode}\n"
                f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}",
                pytrace=False,
            )
        try:
            return json.loads(done.stdout)
        except ValueError:
            pytest.fail(
                f"{script} did not print JSON\n--- stdout ---\n{done.stdout}\n"
                f"--- stderr ---\n{done.stderr}",
                pytrace=False,
            )

    def spawn(self, script: str, *args: str) -> NodeProcess:
        """Start ``script`` and read its JSON lines as they come; stopped at session end."""
        process = subprocess.Popen(
            self._command(script, args),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        running = NodeProcess(process, script)
        self._running.append(running)
        return running

    def stop_all(self) -> None:
        for running in self._running:
            running.stop()


def find_node() -> str:
    """The ``node`` binary, after checking that ``npm ci`` has installed the clients."""
    binary = shutil.which("node")
    if binary is None:
        pytest.fail("`node` is not on PATH: the e2e tests need Node.js 20+", pytrace=False)
    missing = [p for p in NODE_PACKAGES if not (NODE_MODULES / p / "package.json").is_file()]
    if missing:
        pytest.fail(
            f"node_modules lacks {', '.join(missing)}: run `npm ci` in {REPO_ROOT} "
            "(`make test` does it for you)",
            pytrace=False,
        )
    return binary
