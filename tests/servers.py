"""Private servers the integration and e2e tiers need, started as subprocesses on free ports.

``redis-server`` comes from the machine (Debian's package); ``moto_server`` from the dev extras
(``moto[server]``) and speaks DynamoDB and Kinesis on one port. Nothing here skips: a server that
is missing or does not answer fails the test run with the reason and the server's output.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class ServerProcess:
    """A server subprocess on ``port``; ``stop``/``start`` restart it on the same port (for
    fault tests: a Redis that goes away and comes back)."""

    name: str
    command: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self) -> None:
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"{self.name} exited with {self.process.returncode} while starting "
                    f"({' '.join(self.command)}):\n{self.log_tail()}",
                    pytrace=False,
                )
            if _answers(self.port):
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail(
            f"{self.name} did not listen on port {self.port} within {START_TIMEOUT:.0f} s:\n"
            f"{self.log_tail()}",
            pytrace=False,
        )

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGKILL with ``kill``, as a crash would) and wait for it to go."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)


def _require(binary: str, hint: str) -> str:
    path = shutil.which(binary) or (
        str(Path(sys.executable).with_name(binary))
        if Path(sys.executable).with_name(binary).exists()
        else None
    )
    if path is None:
        pytest.fail(f"{binary} not found: {hint}", pytrace=False)
    return path


@contextmanager
def redis_server() -> Iterator[ServerProcess]:
    """A throwaway ``redis-server`` that keeps nothing on disk."""
    binary = _require(
        "redis-server", "install Redis (Debian: apt-get install redis-server); tests need it"
    )
    with tempfile.TemporaryDirectory(prefix="omnix-redis-") as workdir:
        port = free_port()
        server = ServerProcess(
            name="redis-server",
            command=[
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", workdir,
                "--protected-mode", "yes",
            ],
            port=port,
            log_path=Path(workdir) / "redis.log",
        )  # fmt: skip
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def moto_server() -> Iterator[ServerProcess]:
    """``moto_server`` (DynamoDB, Kinesis and the rest of the AWS mock) on a free port."""
    binary = _require("moto_server", "install the dev extras: pip install -e '.[dev]'")
    with tempfile.TemporaryDirectory(prefix="omnix-moto-") as workdir:
        port = free_port()
        server = ServerProcess(
            name="moto_server",
            command=[binary, "-H", "127.0.0.1", "-p", str(port)],
            port=port,
            log_path=Path(workdir) / "moto.log",
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


def aws_environment(endpoint: str) -> dict[str, str]:
    """Credentials and endpoint overrides pointing every AWS client at a local server."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_ENDPOINT_URL_KINESIS": endpoint,
    }
