"""The embedded stores: customers, the catalogue, purchases and idempotency claims in SQLite.

Writes that carry domain events insert them into the ``events`` table in the same transaction
(the outbox), together with the idempotency claim when there is one. Lists of ids travel as one
JSON parameter expanded by ``json_each``: no limit on how many, and one cached statement per query.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.rows import (
    CLAIM_COLUMNS,
    CUSTOMER_COLUMNS,
    PRODUCT_COLUMNS,
    PURCHASE_COLUMNS,
    Row,
    claim_from_row,
    claim_row,
    customer_from_row,
    customer_row,
    line_rows,
    product_from_row,
    product_row,
    purchase_from_row,
    purchase_row,
)
from domain.customers import Consent, Customer
from domain.errors import ConflictError, NotFoundError, ValidationError
from domain.events import DomainEvent
from domain.pagination import Page, check_page_size, decode_cursor, encode_cursor
from domain.ports import (
    CustomerStore,
    DuplicateRequestError,
    IdempotencyClaim,
    IdempotencyStore,
    ProductStore,
    PurchasePageRequest,
    PurchaseStore,
)
from domain.products import Product
from domain.purchases import Purchase
from domain.segments import SegmentCode

T = TypeVar("T")

_SELECT_CLAIM = f"SELECT {CLAIM_COLUMNS} FROM idempotency WHERE scope = ? AND key = ?"
_INSERT_CLAIM = f"INSERT INTO idempotency ({CLAIM_COLUMNS}) VALUES (?, ?, ?, ?, ?)"

_INSERT_CUSTOMER = (
    f"INSERT INTO customers ({CUSTOMER_COLUMNS}, search_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_CUSTOMER = f"SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?"
_SELECT_CUSTOMERS = (
    f"SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id IN (SELECT value FROM json_each(?))"
)
_EXISTING_CUSTOMERS = "SELECT id FROM customers WHERE id IN (SELECT value FROM json_each(?))"
_SET_CONSENT = (
    "UPDATE customers SET consent_analytics = ?, consent_ai_profiling = ?, consent_marketing = ? "
    f"WHERE id = ? RETURNING {CUSTOMER_COLUMNS}"
)

_UPSERT_PRODUCT = f"""
    INSERT INTO products ({PRODUCT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (sku) DO UPDATE SET
        name = excluded.name, category = excluded.category, brand = excluded.brand,
        price_tier = excluded.price_tier, pack_size = excluded.pack_size, unit = excluded.unit,
        price_cents = excluded.price_cents, tags = excluded.tags
    WHERE (name, category, brand, price_tier, pack_size, unit, price_cents, tags)
        IS NOT (excluded.name, excluded.category, excluded.brand, excluded.price_tier,
                excluded.pack_size, excluded.unit, excluded.price_cents, excluded.tags)
"""
_SELECT_PRODUCT = f"SELECT {PRODUCT_COLUMNS} FROM products WHERE sku = ?"
_SELECT_PRODUCTS = (
    f"SELECT {PRODUCT_COLUMNS} FROM products WHERE sku IN (SELECT value FROM json_each(?))"
)

_INSERT_PURCHASE = f"INSERT INTO purchases ({PURCHASE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
_INSERT_LINE = (
    "INSERT INTO purchase_lines "
    "(purchase_id, line_no, sku, quantity, unit_price_cents, discount_cents) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_SELECT_PURCHASE = f"SELECT {PURCHASE_COLUMNS} FROM purchases WHERE id = ?"
_EXISTING_PURCHASES = "SELECT id FROM purchases WHERE id IN (SELECT value FROM json_each(?))"
# The newest ``?2`` purchases of each customer in ``?1`` (a JSON array), tagged with the customer's
# index in it; ``?2`` is the largest page asked for plus one, and each page is cut to its own size
# afterwards. The correlated subquery is a range scan of purchases_by_customer per customer, so the
# cost follows the page size, not the length of anyone's history: a ROW_NUMBER() window ranks every
# purchase of every customer asked for, and measured ten times slower at 200 purchases each.
_NEWEST_PURCHASES = f"""
    SELECT r.key, {", ".join(f"p.{c}" for c in PURCHASE_COLUMNS.split(", "))}
    FROM json_each(?1) AS r
    JOIN purchases AS p ON p.rowid IN (
        SELECT q.rowid FROM purchases AS q
        WHERE q.customer_id = r.value
        ORDER BY q.purchased_at DESC, q.id DESC
        LIMIT ?2
    )
    ORDER BY r.key, p.purchased_at DESC, p.id DESC
"""
_NEWEST_PURCHASES_OF_ONE = f"""
    SELECT {PURCHASE_COLUMNS} FROM purchases
    WHERE customer_id = ?
    ORDER BY purchased_at DESC, id DESC
    LIMIT ?
"""
_PURCHASES_AFTER = f"""
    SELECT {PURCHASE_COLUMNS} FROM purchases
    WHERE customer_id = ? AND (purchased_at, id) < (?, ?)
    ORDER BY purchased_at DESC, id DESC
    LIMIT ?
"""


def _position(kind: str, cursor: str, size: int) -> list[str]:
    position = decode_cursor(kind, cursor)
    if len(position) != size or not all(isinstance(part, str) for part in position):
        raise ValidationError("malformed cursor", field="after", code="INVALID_CURSOR")
    return position


def _page(fetched: Sequence[T], first: int, cursor: Callable[[T], str]) -> Page[T]:
    """The page of ``first`` items out of ``first + 1`` fetched, the extra one telling whether
    there is a next page."""
    items = list(fetched[:first])
    return Page(
        items=items,
        end_cursor=cursor(items[-1]) if items else None,
        has_next_page=len(fetched) > first,
    )


def _ids_json(ids: Sequence[str]) -> str:
    return json.dumps(list(ids), separators=(",", ":"))


def _claim(conn: sqlite3.Connection, claim: IdempotencyClaim | None) -> None:
    """Record the claim, or raise DuplicateRequestError if (scope, key) is taken. Checked first,
    so a retried request replays instead of tripping over the row its first attempt wrote."""
    if claim is None:
        return
    existing = conn.execute(_SELECT_CLAIM, (claim.scope, claim.key)).fetchone()
    if existing is not None:
        raise DuplicateRequestError(claim_from_row(existing))
    conn.execute(_INSERT_CLAIM, claim_row(claim))


def _customer_conflict(error: sqlite3.IntegrityError, customer_id: str) -> ConflictError | None:
    message = str(error)
    if "customers.email" in message:
        return ConflictError(
            "a customer with this email already exists", field="email", code="EMAIL_TAKEN"
        )
    if "customers.id" in message:
        return ConflictError(f"customer id {customer_id!r} is taken", code="ID_TAKEN")
    return None


def _existing(conn: sqlite3.Connection, sql: str, ids: Sequence[str]) -> set[str]:
    return {row[0] for row in conn.execute(sql, (_ids_json(ids),))}


class SqliteIdempotencyStore(IdempotencyStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def find_claim(self, scope: str, key: str) -> IdempotencyClaim | None:
        row = await self._db.fetch_one(_SELECT_CLAIM, (scope, key))
        return claim_from_row(row) if row is not None else None


class SqliteCustomerStore(CustomerStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def add(
        self, customer: Customer, event: DomainEvent, claim: IdempotencyClaim | None
    ) -> None:
        row = customer_row(customer)

        def insert(conn: sqlite3.Connection) -> None:
            _claim(conn, claim)
            try:
                conn.execute(_INSERT_CUSTOMER, row)
            except sqlite3.IntegrityError as e:
                conflict = _customer_conflict(e, customer.id)
                if conflict is None:
                    raise
                raise conflict from e
            self._db.insert_events(conn, (event,))

        await self._db.write(insert)

    async def add_many(self, customers: Sequence[Customer], events: Sequence[DomainEvent]) -> int:
        """Insert the customers whose ids are new, with their events, all or nothing. A new
        customer whose email another customer holds fails the whole call with EMAIL_TAKEN."""
        if len(customers) != len(events):
            raise ValueError(f"{len(customers)} customers but {len(events)} events")
        if not customers:
            return 0

        def insert(conn: sqlite3.Connection) -> int:
            seen = _existing(conn, _EXISTING_CUSTOMERS, [c.id for c in customers])
            rows: list[Row] = []
            fresh_events: list[DomainEvent] = []
            for customer, event in zip(customers, events, strict=True):
                if customer.id not in seen:
                    seen.add(customer.id)
                    rows.append(customer_row(customer))
                    fresh_events.append(event)
            try:
                conn.executemany(_INSERT_CUSTOMER, rows)
            except sqlite3.IntegrityError as e:
                conflict = _customer_conflict(e, "")
                if conflict is None:
                    raise
                raise conflict from e
            self._db.insert_events(conn, fresh_events)
            return len(rows)

        return await self._db.write(insert)

    async def get(self, customer_id: str) -> Customer | None:
        row = await self._db.fetch_one(_SELECT_CUSTOMER, (customer_id,))
        return customer_from_row(row) if row is not None else None

    async def get_many(self, customer_ids: Sequence[str]) -> dict[str, Customer]:
        if not customer_ids:
            return {}
        if len(customer_ids) == 1:
            rows = await self._db.fetch_all(_SELECT_CUSTOMER, (customer_ids[0],))
        else:
            rows = await self._db.fetch_all(_SELECT_CUSTOMERS, (_ids_json(customer_ids),))
        return {row[0]: customer_from_row(row) for row in rows}

    async def list(
        self,
        *,
        first: int,
        after: str | None,
        search: str | None,
        segment: SegmentCode | None = None,
    ) -> Page[Customer]:
        check_page_size(first)
        conditions: list[str] = []
        params: list[Any] = []
        source, order = "customers", "id"
        if segment is not None:
            # Driven by customer_segments' (segment, customer_id) index: one range of it.
            source, order = "customer_segments JOIN customers ON id = customer_id", "customer_id"
            conditions.append("segment = ?")
            params.append(segment.value)
        if after is not None:
            conditions.append(f"{order} > ?")
            params.extend(_position("customers", after, 1))
        if search:
            # instr() on the lowercased copy: substring match with no LIKE wildcards to escape.
            conditions.append("instr(search_key, ?) > 0")
            params.append(search.lower())
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT {CUSTOMER_COLUMNS} FROM {source}{where} ORDER BY {order} LIMIT ?"
        rows = await self._db.fetch_all(sql, (*params, first + 1))
        customers = [customer_from_row(row) for row in rows]
        return _page(customers, first, lambda c: encode_cursor("customers", [c.id]))

    async def set_consent(self, customer_id: str, consent: Consent, event: DomainEvent) -> Customer:
        params = (consent.analytics, consent.ai_profiling, consent.marketing, customer_id)

        def update(conn: sqlite3.Connection) -> Customer:
            rows = conn.execute(_SET_CONSENT, params).fetchall()
            if not rows:
                raise NotFoundError("customer", customer_id, field="customerId")
            self._db.insert_events(conn, (event,))
            return customer_from_row(rows[0])

        return await self._db.write(update)

    async def count(self) -> int:
        row = await self._db.fetch_one("SELECT count(*) FROM customers")
        return int(row[0]) if row is not None else 0


class SqliteProductStore(ProductStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def upsert_many(self, products: Sequence[Product]) -> int:
        """Insert new products and update changed ones; returns how many were new or changed
        (re-loading an unchanged catalogue returns 0)."""
        if not products:
            return 0

        def upsert(conn: sqlite3.Connection) -> int:
            cursor = conn.executemany(_UPSERT_PRODUCT, [product_row(p) for p in products])
            return cursor.rowcount

        return await self._db.write(upsert)

    async def get(self, sku: str) -> Product | None:
        row = await self._db.fetch_one(_SELECT_PRODUCT, (sku,))
        return product_from_row(row) if row is not None else None

    async def get_many(self, skus: Sequence[str]) -> dict[str, Product]:
        if not skus:
            return {}
        rows = await self._db.fetch_all(_SELECT_PRODUCTS, (_ids_json(skus),))
        return {row[0]: product_from_row(row) for row in rows}

    async def list(self, *, first: int, after: str | None, category: str | None) -> Page[Product]:
        check_page_size(first)
        conditions: list[str] = []
        params: list[Any] = []
        if category is not None:
            conditions.append("category = ?")
            params.append(category)
        if after is not None:
            conditions.append("sku > ?")
            params.extend(_position("products", after, 1))
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT {PRODUCT_COLUMNS} FROM products{where} ORDER BY sku LIMIT ?"
        rows = await self._db.fetch_all(sql, (*params, first + 1))
        products = [product_from_row(row) for row in rows]
        return _page(products, first, lambda p: encode_cursor("products", [p.sku]))

    async def count(self) -> int:
        row = await self._db.fetch_one("SELECT count(*) FROM products")
        return int(row[0]) if row is not None else 0


class SqlitePurchaseStore(PurchaseStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def add(
        self, purchase: Purchase, event: DomainEvent, claim: IdempotencyClaim | None
    ) -> None:
        row = purchase_row(purchase)
        lines = line_rows(purchase)

        def insert(conn: sqlite3.Connection) -> None:
            _claim(conn, claim)
            try:
                conn.execute(_INSERT_PURCHASE, row)
            except sqlite3.IntegrityError as e:
                if "purchases.id" not in str(e):
                    raise
                raise ConflictError(f"purchase id {purchase.id!r} is taken", code="ID_TAKEN") from e
            conn.executemany(_INSERT_LINE, lines)
            self._db.insert_events(conn, (event,))

        await self._db.write(insert)

    async def add_many(self, purchases: Sequence[Purchase], events: Sequence[DomainEvent]) -> int:
        if len(purchases) != len(events):
            raise ValueError(f"{len(purchases)} purchases but {len(events)} events")
        if not purchases:
            return 0

        def insert(conn: sqlite3.Connection) -> int:
            seen = _existing(conn, _EXISTING_PURCHASES, [p.id for p in purchases])
            rows: list[Row] = []
            lines: list[Row] = []
            fresh_events: list[DomainEvent] = []
            for purchase, event in zip(purchases, events, strict=True):
                if purchase.id not in seen:
                    seen.add(purchase.id)
                    rows.append(purchase_row(purchase))
                    lines.extend(line_rows(purchase))
                    fresh_events.append(event)
            conn.executemany(_INSERT_PURCHASE, rows)
            conn.executemany(_INSERT_LINE, lines)
            self._db.insert_events(conn, fresh_events)
            return len(rows)

        return await self._db.write(insert)

    async def get(self, purchase_id: str) -> Purchase | None:
        return await self._db.read(partial(_purchase, purchase_id))

    async def list_for_customers(
        self, requests: Sequence[PurchasePageRequest]
    ) -> list[Page[Purchase]]:
        """Requests without ``after`` are answered together by one statement; those with a
        cursor by one indexed range query each; the lines of every page by one more statement,
        all in one trip to a reader thread."""
        if not requests:
            return []
        positions: list[list[str] | None] = []
        for request in requests:
            check_page_size(request.first)
            after = request.after
            positions.append(None if after is None else _position("purchases", after, 2))
        return await self._db.read(partial(_purchase_pages, requests, positions))

    async def count(self) -> int:
        row = await self._db.fetch_one("SELECT count(*) FROM purchases")
        return int(row[0]) if row is not None else 0


def _purchase(purchase_id: str, conn: sqlite3.Connection) -> Purchase | None:
    row = conn.execute(_SELECT_PURCHASE, (purchase_id,)).fetchone()
    if row is None:
        return None
    return purchase_from_row(row)


def _purchase_pages(
    requests: Sequence[PurchasePageRequest],
    positions: Sequence[list[str] | None],
    conn: sqlite3.Connection,
) -> list[Page[Purchase]]:
    rows: list[list[Row]] = [[] for _ in requests]
    newest = [i for i, position in enumerate(positions) if position is None]
    if len(newest) == 1:  # one customer's page (the common case): a plain index range scan
        only = requests[newest[0]]
        rows[newest[0]] = conn.execute(
            _NEWEST_PURCHASES_OF_ONE, (only.customer_id, only.first + 1)
        ).fetchall()
    elif newest:
        limit = max(requests[i].first for i in newest) + 1
        customer_ids = _ids_json([requests[i].customer_id for i in newest])
        for row in conn.execute(_NEWEST_PURCHASES, (customer_ids, limit)):
            rows[newest[row[0]]].append(row[1:])
    for i, position in enumerate(positions):
        if position is not None:
            request = requests[i]
            params = (request.customer_id, position[0], position[1], request.first + 1)
            rows[i] = conn.execute(_PURCHASES_AFTER, params).fetchall()

    pages: list[Page[Purchase]] = []
    for request, request_rows in zip(requests, rows, strict=True):
        shown_rows = request_rows[: request.first]
        purchases = [purchase_from_row(row) for row in shown_rows]
        last = shown_rows[-1] if shown_rows else None
        pages.append(
            Page(
                items=purchases,
                end_cursor=encode_cursor("purchases", [last[2], last[0]]) if last else None,
                has_next_page=len(request_rows) > request.first,
            )
        )
    return pages
