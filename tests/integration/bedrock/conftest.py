"""A session-scoped local Converse server and the environment pointing aioboto3 at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.bedrock.server import ConverseServer


@pytest.fixture(scope="session")
def converse_server() -> Iterator[ConverseServer]:
    with ConverseServer().running() as server:
        yield server


@pytest.fixture
def bedrock(converse_server: ConverseServer, monkeypatch: pytest.MonkeyPatch) -> ConverseServer:
    """The server, reset, with dummy credentials and the endpoint override in the environment."""
    converse_server.reset()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": converse_server.url,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return converse_server
