from datetime import UTC, datetime, timedelta

import pytest

from domain.customers import Consent
from domain.ports import PurchasePageRequest
from domain.products import PriceTier
from domain.purchases import Purchase
from domain.services.importing import TransactionImporter, missing_columns
from domain.services.purchases import PurchaseLimits
from schema.app import Container
from tests.unit.conftest import NOW

HEADER = (
    "transaction_id", "customer_id", "purchased_at", "sku", "quantity", "unit_price", "discount",
    "store_id",
)  # fmt: skip


def rows(
    *records: tuple[str, ...], header: tuple[str, ...] = HEADER
) -> list[tuple[int, dict[str, str]]]:
    """Numbered like a CSV file: the header is line 1."""
    return [(i, dict(zip(header, r, strict=True))) for i, r in enumerate(records, start=2)]


GOOD = rows(
    ("T1", "cus_1", "2026-11-01T09:30:00Z", "MILK-1L", "2", "", "", "store-1"),
    ("T1", "cus_1", "2026-11-01T09:30:00Z", "COFFEE-P", "1", "7.99", "1.00", "store-1"),
    ("", "cus_new", "2026-11-02", "BREAD-W", "3", "", "", ""),
    ("", "cus_new", "2026-11-02", "MILK-1L", "1", "", "0.19", ""),
)


async def history(c: Container, customer_id: str) -> list[Purchase]:
    [page] = await c.purchases.pages_for_customers([PurchasePageRequest(customer_id, 100)])
    return page.items


async def counts(c: Container) -> tuple[int, int, int]:
    return await c.purchase_store.count(), await c.customer_store.count(), await c.events.head()


async def test_baskets_import_with_catalogue_prices_and_events(container: Container) -> None:
    head = await container.events.head()
    report = await container.importer.import_rows(GOOD)

    assert (report.rows_read, report.baskets_imported, report.baskets_present) == (4, 2, 0)
    assert report.customers_created == 1
    assert report.bad_rows == []
    assert not report.nothing_valid
    [t1] = await history(container, "cus_1")
    assert t1.id.startswith("imp_")
    assert t1.purchased_at == datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    assert t1.store_id == "store-1"
    assert [(ln.sku, ln.quantity, ln.unit_price, ln.discount) for ln in t1.lines] == [
        ("MILK-1L", 2, 119, 0),
        ("COFFEE-P", 1, 799, 100),
    ]
    [basket] = await history(container, "cus_new")
    assert basket.purchased_at == datetime(2026, 11, 2, tzinfo=UTC)  # a bare date is UTC midnight
    assert basket.store_id is None
    assert basket.total == 3 * 95 + 119 - 19

    logged = [e.event for e in await container.events.read(after=head, limit=10)]
    assert [e.type for e in logged] == [
        "CustomerRegistered",
        "PurchaseRecorded",
        "PurchaseRecorded",
    ]
    assert {e.payload["source"] for e in logged[1:]} == {"import"}


async def test_unknown_customers_are_created_without_personal_data(container: Container) -> None:
    await container.importer.import_rows(GOOD)

    customer = await container.customers.get("cus_new")
    assert customer is not None
    assert (customer.name, customer.email) == (None, None)
    assert customer.consent == Consent()
    assert customer.created_at == datetime(2026, 11, 2, tzinfo=UTC)


async def test_importing_the_same_rows_again_adds_nothing(container: Container) -> None:
    await container.importer.import_rows(GOOD)
    before = await counts(container)

    again = await container.importer.import_rows(GOOD)

    assert (again.baskets_imported, again.baskets_present, again.customers_created) == (0, 2, 0)
    assert await counts(container) == before
    assert "0 baskets imported, 2 already present" in again.summary()


