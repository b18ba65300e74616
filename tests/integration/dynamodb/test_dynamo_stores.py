"""What the contracts cannot see: the tables after a refused write, the request path of a
retried purchase, the 400 KB item limit, the outbox's order and retention, vendor failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.dynamodb.client import DynamoClient
from adapters.dynamodb.config import DynamoConfig, DynamoConfigError
from adapters.dynamodb.items import MAX_ITEM_BYTES, OUTBOX_SHARDS
from adapters.dynamodb.outbox import DynamoOutbox
from adapters.dynamodb.stores import (
    DynamoCustomerStore,
    DynamoIdempotencyStore,
    DynamoProductStore,
    DynamoPurchaseStore,
)
from domain.clock import Clock
from domain.errors import ConflictError, StoreUnavailableError, ValidationError
from domain.events import customer_registered, purchase_recorded
from domain.ports import DuplicateRequestError
from domain.purchases import PurchaseLine
from domain.services.idempotency import Idempotency
from domain.services.purchases import LineRequest, PurchaseService
from tests.contracts.builders import T0, claim, customer, product, purchase


async def _items(dynamo: DynamoClient) -> dict[str, list[dict[str, Any]]]:
    """Every item of every table, raw."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for model in dynamo.tables.schemas:
        name = model.Meta.table_name
        answer = await dynamo.run(
            lambda name=name: dynamo.api.scan(TableName=name, ConsistentRead=True), what="scan"
        )
        tables[name] = answer["Items"]
    return tables


async def test_a_failed_condition_is_a_typed_error_and_leaves_every_table_as_it_was(
    dynamo: DynamoClient, purchase_store: DynamoPurchaseStore
) -> None:
    first = purchase("pur_1", "cus_1")
    await purchase_store.add(first, purchase_recorded(first), claim("key-1", "pur_1"))
    before = await _items(dynamo)
    # Another customer, another moment, a fresh claim: only the purchase-id guard collides.
    clash = purchase("pur_1", "cus_2", purchased_at=T0 + timedelta(days=1))

    with pytest.raises(ConflictError) as raised:
        await purchase_store.add(clash, purchase_recorded(clash), claim("key-2", "pur_1"))

    assert raised.value.code == "ID_TAKEN"
    assert await _items(dynamo) == before


async def test_a_taken_email_leaves_no_customer_claim_or_event_behind(
    dynamo: DynamoClient, customer_store: DynamoCustomerStore
) -> None:
    first = customer("cus_1", email="Same@Example.com")
    await customer_store.add(first, customer_registered(first), None)
    before = await _items(dynamo)
    second = customer("cus_2", email="same@example.COM")

    with pytest.raises(ConflictError) as raised:
        await customer_store.add(second, customer_registered(second), claim("k", "cus_2"))

    assert raised.value.code == "EMAIL_TAKEN"
    assert await _items(dynamo) == before


class _FixedClock(Clock):
    def now(self) -> datetime:
        return T0 + timedelta(days=1)


async def test_a_retried_purchase_with_the_same_key_writes_one_purchase(
    dynamo: DynamoClient,
    customer_store: DynamoCustomerStore,
    product_store: DynamoProductStore,
    purchase_store: DynamoPurchaseStore,
    idempotency_store: DynamoIdempotencyStore,
    outbox: DynamoOutbox,
) -> None:
    buyer = customer("cus_1")
    await customer_store.add(buyer, customer_registered(buyer), None)
    await product_store.upsert_many([product("MILK-1L")])
    service = PurchaseService(
        purchase_store,
        customer_store,
        product_store,
        Idempotency(idempotency_store),
        _FixedClock(),
    )

    async def record() -> str:
        recorded = await service.record(
            customer_id="cus_1", lines=[LineRequest("MILK-1L", 2)], idempotency_key="till-7-1042"
        )
        return recorded.id

    first, retried = await record(), await record()

    assert first == retried
    assert await purchase_store.count() == 1
    recorded = [e for e in await outbox.pending(limit=100) if e.type == "PurchaseRecorded"]
    assert len(recorded) == 1


