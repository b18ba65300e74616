"""The CustomerStore contract. Fixtures: ``customer_store``, ``idempotency_store`` and the
``event_log`` that receives the store's outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.customers import Consent
from domain.errors import ConflictError, NotFoundError, ValidationError
from domain.events import consent_changed, customer_registered
from domain.pagination import encode_cursor
from domain.ports import CustomerStore, DuplicateRequestError, EventLog, IdempotencyStore
from tests.contracts.builders import CET, T0, claim, customer


async def _written(store: CustomerStore, log: EventLog) -> tuple[int, int]:
    return await store.count(), await log.head()


async def test_customer_round_trips(customer_store: CustomerStore) -> None:
    original = customer(
        "cus_1",
        name="Ada Lovelace",
        email="ada@example.com",
        created_at=T0.astimezone(CET),
        consent=Consent(analytics=True, ai_profiling=False, marketing=True),
        household_size=3,
    )
    await customer_store.add(original, customer_registered(original), None)

    loaded = await customer_store.get("cus_1")

    assert loaded == original
    assert loaded is not None
    assert loaded.created_at.utcoffset() is not None
    assert loaded.created_at == T0


async def test_customer_without_optional_fields_round_trips(customer_store: CustomerStore) -> None:
    bare = customer("cus_bare")
    await customer_store.add(bare, customer_registered(bare), None)
    assert await customer_store.get("cus_bare") == bare


async def test_unknown_customer_is_none(customer_store: CustomerStore) -> None:
    assert await customer_store.get("cus_nobody") is None
    assert await customer_store.get_many(["cus_nobody"]) == {}
    assert await customer_store.get_many([]) == {}


async def test_customer_add_writes_its_event(
    customer_store: CustomerStore, event_log: EventLog
) -> None:
    head = await event_log.head()
    new = customer("cus_1", email="a@example.com")
    event = customer_registered(new)

    await customer_store.add(new, event, None)

    logged = await event_log.read(after=head, limit=10)
    assert [entry.event for entry in logged] == [event]
    assert await event_log.head() == logged[0].position


async def test_taken_email_is_a_conflict_and_writes_nothing(
    customer_store: CustomerStore, event_log: EventLog
) -> None:
    first = customer("cus_1", email="same@example.com")
    await customer_store.add(first, customer_registered(first), None)
    before = await _written(customer_store, event_log)
    second = customer("cus_2", email="same@example.com")

    with pytest.raises(ConflictError) as raised:
        await customer_store.add(second, customer_registered(second), None)

    assert (raised.value.code, raised.value.field) == ("EMAIL_TAKEN", "email")
    assert await _written(customer_store, event_log) == before
    assert await customer_store.get("cus_2") is None


async def test_customers_without_email_do_not_conflict(customer_store: CustomerStore) -> None:
    for customer_id in ("cus_1", "cus_2"):
        new = customer(customer_id)
        await customer_store.add(new, customer_registered(new), None)
    assert await customer_store.count() == 2


async def test_taken_customer_id_is_a_conflict_and_writes_nothing(
    customer_store: CustomerStore, event_log: EventLog
) -> None:
    first = customer("cus_1", email="one@example.com")
    await customer_store.add(first, customer_registered(first), None)
    before = await _written(customer_store, event_log)
    again = customer("cus_1", email="two@example.com")

    with pytest.raises(ConflictError) as raised:
        await customer_store.add(again, customer_registered(again), None)

    assert raised.value.code == "ID_TAKEN"
    assert await _written(customer_store, event_log) == before
    assert await customer_store.get("cus_1") == first


async def test_claim_is_written_with_the_customer(
    customer_store: CustomerStore, idempotency_store: IdempotencyStore
) -> None:
    new = customer("cus_1")
    written = claim("key-1", "cus_1", scope="registerCustomer")

    await customer_store.add(new, customer_registered(new), written)

    assert await idempotency_store.find_claim("registerCustomer", "key-1") == written
    assert await idempotency_store.find_claim("registerCustomer", "key-2") is None
    assert await idempotency_store.find_claim("recordPurchase", "key-1") is None


async def test_reused_claim_on_a_customer_raises_duplicate_request_and_writes_nothing(
    customer_store: CustomerStore, event_log: EventLog
) -> None:
    first = customer("cus_1", email="first@example.com")
    first_claim = claim("key-1", "cus_1", scope="registerCustomer")
    await customer_store.add(first, customer_registered(first), first_claim)
    before = await _written(customer_store, event_log)
    # The same email too: a retried request must replay, not trip over its own first attempt.
    retry = customer("cus_2", email="first@example.com")

    with pytest.raises(DuplicateRequestError) as raised:
        await customer_store.add(
            retry, customer_registered(retry), claim("key-1", "cus_2", scope="registerCustomer")
        )

    assert raised.value.existing == first_claim
    assert await _written(customer_store, event_log) == before
    assert await customer_store.get("cus_2") is None


async def test_failed_customer_add_leaves_the_claim_unwritten(
    customer_store: CustomerStore, idempotency_store: IdempotencyStore
) -> None:
    first = customer("cus_1", email="taken@example.com")
    await customer_store.add(first, customer_registered(first), None)
    second = customer("cus_2", email="taken@example.com")

    with pytest.raises(ConflictError):
        await customer_store.add(second, customer_registered(second), claim("key-9", "cus_2"))

    assert await idempotency_store.find_claim("test", "key-9") is None


async def test_add_many_inserts_only_new_customers_with_their_events(
    customer_store: CustomerStore, event_log: EventLog
) -> None:
    batch = [customer(f"cus_{i}") for i in range(3)]
    head = await event_log.head()

    assert await customer_store.add_many(batch, [customer_registered(c) for c in batch]) == 3
    assert await event_log.head() > head
    assert len(await event_log.read(after=head, limit=100)) == 3

    before = await _written(customer_store, event_log)
    again = await customer_store.add_many(batch, [customer_registered(c) for c in batch])
    assert again == 0
    assert await _written(customer_store, event_log) == before

    newcomer = customer("cus_9")
    newcomer_event = customer_registered(newcomer)
    mixed = [*batch, newcomer]
    events = [*(customer_registered(c) for c in batch), newcomer_event]
    head = await event_log.head()
    assert await customer_store.add_many(mixed, events) == 1
    assert [e.event for e in await event_log.read(after=head, limit=100)] == [newcomer_event]
    assert await customer_store.count() == 4


async def test_add_many_of_no_customers_is_zero(customer_store: CustomerStore) -> None:
    assert await customer_store.add_many([], []) == 0


async def test_get_many_customers_returns_the_known_ones(customer_store: CustomerStore) -> None:
    batch = [customer(f"cus_{i:04d}") for i in range(1500)]
    await customer_store.add_many(batch, [customer_registered(c) for c in batch])
    wanted = [f"cus_{i:04d}" for i in range(0, 1500, 3)] + ["cus_missing"]

    found = await customer_store.get_many(wanted)

    assert sorted(found) == sorted(wanted[:-1])
    assert found["cus_0003"] == batch[3]


async def test_list_pages_through_customers_in_id_order(customer_store: CustomerStore) -> None:
    ids = ["cus_e", "cus_a", "cus_d", "cus_b", "cus_c"]
    batch = [customer(i) for i in ids]
    await customer_store.add_many(batch, [customer_registered(c) for c in batch])

    seen: list[str] = []
    after = None
    flags: list[bool] = []
    while True:
        page = await customer_store.list(first=2, after=after, search=None)
        seen += [c.id for c in page.items]
        flags.append(page.has_next_page)
        if not page.has_next_page:
            break
        after = page.end_cursor

    assert seen == sorted(ids)
    assert flags == [True, True, False]


async def test_customer_list_of_exactly_one_page_has_no_next_page(
    customer_store: CustomerStore,
) -> None:
    batch = [customer(f"cus_{i}") for i in range(3)]
    await customer_store.add_many(batch, [customer_registered(c) for c in batch])

    page = await customer_store.list(first=3, after=None, search=None)

    assert [c.id for c in page.items] == ["cus_0", "cus_1", "cus_2"]
    assert not page.has_next_page
    assert page.end_cursor is not None
    rest = await customer_store.list(first=3, after=page.end_cursor, search=None)
    assert (rest.items, rest.has_next_page, rest.end_cursor) == ([], False, None)


async def test_empty_customer_list(customer_store: CustomerStore) -> None:
    page = await customer_store.list(first=10, after=None, search=None)
    assert (page.items, page.has_next_page, page.end_cursor) == ([], False, None)


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "",
        "!!!",
        encode_cursor("products", ["MILK"]),
        encode_cursor("customers", []),
    ],
)
async def test_malformed_customer_cursor_is_a_validation_error(
    customer_store: CustomerStore, cursor: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        await customer_store.list(first=10, after=cursor, search=None)
    assert raised.value.field == "after"


async def test_search_matches_name_or_email_case_insensitively(
    customer_store: CustomerStore,
) -> None:
    batch = [
        customer("cus_1", name="Ada Lovelace", email="ada@example.com"),
        customer("cus_2", name="Grace Hopper", email="grace@navy.mil"),
        customer("cus_3", name="Alan Turing", email="alan@LOVELACE.org"),
        customer("cus_4"),
    ]
    await customer_store.add_many(batch, [customer_registered(c) for c in batch])

    async def search(text: str) -> list[str]:
        page = await customer_store.list(first=10, after=None, search=text)
        return [c.id for c in page.items]

    assert await search("lovelace") == ["cus_1", "cus_3"]
    assert await search("HOPPER") == ["cus_2"]
    assert await search("navy.MIL") == ["cus_2"]
    assert await search("nobody") == []


async def test_search_treats_wildcards_literally(customer_store: CustomerStore) -> None:
    batch = [
        customer("cus_1", name="100% Organic"),
        customer("cus_2", name="1000 Organic"),
        customer("cus_3", name="snake_case"),
        customer("cus_4", name="snakeXcase"),
    ]
    await customer_store.add_many(batch, [customer_registered(c) for c in batch])

    percent = await customer_store.list(first=10, after=None, search="0%")
    underscore = await customer_store.list(first=10, after=None, search="e_c")

    assert [c.id for c in percent.items] == ["cus_1"]
    assert [c.id for c in underscore.items] == ["cus_3"]


async def test_search_pages_with_cursors(customer_store: CustomerStore) -> None:
    batch = [customer(f"cus_{i}", name="Smith" if i % 2 else "Jones") for i in range(7)]
    await customer_store.add_many(batch, [customer_registered(c) for c in batch])

    first = await customer_store.list(first=2, after=None, search="smith")
    second = await customer_store.list(first=2, after=first.end_cursor, search="smith")

    assert [c.id for c in first.items] == ["cus_1", "cus_3"]
    assert [c.id for c in second.items] == ["cus_5"]
    assert first.has_next_page
    assert not second.has_next_page


async def test_set_consent_replaces_the_flags_with_its_event(
    customer_store: CustomerStore, event_log: EventLog
) -> None:
    original = customer("cus_1", consent=Consent(analytics=True, marketing=True))
    await customer_store.add(original, customer_registered(original), None)
    head = await event_log.head()
    consent = Consent(ai_profiling=True)
    event = consent_changed("cus_1", consent, T0 + timedelta(days=1))

    updated = await customer_store.set_consent("cus_1", consent, event)

    assert updated.consent == consent
    assert updated.id == original.id
    assert updated.created_at == original.created_at
    assert await customer_store.get("cus_1") == updated
    assert [e.event for e in await event_log.read(after=head, limit=10)] == [event]


async def test_set_consent_of_an_unknown_customer_is_not_found(
    customer_store: CustomerStore, event_log: EventLog
) -> None:
    head = await event_log.head()
    consent = Consent(analytics=True)

    with pytest.raises(NotFoundError) as raised:
        await customer_store.set_consent(
            "cus_404", consent, consent_changed("cus_404", consent, T0)
        )

    assert (raised.value.entity, raised.value.key, raised.value.field) == (
        "customer",
        "cus_404",
        "customerId",
    )
    assert await event_log.head() == head


async def test_count_counts_customers(customer_store: CustomerStore) -> None:
    assert await customer_store.count() == 0
    batch = [customer(f"cus_{i}") for i in range(4)]
    await customer_store.add_many(batch, [customer_registered(c) for c in batch])
    assert await customer_store.count() == 4
