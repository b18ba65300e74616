import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from schema.app import Container
from schema.auth import Authenticator
from schema.context import Services
from schema.http import graphql_endpoint
from schema.ratelimit import RateLimiter
from schema.schema import build_schema
from schema.settings import Settings, SettingsError
from subscriptions.hub import SubscriptionHub


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0, "callers have their own buckets"
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0
    clock.now += 60
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0], "refills to the burst only"
    assert limiter.acquire("a") > 0


def test_memory_is_bounded_by_forgetting_the_longest_idle_caller() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, max_callers=2, clock=clock)
    limiter.acquire("a")
    limiter.acquire("b")
    limiter.acquire("c")
    assert limiter.acquire("a") == 0.0, "a was forgotten, so it starts with a full bucket"


def test_settings() -> None:
    assert Settings.from_env({}).rate_limit == 0
    settings = Settings.from_env({"OMNIX_RATE_LIMIT": "50"})
    assert (settings.rate_limit, settings.burst) == (50, 100)
    assert Settings.from_env({"OMNIX_RATE_LIMIT": "5", "OMNIX_RATE_BURST": "7"}).burst == 7
    with pytest.raises(SettingsError):
        Settings.from_env({"OMNIX_RATE_LIMIT": "fast"})


async def test_over_the_limit_is_429_with_retry_after(container: Container) -> None:
    services = Services(
        container.customers,
        container.purchases,
        container.catalogue,
        SubscriptionHub(container.bus),
    )
    endpoint = graphql_endpoint(
        build_schema(), Authenticator(Settings()), None, limiter=RateLimiter(rate=0.5, burst=2)
    )
    app = Starlette(routes=[Route("/graphql", endpoint, methods=["GET", "POST"])])
    app.state.services = services
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://omnix") as client:
        statuses = []
        for _ in range(3):
            response = await client.post(
                "/graphql", json={"query": "{ products { nodes { sku } } }"}
            )
            statuses.append(response.status_code)
    assert statuses == [200, 200, 429]
    assert response.headers["retry-after"] == "2"
    assert "rate limit" in response.json()["errors"][0]["message"]
