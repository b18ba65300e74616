"""The PurchaseStore contract. Fixtures: ``purchase_store``, ``idempotency_store`` and the
``event_log`` that receives the store's outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.errors import ConflictError, ValidationError
from domain.events import purchase_recorded
from domain.pagination import encode_cursor
from domain.ports import (
    DuplicateRequestError,
    EventLog,
    IdempotencyStore,
    PurchasePageRequest,
    PurchaseStore,
)
from domain.purchases import Purchase, PurchaseLine
from tests.contracts.builders import CET, T0, claim, purchase


async def _add(store: PurchaseStore, *purchases: Purchase) -> None:
    await store.add_many(purchases, [purchase_recorded(p) for p in purchases])


def _ids(purchases: list[Purchase]) -> list[str]:
    return [p.id for p in purchases]


async def test_purchase_round_trips_with_lines_in_order_and_exact_money(
    purchase_store: PurchaseStore,
) -> None:
    original = purchase(
        "pur_1",
        "cus_1",
        purchased_at=T0.astimezone(CET),
        recorded_at=T0 + timedelta(seconds=1, microseconds=1),
        lines=(
            PurchaseLine("ZUCCHINI", 3, 49, 0),
            PurchaseLine("APPLE", 1, 99_999_999_999, 1),
            PurchaseLine("MILK-1L", 10_000, 1, 0),
        ),
    )
    await purchase_store.add(original, purchase_recorded(original), None)

    loaded = await purchase_store.get("pur_1")

    assert loaded == original
    assert loaded is not None
    assert loaded.purchased_at == T0
    assert loaded.purchased_at.utcoffset() is not None
    assert loaded.total == original.total == 3 * 49 + 99_999_999_998 + 10_000


async def test_purchase_without_store_or_recorded_at_round_trips(
    purchase_store: PurchaseStore,
) -> None:
    bare = purchase("pur_1", "cus_1", store_id=None, recorded_at=None)
    await purchase_store.add(bare, purchase_recorded(bare), None)
    assert await purchase_store.get("pur_1") == bare


async def test_unknown_purchase_is_none(purchase_store: PurchaseStore) -> None:
    assert await purchase_store.get("pur_nothing") is None


async def test_purchase_add_writes_its_event(
    purchase_store: PurchaseStore, event_log: EventLog
) -> None:
    head = await event_log.head()
    new = purchase("pur_1", "cus_1")
    event = purchase_recorded(new)

    await purchase_store.add(new, event, None)

    assert [e.event for e in await event_log.read(after=head, limit=10)] == [event]


async def test_reused_claim_on_a_purchase_raises_duplicate_request_and_writes_nothing(
    purchase_store: PurchaseStore, event_log: EventLog, idempotency_store: IdempotencyStore
) -> None:
    first = purchase("pur_1", "cus_1")
    first_claim = claim("key-1", "pur_1", scope="recordPurchase")
    await purchase_store.add(first, purchase_recorded(first), first_claim)
    assert await idempotency_store.find_claim("recordPurchase", "key-1") == first_claim
    before = (await purchase_store.count(), await event_log.head())
    retry = purchase("pur_2", "cus_1")

    with pytest.raises(DuplicateRequestError) as raised:
        await purchase_store.add(
            retry, purchase_recorded(retry), claim("key-1", "pur_2", scope="recordPurchase")
        )

    assert raised.value.existing == first_claim
    assert (await purchase_store.count(), await event_log.head()) == before
    assert await purchase_store.get("pur_2") is None


async def test_taken_purchase_id_is_a_conflict_and_writes_nothing(
    purchase_store: PurchaseStore, event_log: EventLog
) -> None:
    first = purchase("pur_1", "cus_1")
    await purchase_store.add(first, purchase_recorded(first), None)
    before = (await purchase_store.count(), await event_log.head())
    clash = purchase("pur_1", "cus_2", lines=(PurchaseLine("OTHER", 1, 5, 0),))

    with pytest.raises(ConflictError) as raised:
        await purchase_store.add(clash, purchase_recorded(clash), None)

    assert raised.value.code == "ID_TAKEN"
    assert (await purchase_store.count(), await event_log.head()) == before
    assert await purchase_store.get("pur_1") == first


async def test_add_many_inserts_only_new_purchases_with_their_events_and_lines(
    purchase_store: PurchaseStore, event_log: EventLog
) -> None:
    batch = [purchase(f"pur_{i}", "cus_1", purchased_at=T0 + timedelta(hours=i)) for i in range(3)]
    head = await event_log.head()
    assert await purchase_store.add_many(batch, [purchase_recorded(p) for p in batch]) == 3
    assert len(await event_log.read(after=head, limit=100)) == 3

    before = (await purchase_store.count(), await event_log.head())
    assert await purchase_store.add_many(batch, [purchase_recorded(p) for p in batch]) == 0
    assert (await purchase_store.count(), await event_log.head()) == before

    # A known id with different lines keeps its original lines: nothing of it is written again.
    changed = purchase("pur_0", "cus_1", lines=(PurchaseLine("CHANGED", 9, 9, 0),))
    newcomer = purchase("pur_9", "cus_2")
    newcomer_event = purchase_recorded(newcomer)
    head = await event_log.head()
    added = await purchase_store.add_many(
        [changed, newcomer], [purchase_recorded(changed), newcomer_event]
    )

    assert added == 1
    assert [e.event for e in await event_log.read(after=head, limit=10)] == [newcomer_event]
    assert await purchase_store.get("pur_0") == batch[0]
    assert await purchase_store.get("pur_9") == newcomer


async def test_add_many_of_no_purchases_is_zero(purchase_store: PurchaseStore) -> None:
    assert await purchase_store.add_many([], []) == 0


async def test_pages_come_newest_first_aligned_with_the_requests(
    purchase_store: PurchaseStore,
) -> None:
    ada = [purchase(f"pur_a{i}", "cus_ada", purchased_at=T0 + timedelta(days=i)) for i in range(5)]
    bob = [purchase(f"pur_b{i}", "cus_bob", purchased_at=T0 - timedelta(days=i)) for i in range(2)]
    await _add(purchase_store, *bob, *ada)

    pages = await purchase_store.list_for_customers(
        [
            PurchasePageRequest("cus_bob", first=10),
            PurchasePageRequest("cus_nobody", first=10),
            PurchasePageRequest("cus_ada", first=3),
            PurchasePageRequest("cus_ada", first=1),
        ]
    )

    assert len(pages) == 4
    assert _ids(pages[0].items) == ["pur_b0", "pur_b1"]
    assert not pages[0].has_next_page
    assert (pages[1].items, pages[1].has_next_page, pages[1].end_cursor) == ([], False, None)
    assert _ids(pages[2].items) == ["pur_a4", "pur_a3", "pur_a2"]
    assert pages[2].has_next_page
    assert _ids(pages[3].items) == ["pur_a4"]
    assert pages[3].has_next_page
    assert pages[2].items[0] == ada[4]


async def test_purchases_at_the_same_moment_are_ordered_by_id_descending(
    purchase_store: PurchaseStore,
) -> None:
    await _add(purchase_store, *(purchase(f"pur_{c}", "cus_1") for c in "bdac"))

    (page,) = await purchase_store.list_for_customers([PurchasePageRequest("cus_1", first=10)])

    assert _ids(page.items) == ["pur_d", "pur_c", "pur_b", "pur_a"]


async def test_cursors_chain_through_a_customers_purchases(purchase_store: PurchaseStore) -> None:
    # Ties on purchased_at straddle page boundaries, so the cursor must carry the id too.
    history = [
        purchase(f"pur_{i:02d}", "cus_1", purchased_at=T0 + timedelta(hours=i // 3))
        for i in range(11)
    ]
    await _add(purchase_store, *history)
    expected = sorted(history, key=lambda p: (p.purchased_at, p.id), reverse=True)

    seen: list[Purchase] = []
    after = None
    pages = 0
    while True:
        (page,) = await purchase_store.list_for_customers(
            [PurchasePageRequest("cus_1", first=4, after=after)]
        )
        seen += page.items
        pages += 1
        if not page.has_next_page:
            break
        after = page.end_cursor

    assert seen == expected
    assert pages == 3


async def test_requests_with_and_without_cursors_are_answered_together(
    purchase_store: PurchaseStore,
) -> None:
    ada = [purchase(f"pur_a{i}", "cus_ada", purchased_at=T0 + timedelta(days=i)) for i in range(4)]
    bob = [purchase(f"pur_b{i}", "cus_bob", purchased_at=T0 + timedelta(days=i)) for i in range(4)]
    await _add(purchase_store, *ada, *bob)
    (ada_first,) = await purchase_store.list_for_customers([PurchasePageRequest("cus_ada", 2)])

    pages = await purchase_store.list_for_customers(
        [
            PurchasePageRequest("cus_bob", first=2),
            PurchasePageRequest("cus_ada", first=2, after=ada_first.end_cursor),
            PurchasePageRequest("cus_ada", first=2),
        ]
    )

    assert [_ids(p.items) for p in pages] == [
        ["pur_b3", "pur_b2"],
        ["pur_a1", "pur_a0"],
        ["pur_a3", "pur_a2"],
    ]
    assert [p.has_next_page for p in pages] == [True, False, True]
    assert all(p.lines for page in pages for p in page.items)


async def test_no_requests_no_pages(purchase_store: PurchaseStore) -> None:
    assert await purchase_store.list_for_customers([]) == []


@pytest.mark.parametrize(
    "cursor",
    ["nonsense", encode_cursor("customers", ["cus_1"]), encode_cursor("purchases", ["x"])],
)
async def test_malformed_purchase_cursor_is_a_validation_error(
    purchase_store: PurchaseStore, cursor: str
) -> None:
    with pytest.raises(ValidationError):
        await purchase_store.list_for_customers(
            [PurchasePageRequest("cus_1", first=5), PurchasePageRequest("cus_1", 5, after=cursor)]
        )


async def test_count_counts_purchases(purchase_store: PurchaseStore) -> None:
    assert await purchase_store.count() == 0
    await _add(purchase_store, purchase("pur_1", "cus_1"), purchase("pur_2", "cus_2"))
    assert await purchase_store.count() == 2
