"""Unexpected failures are masked with a request id that also names the log line; expected ones
keep their code. Checked on both execution paths (compiled queries and strawberry)."""

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from domain.errors import StoreUnavailableError
from domain.services.catalogue import CatalogueService
from domain.services.customers import CustomerService
from domain.services.idempotency import Idempotency
from domain.services.purchases import PurchaseService
from schema.app import Container
from schema.auth import Authenticator
from schema.context import Services
from schema.http import graphql_endpoint
from schema.schema import build_schema
from schema.settings import Settings
from subscriptions.hub import SubscriptionHub


class Failing:
    """A store whose every call fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise self._error

        return fail


def client_for(container: Container, error: Exception) -> httpx.AsyncClient:
    broken = Failing(error)
    idempotency = Idempotency(broken)  # type: ignore[arg-type]
    services = Services(
        customers=CustomerService(broken, idempotency, container.clock),  # type: ignore[arg-type]
        purchases=PurchaseService(broken, broken, broken, idempotency, container.clock),  # type: ignore[arg-type]
        catalogue=CatalogueService(broken),  # type: ignore[arg-type]
        hub=SubscriptionHub(container.bus),
    )
    endpoint = graphql_endpoint(build_schema(), Authenticator(Settings()), None)
    app = Starlette(routes=[Route("/graphql", endpoint, methods=["GET", "POST"])])
    app.state.services = services
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://omnix")


QUERY = "{ customers(first: 2) { nodes { id } } }"
MUTATION = 'mutation { setConsent(customerId: "cus_1", input: {}) { __typename } }'


@pytest.fixture
async def crashing(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(container, RuntimeError("secret table t_internal is corrupt")) as c:
        yield c


@pytest.mark.parametrize("document", [QUERY, MUTATION], ids=["compiled", "strawberry"])
async def test_unexpected_errors_are_masked_with_the_request_id(
    crashing: httpx.AsyncClient, document: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="omnix.api"):
        response = await crashing.post("/graphql", json={"query": document})
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    [error] = response.json()["errors"]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "INTERNAL", "requestId": request_id}
    assert "t_internal" not in response.text
    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    assert record.exc_info is not None
    assert "t_internal" in str(record.exc_info[1])


async def test_a_callers_request_id_is_kept(crashing: httpx.AsyncClient) -> None:
    response = await crashing.post(
        "/graphql", json={"query": QUERY}, headers={"x-request-id": "till-7-0042"}
    )
    assert response.headers["x-request-id"] == "till-7-0042"
    assert response.json()["errors"][0]["extensions"]["requestId"] == "till-7-0042"


@pytest.mark.parametrize("document", [QUERY, MUTATION], ids=["compiled", "strawberry"])
async def test_an_unavailable_store_says_retry(container: Container, document: str) -> None:
    async with client_for(container, StoreUnavailableError("db locked")) as client:
        response = await client.post("/graphql", json={"query": document})
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNAVAILABLE"
    assert "db locked" not in response.text


@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
        ({"content": b"query=x", "headers": {"content-type": "text/plain"}}, 415),
        (
            {
                "json": {"query": "{ customers { nodes { id } } }"},
                "headers": {"accept": "text/csv"},
            },
            406,
        ),
        (
            {
                "json": {"query": "{ nope }"},
                "headers": {"accept": "application/graphql-response+json"},
            },
            400,
        ),
        ({"json": {"query": "{ nope }"}, "headers": {"accept": "application/json"}}, 200),
        (
            {
                "json": {
                    "query": "query A { customers { nodes { id } } } query B { customers { nodes { id } } }"
                }
            },
            400,
        ),
        ({"json": {"query": "query A { customers { nodes { id } } }", "operationName": "Z"}}, 400),
        ({"json": [{"query": "{ customers { nodes { id } } }"}]}, 400),
        ({"json": {"query": "subscription { purchaseRecorded { id } }"}}, 400),
    ],
)
async def test_request_errors_get_their_status(
    container: Container, request_kwargs: dict[str, Any], status: int
) -> None:
    async with client_for(container, RuntimeError("unused")) as client:
        response = await client.post("/graphql", **request_kwargs)
    assert response.status_code == status, response.text
    assert response.json()["errors"]


async def test_get_runs_queries_but_never_mutations(container: Container) -> None:
    async with client_for(container, RuntimeError("unused")) as client:
        response = await client.get("/graphql", params={"query": MUTATION})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