async def test_bad_rows_are_reported_by_line_and_skip_their_basket_only(
    container: Container,
) -> None:
    future = (NOW + timedelta(days=1)).isoformat()
    report = await container.importer.import_rows(
        rows(
            ("A", "cus_1", "2026-11-01T10:00:00", "MILK-1L", "1", "", "", ""),
            ("A", "cus_1", "2026-11-01T10:00:00", "NOPE", "1", "", "", ""),
            ("B", "cus_2", "2026-11-01T11:00:00", "MILK-1L", "0", "", "", ""),
            ("C", "cus_2", "2026-11-01T12:00:00", "BREAD-W", "2", "-1.00", "", ""),
            ("D", "cus_2", future, "BREAD-W", "1", "", "", ""),
            ("E", "not an id", "2026-11-01T13:00:00", "BREAD-W", "1", "", "", ""),
            ("F", "cus_3", "2026-11-01T14:00:00", "BREAD-W", "1.5", "", "", ""),
            ("G", "cus_3", "yesterday", "BREAD-W", "1", "", "", ""),
            ("H", "cus_3", "2026-11-01T15:00:00", "BREAD-W", "1", "0.95", "2.00", ""),
            ("I", "cus_3", "2026-11-01T16:00:00", "COFFEE-P", "1", "", "", ""),
        )
    )

    lines = {line: message for line, message in report.bad_rows}
    assert sorted(lines) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "unknown sku 'NOPE'" in lines[3]
    assert "quantity must be at least 1" in lines[4]
    assert "unit_price must not be negative" in lines[5]
    assert "purchased_at is in the future" in lines[6]
    assert "customer_id 'not an id' is not a valid id" in lines[7]
    assert "quantity must be a whole number" in lines[8]
    assert "not an ISO-8601" in lines[9]
    assert "discount exceeds" in lines[10]
    assert (report.baskets_imported, report.baskets_skipped) == (1, 8)
    assert [p.lines[0].sku for p in await history(container, "cus_3")] == ["COFFEE-P"]
    assert (
        await history(container, "cus_1") == []
    )  # basket A had a good row, but not only good rows
    assert "8 skipped for 8 bad rows" in report.summary()


async def test_a_basket_key_seen_again_later_is_a_bad_row_naming_the_first(
    container: Container,
) -> None:
    report = await container.importer.import_rows(
        rows(
            ("T1", "cus_1", "2026-11-01T09:00:00Z", "MILK-1L", "1", "", "", ""),
            ("T1", "cus_1", "2026-11-01T09:00:00Z", "BREAD-W", "1", "", "", ""),
            ("T2", "cus_2", "2026-11-01T10:00:00Z", "MILK-1L", "1", "", "", ""),
            ("T1", "cus_1", "2026-11-01T09:00:00Z", "COFFEE-P", "1", "", "", ""),
        )
    )

    [(line, message)] = report.bad_rows
    assert line == 5
    assert "transaction 'T1' already appeared at line 2" in message
    assert (report.baskets_imported, report.baskets_skipped) == (2, 1)
    [t1] = await history(container, "cus_1")
    assert [ln.sku for ln in t1.lines] == ["MILK-1L", "BREAD-W"]


async def test_without_transaction_ids_customer_time_and_store_make_the_basket(
    container: Container,
) -> None:
    header = ("customer_id", "purchased_at", "sku", "quantity", "store_id")
    report = await container.importer.import_rows(
        rows(
            ("cus_1", "2026-11-01T09:00:00Z", "MILK-1L", "1", "s1"),
            ("cus_1", "2026-11-01T09:00:00+00:00", "BREAD-W", "1", "s1"),  # same instant
            ("cus_1", "2026-11-01T09:00:00Z", "MILK-1L", "1", "s2"),
            ("cus_1", "2026-11-01T09:00:00Z", "COFFEE-P", "1", "s1"),
            header=header,
        )
    )

    assert report.baskets_imported == 2
    [(line, message)] = report.bad_rows
    assert line == 5
    assert "already appeared at line 2" in message


async def test_rows_of_one_transaction_must_agree_on_customer_and_time(
    container: Container,
) -> None:
    report = await container.importer.import_rows(
        rows(
            ("T1", "cus_1", "2026-11-01T09:00:00Z", "MILK-1L", "1", "", "", ""),
            ("T1", "cus_2", "2026-11-01T09:00:00Z", "BREAD-W", "1", "", "", ""),
        )
    )

    assert report.bad_rows == [(3, "customer_id differs from line 2 of the same transaction 'T1'")]
    assert report.nothing_valid


