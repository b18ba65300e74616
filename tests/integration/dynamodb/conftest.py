"""DynamoDB fixtures: fresh tables (made by ``omnix init``'s own code) under a unique prefix per
test, on the session's moto_server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from adapters.dynamodb.ai_usage import DynamoAiUsageStore
from adapters.dynamodb.client import DynamoClient
from adapters.dynamodb.config import DynamoConfig
from adapters.dynamodb.jobs import DynamoJobStore
from adapters.dynamodb.outbox import DynamoOutbox
from adapters.dynamodb.predictions import DynamoPredictionStore
from adapters.dynamodb.stores import (
    DynamoCustomerStore,
    DynamoIdempotencyStore,
    DynamoProductStore,
    DynamoPurchaseStore,
)
from adapters.dynamodb.tables import TableSetup
from domain.events import LoggedEvent
from domain.ports import Outbox


def store_url(prefix: str) -> str:
    return f"dynamodb://?prefix={prefix}&timeout=10"


@pytest.fixture
def table_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}-"


@pytest.fixture
async def dynamo(aws_env: dict[str, str], table_prefix: str) -> AsyncIterator[DynamoClient]:
    client = DynamoClient(DynamoConfig.from_url(store_url(table_prefix)))
    await client.open()
    await TableSetup(client).ensure()
    yield client
    for model in client.tables.schemas:
        await client.run(
            lambda name=model.Meta.table_name: client.api.delete_table(TableName=name),
            what="delete table",
        )
    await client.close()


@pytest.fixture
def customer_store(dynamo: DynamoClient) -> DynamoCustomerStore:
    return DynamoCustomerStore(dynamo)


@pytest.fixture
def product_store(dynamo: DynamoClient) -> DynamoProductStore:
    return DynamoProductStore(dynamo)


@pytest.fixture
def purchase_store(dynamo: DynamoClient) -> DynamoPurchaseStore:
    return DynamoPurchaseStore(dynamo)


@pytest.fixture
def idempotency_store(dynamo: DynamoClient) -> DynamoIdempotencyStore:
    return DynamoIdempotencyStore(dynamo)


@pytest.fixture
def outbox(dynamo: DynamoClient) -> DynamoOutbox:
    return DynamoOutbox(dynamo)


class OutboxLog:
    """The store contracts check a store's events through an event log; a DynamoDB store
    writes them to its outbox, read here through the Outbox port: every event still pending,
    in the order written, numbered from 1."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def _all(self) -> list[LoggedEvent]:
        events = await self._outbox.pending(limit=100_000)
        return [LoggedEvent(position=i, event=e) for i, e in enumerate(events, start=1)]

    async def head(self) -> int:
        return len(await self._all())

    async def read(self, *, after: int, limit: int) -> list[LoggedEvent]:
        return (await self._all())[after : after + limit]


@pytest.fixture
def event_log(outbox: DynamoOutbox) -> OutboxLog:
    return OutboxLog(outbox)


@pytest.fixture
def prediction_store(dynamo: DynamoClient) -> DynamoPredictionStore:
    return DynamoPredictionStore(dynamo)


@pytest.fixture
def job_store(dynamo: DynamoClient) -> DynamoJobStore:
    return DynamoJobStore(dynamo)


@pytest.fixture
def ai_usage_store(dynamo: DynamoClient) -> DynamoAiUsageStore:
    return DynamoAiUsageStore(dynamo)
