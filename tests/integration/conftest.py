"""Integration tier: each production adapter against a real server, started here.

``redis`` and ``moto`` are session-scoped (one server each per run); tests isolate themselves by
key prefix, table prefix or stream name. ``aws_env`` points boto3/aioboto3/pynamodb at moto for
one test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import ServerProcess, aws_environment, moto_server, redis_server


@pytest.fixture(scope="session")
def redis() -> Iterator[ServerProcess]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def moto() -> Iterator[ServerProcess]:
    with moto_server() as server:
        yield server


@pytest.fixture
def aws_env(moto: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = aws_environment(moto.url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