async def test_baskets_longer_than_the_limit_are_refused(container: Container) -> None:
    importer = TransactionImporter(
        container.customer_store,
        container.product_store,
        container.purchase_store,
        container.clock,
        PurchaseLimits(max_lines=2),
    )
    report = await importer.import_rows(
        rows(*[("T1", "cus_1", "2026-11-01", "MILK-1L", "1", "", "", "")] * 3)
    )

    assert [line for line, _ in report.bad_rows] == [4]
    assert "at most 2 lines" in report.bad_rows[0][1]
    assert report.baskets_skipped == 1


async def test_chunks_give_the_same_result_and_report_progress(container: Container) -> None:
    progress: list[int] = []
    report = await container.importer.import_rows(GOOD, chunk_size=1, on_progress=progress.append)

    assert report.baskets_imported == 2
    assert progress[-1] == 4
    assert progress == sorted(progress)
    assert len(progress) >= 2


async def test_an_empty_file_is_nothing_to_do(container: Container) -> None:
    report = await container.importer.import_rows([])

    assert report.rows_read == 0
    assert not report.nothing_valid
    assert report.summary().startswith("0 rows read")


def test_missing_columns_are_named_in_documented_order() -> None:
    required = ("customer_id", "purchased_at", "sku", "quantity")
    assert missing_columns(["sku", "customer_id"], required) == ["purchased_at", "quantity"]


PRODUCT_HEADER = (
    "sku", "name", "category", "brand", "price_tier", "pack_size", "unit", "price", "tags",
)  # fmt: skip


async def test_products_are_upserted_and_bad_rows_reported(container: Container) -> None:
    product_rows = rows(
        (
            "OAT-1L",
            "Oat drink 1 l",
            "Beverages",
            "Oatly",
            "standard",
            "1",
            "l",
            "1.89",
            "vegan| dairy-free",
        ),
        ("OAT-1L", "Oat drink 1 l", "Beverages", "Oatly", "STANDARD", "1", "l", "1.89", ""),
        ("BAD SKU", "x", "Pantry", "x", "BUDGET", "1", "kg", "1.00", ""),
        ("RICE-1", "Rice", "Pantry", "x", "CHEAP", "1", "kg", "1.00", ""),
        ("RICE-2", "Rice", "Pantry", "x", "BUDGET", "-1", "kg", "1.00", ""),
        ("RICE-3", "Rice", "Pantry", "x", "BUDGET", "1", "kg", "1.005", ""),
        ("MILK-1L", "Whole milk 1 l", "Dairy", "Alpine", "STANDARD", "1", "l", "1.29", ""),
        header=PRODUCT_HEADER,
    )

    report = await container.importer.import_products(product_rows)

    assert [line for line, _ in report.bad_rows] == [3, 4, 5, 6, 7]
    assert "already given at line 2" in report.bad_rows[0][1]
    assert "price_tier must be BUDGET, STANDARD or PREMIUM" in report.bad_rows[2][1]
    assert "pack_size must be a positive number" in report.bad_rows[3][1]
    assert (report.products_valid, report.products_changed) == (2, 2)
    oat = await container.catalogue.get("OAT-1L")
    assert oat is not None
    assert (oat.price, oat.price_tier, oat.tags) == (
        189,
        PriceTier.STANDARD,
        ("vegan", "dairy-free"),
    )
    milk = await container.catalogue.get("MILK-1L")
    assert milk is not None
    assert milk.price == 129

    again = await container.importer.import_products(product_rows)
    assert (again.products_valid, again.products_changed) == (2, 0)
    assert "0 products new or changed, 2 unchanged" in again.summary()


@pytest.mark.parametrize("chunk_size", [0, -1])
async def test_chunk_size_must_be_positive(container: Container, chunk_size: int) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        await container.importer.import_rows(GOOD, chunk_size=chunk_size)