async def test_an_oversized_basket_is_a_validation_error_and_nothing_is_written(
    dynamo: DynamoClient, purchase_store: DynamoPurchaseStore
) -> None:
    line = PurchaseLine("S" * 60, 1, 100, 0)
    lines = (line,) * (MAX_ITEM_BYTES // 60)
    huge = purchase("pur_big", "cus_1", lines=lines)
    before = await _items(dynamo)

    with pytest.raises(ValidationError) as raised:
        await purchase_store.add(huge, purchase_recorded(huge), claim("k", "pur_big"))
    with pytest.raises(ValidationError):
        await purchase_store.add_many([huge], [purchase_recorded(huge)])

    assert (raised.value.code, raised.value.field) == ("TOO_LARGE", "lines")
    assert await _items(dynamo) == before


async def test_a_basket_just_under_the_limit_is_stored(
    purchase_store: DynamoPurchaseStore,
) -> None:
    # Its event (lines spelled out with names) is the larger item: keep that one under 400 KB.
    lines = (PurchaseLine("S" * 40, 1, 100, 0),) * 3000
    big = purchase("pur_big", "cus_1", lines=lines)
    await purchase_store.add(big, purchase_recorded(big), None)
    assert await purchase_store.get("pur_big") == big


async def test_a_duplicate_claim_is_reported_with_the_existing_claim(
    purchase_store: DynamoPurchaseStore,
) -> None:
    first = purchase("pur_1", "cus_1")
    written = claim("key-1", "pur_1", scope="recordPurchase")
    await purchase_store.add(first, purchase_recorded(first), written)
    # The same purchase id too: the claim is what is reported.
    with pytest.raises(DuplicateRequestError) as raised:
        await purchase_store.add(first, purchase_recorded(first), written)
    assert raised.value.existing == written


async def test_outbox_gives_pending_events_oldest_first_across_shards_then_forgets_them(
    dynamo: DynamoClient, customer_store: DynamoCustomerStore, outbox: DynamoOutbox
) -> None:
    customers = [customer(f"cus_{i:02d}") for i in range(3 * OUTBOX_SHARDS)]
    events = [customer_registered(c) for c in customers]
    for c, event in zip(customers[:5], events[:5], strict=True):
        await customer_store.add(c, event, None)
    await customer_store.add_many(customers[5:], events[5:])

    pending = await outbox.pending(limit=100)
    assert [e.id for e in pending] == [e.id for e in events]
    assert [e.id for e in await outbox.pending(limit=3)] == [e.id for e in events[:3]]

    await outbox.mark_published([e.id for e in events[:10]] + ["evt_unknown"])

    assert [e.id for e in await outbox.pending(limit=100)] == [e.id for e in events[10:]]
    answer = await dynamo.run(
        lambda: dynamo.api.get_item(
            TableName=dynamo.tables.event.Meta.table_name,
            Key={"event_id": {"S": events[0].id}},
            ConsistentRead=True,
        ),
        what="read",
    )
    item = answer["Item"]
    assert "pending_shard" not in item
    expires = datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC)
    assert timedelta(days=6) < expires - datetime.now(UTC) < timedelta(days=8)
    unknown = await dynamo.run(
        lambda: dynamo.api.get_item(
            TableName=dynamo.tables.event.Meta.table_name, Key={"event_id": {"S": "evt_unknown"}}
        ),
        what="read",
    )
    assert "Item" not in unknown


async def test_bulk_import_twice_adds_nothing_the_second_time(
    purchase_store: DynamoPurchaseStore, outbox: DynamoOutbox
) -> None:
    batch = [purchase(f"pur_{i:03d}", f"cus_{i % 7}") for i in range(60)]

    assert await purchase_store.add_many(batch, [purchase_recorded(p) for p in batch]) == 60
    assert await purchase_store.add_many(batch, [purchase_recorded(p) for p in batch]) == 0
    assert await purchase_store.count() == 60
    assert len(await outbox.pending(limit=1000)) == 60


async def test_a_missing_table_is_unavailable_without_aws_text(aws_env: dict[str, str]) -> None:
    client = DynamoClient(DynamoConfig.from_url("dynamodb://?prefix=never-created-"))
    await client.open()
    try:
        with pytest.raises(StoreUnavailableError) as raised:
            await DynamoCustomerStore(client).get("cus_1")
        with pytest.raises(StoreUnavailableError):
            await client.ping()
    finally:
        await client.close()
    assert "omnix init" in raised.value.message
    assert "ResourceNotFound" not in raised.value.message


def test_store_url_settings_and_endpoint_override() -> None:
    env = {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://b:2"}
    config = DynamoConfig.from_url("dynamodb://?region=eu-west-1&prefix=omnix-&threads=4", env)
    assert (config.region, config.prefix, config.endpoint, config.threads) == (
        "eu-west-1",
        "omnix-",
        "http://b:2",
        4,
    )
    assert DynamoConfig.from_url("dynamodb://", {"AWS_REGION": "us-east-1"}).region == "us-east-1"
    for bad in (
        "dynamodb://",  # no region anywhere
        "dynamodb://?region=eu-west-1&colour=red",
        "dynamodb://?region=eu-west-1&prefix=bad prefix",
        "dynamodb://?region=eu-west-1&threads=0",
        "dynamodb://host/path?region=eu-west-1",
    ):
        with pytest.raises(DynamoConfigError):
            DynamoConfig.from_url(bad, {})
