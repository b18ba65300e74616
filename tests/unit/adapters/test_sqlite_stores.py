"""What the SQLite stores promise beyond the port contracts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.event_log import SqliteEventLog
from adapters.sqlite.rows import db_time
from adapters.sqlite.stores import (
    SqliteCustomerStore,
    SqliteProductStore,
    SqlitePurchaseStore,
)
from domain.errors import ConflictError
from domain.events import customer_registered, purchase_recorded
from domain.ports import PurchasePageRequest
from tests.contracts.builders import T0, customer, product, purchase


async def test_list_for_customers_runs_the_same_statements_for_2_or_200_customers(
    database_path: Path,
) -> None:
    async with SqliteDatabase(database_path, readers=1) as db:
        store = SqlitePurchaseStore(db)
        history = [
            purchase(f"pur_{c:03d}_{i}", f"cus_{c:03d}", purchased_at=T0 + timedelta(days=i))
            for c in range(200)
            for i in range(3)
        ]
        await store.add_many(history, [purchase_recorded(p) for p in history])
        statements: list[str] = []
        await db.read(lambda conn: conn.set_trace_callback(statements.append))

        async def count_statements(customers: int) -> int:
            statements.clear()
            requests = [PurchasePageRequest(f"cus_{c:03d}", first=2) for c in range(customers)]
            pages = await store.list_for_customers(requests)
            assert all(len(page.items) == 2 and page.has_next_page for page in pages)
            return len(statements)

        assert await count_statements(2) == await count_statements(200) == 1
        await db.read(lambda conn: conn.set_trace_callback(None))


async def test_get_many_is_not_bounded_by_sqlite_variable_limit(
    customer_store: SqliteCustomerStore,
) -> None:
    known = [customer(f"cus_{i}") for i in range(10)]
    await customer_store.add_many(known, [customer_registered(c) for c in known])
    wanted = [f"cus_{i}" for i in range(40_000)]

    found = await customer_store.get_many(wanted)

    assert sorted(found) == sorted(c.id for c in known)


async def test_search_folds_case_beyond_ascii(customer_store: SqliteCustomerStore) -> None:
    batch = [
        customer("cus_1", name="Élodie Ørsted", email="elodie@example.com"),
        customer("cus_2", name="Eloise Orr"),
    ]
    await customer_store.add_many(batch, [customer_registered(c) for c in batch])

    for text in ("élodie", "ØRSTED", "ÉLO"):
        page = await customer_store.list(first=10, after=None, search=text)
        assert [c.id for c in page.items] == ["cus_1"], text


async def test_emails_are_unique_whatever_their_case(customer_store: SqliteCustomerStore) -> None:
    first = customer("cus_1", email="ada@example.com")
    await customer_store.add(first, customer_registered(first), None)
    shouty = customer("cus_2", email="ADA@Example.com")

    with pytest.raises(ConflictError, match="email"):
        await customer_store.add(shouty, customer_registered(shouty), None)


async def test_add_many_with_a_taken_email_writes_nothing(
    customer_store: SqliteCustomerStore, event_log: SqliteEventLog
) -> None:
    first = customer("cus_1", email="ada@example.com")
    await customer_store.add(first, customer_registered(first), None)
    batch = [customer("cus_2"), customer("cus_3", email="ada@example.com")]

    with pytest.raises(ConflictError) as raised:
        await customer_store.add_many(batch, [customer_registered(c) for c in batch])

    assert raised.value.code == "EMAIL_TAKEN"
    assert (await customer_store.count(), await event_log.head()) == (1, 1)


async def test_add_many_needs_one_event_per_item(
    customer_store: SqliteCustomerStore, purchase_store: SqlitePurchaseStore
) -> None:
    with pytest.raises(ValueError, match="events"):
        await customer_store.add_many([customer("cus_1")], [])
    with pytest.raises(ValueError, match="events"):
        await purchase_store.add_many([purchase("pur_1", "cus_1")], [])


async def test_upsert_many_counts_only_new_or_changed_products(
    product_store: SqliteProductStore,
) -> None:
    catalogue = [product("A"), product("B"), product("C")]
    assert await product_store.upsert_many(catalogue) == 3
    assert await product_store.upsert_many(catalogue) == 0
    changed = [catalogue[0], replace(catalogue[1], price=1), product("D")]
    assert await product_store.upsert_many(changed) == 2


async def test_naive_datetimes_are_refused(customer_store: SqliteCustomerStore) -> None:
    naive = customer("cus_1", created_at=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        await customer_store.add(naive, customer_registered(replace(naive, created_at=T0)), None)
    assert await customer_store.count() == 0


async def test_timestamps_are_stored_as_sortable_utc_text(
    database: SqliteDatabase, purchase_store: SqlitePurchaseStore
) -> None:
    plus_two = timezone(timedelta(hours=2))
    # 10:00+02:00 is 08:00 UTC: earlier than 09:00 UTC although its local clock reads later.
    early = purchase("pur_early", "cus_1", purchased_at=datetime(2024, 5, 1, 10, tzinfo=plus_two))
    late = purchase("pur_late", "cus_1", purchased_at=datetime(2024, 5, 1, 9, tzinfo=UTC))
    await purchase_store.add_many(
        [early, late], [purchase_recorded(early), purchase_recorded(late)]
    )

    (page,) = await purchase_store.list_for_customers([PurchasePageRequest("cus_1", first=5)])
    stored = await database.fetch_all("SELECT purchased_at FROM purchases ORDER BY purchased_at")

    assert [p.id for p in page.items] == ["pur_late", "pur_early"]
    assert stored == [("2024-05-01T08:00:00.000000+00:00",), ("2024-05-01T09:00:00.000000+00:00",)]
    assert db_time(datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=plus_two)) == (
        "1999-12-31T21:59:59.999999+00:00"
    )


async def test_reappending_a_logged_event_is_a_no_op(event_log: SqliteEventLog) -> None:
    ada = customer("cus_1")
    event = customer_registered(ada)
    await event_log.append([event])
    await event_log.append([event])

    assert [e.event for e in await event_log.read(after=0, limit=10)] == [event]
