import asyncio
from datetime import timedelta

import pytest

from domain.errors import ConflictError, NotFoundError, ValidationError
from domain.services.purchases import LineRequest
from schema.app import Container
from tests.unit.conftest import NOW


async def snapshot(c: Container) -> tuple[int, int]:
    return await c.purchase_store.count(), await c.events.head()


async def test_a_purchase_is_recorded_with_catalogue_prices_and_its_event(
    container: Container,
) -> None:
    before_events = await container.events.head()
    purchase = await container.purchases.record(
        customer_id="cus_1",
        lines=[LineRequest("MILK-1L", 2), LineRequest("COFFEE-P", 1, unit_price=799, discount=100)],
        store_id="store-1",
    )
    assert purchase.total == 2 * 119 + 799 - 100
    assert purchase.purchased_at == NOW
    logged = await container.events.read(after=before_events, limit=10)
    assert [e.event.type for e in logged] == ["PurchaseRecorded"]
    assert logged[0].event.payload["purchase"]["id"] == purchase.id
    assert await container.purchases.require(purchase.id) == purchase


@pytest.mark.parametrize(
    ("kwargs", "error", "code", "field"),
    [
        ({"lines": []}, ValidationError, "EMPTY_BASKET", "lines"),
        ({"lines": [LineRequest("MILK-1L", 1)] * 201}, ValidationError, "BASKET_TOO_LARGE", "lines"),
        ({"lines": [LineRequest("MILK-1L", 0)]}, ValidationError, "QUANTITY_TOO_SMALL", "lines[0].quantity"),
        ({"lines": [LineRequest("MILK-1L", 1, unit_price=-1)]}, ValidationError, "NEGATIVE_PRICE", "lines[0].unitPrice"),
        ({"lines": [LineRequest("MILK-1L", 1, discount=-5)]}, ValidationError, "NEGATIVE_DISCOUNT", "lines[0].discount"),
        ({"lines": [LineRequest("MILK-1L", 1, discount=500)]}, ValidationError, "DISCOUNT_TOO_LARGE", "lines[0].discount"),
        ({"lines": [LineRequest("MILK-1L", 1)], "purchased_at": NOW + timedelta(hours=1)}, ValidationError, "PURCHASE_IN_FUTURE", "purchasedAt"),
        ({"lines": [LineRequest("MILK-1L", 1)], "purchased_at": NOW.replace(tzinfo=None)}, ValidationError, "MISSING_TIMEZONE", "purchasedAt"),
        ({"lines": [LineRequest("MILK-1L", 1)], "customer_id": "cus_404"}, NotFoundError, "NOT_FOUND", "customerId"),
        ({"lines": [LineRequest("MILK-1L", 1), LineRequest("NOPE", 1)]}, NotFoundError, "NOT_FOUND", "lines[1].sku"),
    ],
)  # fmt: skip
async def test_bad_input_gets_a_typed_error_and_writes_nothing(
    container: Container, kwargs: dict[str, object], error: type[Exception], code: str, field: str
) -> None:
    before = await snapshot(container)
    kwargs.setdefault("customer_id", "cus_1")
    with pytest.raises(error) as raised:
        await container.purchases.record(**kwargs)  # type: ignore[arg-type]
    assert raised.value.code == code  # type: ignore[attr-defined]
    assert raised.value.field == field  # type: ignore[attr-defined]
    assert await snapshot(container) == before


async def test_a_retry_with_the_same_key_returns_the_first_purchase(container: Container) -> None:
    lines = [LineRequest("BREAD-W", 1)]
    first = await container.purchases.record(
        customer_id="cus_1", lines=lines, idempotency_key="k-1"
    )
    before = await snapshot(container)
    again = await container.purchases.record(
        customer_id="cus_1", lines=lines, idempotency_key="k-1"
    )
    assert again == first
    assert await snapshot(container) == before


async def test_concurrent_retries_create_one_purchase(container: Container) -> None:
    lines = [LineRequest("BREAD-W", 3)]
    before_count, _ = await snapshot(container)
    results = await asyncio.gather(
        *(
            container.purchases.record(customer_id="cus_2", lines=lines, idempotency_key="k-2")
            for _ in range(8)
        )
    )
    assert len({p.id for p in results}) == 1
    assert (await snapshot(container))[0] == before_count + 1


async def test_reusing_a_key_with_different_input_is_a_conflict(container: Container) -> None:
    await container.purchases.record(
        customer_id="cus_1", lines=[LineRequest("BREAD-W", 1)], idempotency_key="k-3"
    )
    before = await snapshot(container)
    with pytest.raises(ConflictError) as raised:
        await container.purchases.record(
            customer_id="cus_1", lines=[LineRequest("BREAD-W", 2)], idempotency_key="k-3"
        )
    assert raised.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert await snapshot(container) == before


async def test_a_malformed_idempotency_key_is_refused(container: Container) -> None:
    with pytest.raises(ValidationError):
        await container.purchases.record(
            customer_id="cus_1", lines=[LineRequest("BREAD-W", 1)], idempotency_key="has space"
        )
