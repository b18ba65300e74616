"""The endpoint reads each header once from the ASGI scope: names are matched as ASGI sends them
(lowercase), the first of a repeated header wins as with Starlette's ``Headers.get``, and a
request without a usable ``X-Request-ID`` gets a fresh one."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from schema.app import Container
from schema.auth import Authenticator
from schema.context import Services
from schema.http import GRAPHQL_RESPONSE, graphql_endpoint, new_request_id
from schema.schema import build_schema
from schema.settings import Settings
from subscriptions.hub import SubscriptionHub

QUERY = b'{"query": "{ customers(first: 1) { nodes { id } } }"}'


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    services = Services(
        container.customers,
        container.purchases,
        container.catalogue,
        SubscriptionHub(container.bus),
    )
    endpoint = graphql_endpoint(build_schema(), Authenticator(Settings()), None)
    app = Starlette(routes=[Route("/graphql", endpoint, methods=["GET", "POST"])])
    app.state.services = services
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://omnix") as client:
        yield client


async def post(client: httpx.AsyncClient, headers: list[tuple[str, str]]) -> httpx.Response:
    return await client.post("/graphql", content=QUERY, headers=headers)


async def test_the_first_of_repeated_headers_wins(client: httpx.AsyncClient) -> None:
    response = await post(
        client,
        [
            ("Content-Type", "application/json"),
            ("X-Request-ID", "first-id"),
            ("X-Request-ID", "second-id"),
            ("Accept", GRAPHQL_RESPONSE),
            ("Accept", "text/plain"),
        ],
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "first-id"
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    assert response.json()["data"]["customers"]["nodes"]


async def test_names_match_whatever_case_the_client_sent(client: httpx.AsyncClient) -> None:
    response = await post(
        client, [("CONTENT-TYPE", "application/json"), ("x-REQUEST-id", "mixed-case")]
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "mixed-case"


@pytest.mark.parametrize("incoming", [None, "", "bad id with spaces", "x" * 65])
async def test_a_fresh_request_id_replaces_a_missing_or_unusable_one(
    client: httpx.AsyncClient, incoming: str | None
) -> None:
    headers = [("Content-Type", "application/json")]
    if incoming is not None:
        headers.append(("X-Request-ID", incoming))
    first = (await post(client, headers)).headers["x-request-id"]
    second = (await post(client, headers)).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{24}", first)
    assert first != second


def test_request_ids_do_not_repeat() -> None:
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 24 for i in ids)


async def test_missing_content_type_is_still_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", content=QUERY)
    assert response.status_code == 415
