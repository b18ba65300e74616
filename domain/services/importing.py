"""Bulk import of purchase history and of the catalogue, from rows already read out of a file.

Rows are validated with the rules the API applies; a basket with any bad row is skipped whole and
every bad row is reported with its line number, while the rest of the file is imported. Purchase
ids are derived from the basket's key, so importing the same file again adds nothing."""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from domain.clock import Clock
from domain.customers import Customer
from domain.errors import ValidationError
from domain.events import customer_registered, purchase_recorded
from domain.ids import is_valid_id
from domain.money import Cents, parse_cents
from domain.ports import CustomerStore, ProductStore, PurchaseStore
from domain.products import PriceTier, Product
from domain.purchases import Purchase, PurchaseLine
from domain.services.purchases import (
    MAX_STORE_ID_LENGTH,
    MAX_UNIT_PRICE,
    LineRequest,
    PurchaseLimits,
    check_line,
    check_purchased_at,
)

Row = Mapping[str, str | None]

TRANSACTION_COLUMNS = ("customer_id", "purchased_at", "sku", "quantity")
OPTIONAL_TRANSACTION_COLUMNS = ("transaction_id", "unit_price", "discount", "store_id")
PRODUCT_COLUMNS = (
    "sku",
    "name",
    "category",
    "brand",
    "price_tier",
    "pack_size",
    "unit",
    "price",
)
OPTIONAL_PRODUCT_COLUMNS = ("tags",)

# The API speaks camelCase; an import file speaks its own column names.
_COLUMN_WORDS = {"purchasedAt": "purchased_at", "unitPrice": "unit_price"}


def missing_columns(fieldnames: Iterable[str], required: Sequence[str]) -> list[str]:
    """The required columns absent from a file's header, in the order they are documented."""
    present = set(fieldnames)
    return [c for c in required if c not in present]


def _in_file_words(message: str) -> str:
    for api, column in _COLUMN_WORDS.items():
        message = message.replace(api, column)
    return message


def _value(row: Row, column: str) -> str:
    return (row.get(column) or "").strip()


def _money(text: str, column: str) -> Cents | None:
    if not text:
        return None
    try:
        return parse_cents(text, field=column)
    except ValidationError as e:
        raise ValidationError(f"{column}: {e.message}", field=column) from e


def parse_timestamp(text: str) -> datetime:
    """ISO-8601 date or date-time; without a zone it is read as UTC. Returned in UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise ValidationError(
            f"purchased_at {text!r} is not an ISO-8601 date or date-time", field="purchased_at"
        ) from e
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass
class ImportReport:
    """What a transaction import did. Baskets "present" were imported before (same key)."""

    rows_read: int = 0
    baskets_imported: int = 0
    baskets_present: int = 0
    baskets_skipped: int = 0
    customers_created: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)

    @property
    def nothing_valid(self) -> bool:
        """True when the file had rows and not one basket in it was valid."""
        return self.rows_read > 0 and self.baskets_imported + self.baskets_present == 0

    def summary(self) -> str:
        parts = [
            f"{self.baskets_imported:,} {_plural(self.baskets_imported, 'basket')} imported",
            f"{self.baskets_present:,} already present",
        ]
        if self.baskets_skipped:
            parts.append(
                f"{self.baskets_skipped:,} skipped for "
                f"{len(self.bad_rows):,} bad {_plural(len(self.bad_rows), 'row')}"
            )
        parts.append(
            f"{self.customers_created:,} new {_plural(self.customers_created, 'customer')}"
        )
        return f"{self.rows_read:,} {_plural(self.rows_read, 'row')} read: " + ", ".join(parts)


@dataclass
class CatalogueImportReport:
    """What a catalogue import did. ``products_changed`` counts new or modified products."""

    rows_read: int = 0
    products_valid: int = 0
    products_changed: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)

    @property
    def nothing_valid(self) -> bool:
        return self.rows_read > 0 and self.products_valid == 0

    def summary(self) -> str:
        text = (
            f"{self.rows_read:,} {_plural(self.rows_read, 'row')} read: "
            f"{self.products_changed:,} {_plural(self.products_changed, 'product')} "
            f"new or changed, {self.products_valid - self.products_changed:,} unchanged"
        )
        if self.bad_rows:
            text += f", {len(self.bad_rows):,} bad {_plural(len(self.bad_rows), 'row')}"
        return text


def _plural(n: int, word: str) -> str:
    return word if n == 1 else f"{word}s"


@dataclass(frozen=True, slots=True)
class _Line:
    line: int
    request: LineRequest


@dataclass(slots=True)
class _Basket:
    key: str
    purchase_id: str
    first_line: int
    customer_id: str = ""
    purchased_at: datetime | None = None
    store_id: str | None = None
    lines: list[_Line] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)
    reopened_from: int | None = None


@dataclass(frozen=True, slots=True)
class _Fields:
    """One transaction row's values, stripped; an absent column reads as empty."""

    transaction_id: str
    customer_id: str
    purchased_at: str
    sku: str
    quantity: str
    unit_price: str
    discount: str
    store_id: str

    @classmethod
    def of(cls, row: Row) -> _Fields:
        return cls(*((row.get(column) or "").strip() for column in _FIELD_COLUMNS))

    def basket_key(self) -> tuple[str, str]:
        """(key, description). Rows with a transaction_id group by it alone; others by
        customer, moment and store, the moment normalised so that equal instants match."""
        if self.transaction_id:
            return f"t\x1f{self.transaction_id}", f"transaction {self.transaction_id!r}"
        at = self.purchased_at
        with contextlib.suppress(ValidationError):
            at = parse_timestamp(at).isoformat()
        store = self.store_id
        description = f"basket of customer {self.customer_id!r} at {at}" + (
            f" in {store!r}" if store else ""
        )
        return f"c\x1f{self.customer_id}\x1f{at}\x1f{store}", description


_FIELD_COLUMNS = tuple(_Fields.__dataclass_fields__)


def _purchase_id(key: str, customer_id: str) -> str:
    digest = hashlib.sha256(f"{key}\x1e{customer_id}".encode()).hexdigest()
    return f"imp_{digest[:24]}"


class TransactionImporter:
    """Imports purchase history and catalogue rows in chunks, reporting bad rows by line."""

    def __init__(
        self,
        customers: CustomerStore,
        products: ProductStore,
        purchases: PurchaseStore,
        clock: Clock,
        limits: PurchaseLimits | None = None,
    ) -> None:
        self._customers = customers
        self._products = products
        self._purchases = purchases
        self._clock = clock
        self._limits = limits or PurchaseLimits()

    async def import_rows(
        self,
        rows: Iterable[tuple[int, Row]],
        *,
        on_progress: Callable[[int], None] | None = None,
        chunk_size: int = 2000,
    ) -> ImportReport:
        """Import ``(line number, row)`` pairs of purchase lines. Columns: customer_id,
        purchased_at, sku, quantity, and optionally transaction_id, unit_price, discount and
        store_id. A basket's rows must be contiguous. Unknown customers are created.
        ``on_progress(rows_read)`` is called after each chunk of ``chunk_size`` baskets."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        report = ImportReport()
        now = self._clock.now()
        prices: dict[str, Cents | None] = {}
        # One short digest per basket seen, to catch a basket whose rows are not contiguous.
        closed: dict[bytes, int] = {}
        pending: list[_Basket] = []
        basket: _Basket | None = None
        for line, row in rows:
            report.rows_read += 1
            fields = _Fields.of(row)
            key, description = fields.basket_key()
            if basket is None or key != basket.key:
                if basket is not None:
                    pending.append(basket)
                    if len(pending) >= chunk_size:
                        await self._write(pending, prices, report, now)
                        pending = []
                        if on_progress is not None:
                            on_progress(report.rows_read)
                digest = hashlib.blake2b(key.encode(), digest_size=12).digest()
                basket = _Basket(
                    key=key,
                    purchase_id=_purchase_id(key, fields.customer_id),
                    first_line=line,
                    reopened_from=closed.get(digest),
                )
                closed.setdefault(digest, line)
            self._add_row(basket, line, fields, description, now)
        if basket is not None:
            pending.append(basket)
        await self._write(pending, prices, report, now)
        if on_progress is not None:
            on_progress(report.rows_read)
        report.bad_rows.sort()
        return report

    def _add_row(
        self, basket: _Basket, line: int, fields: _Fields, description: str, now: datetime
    ) -> None:
        if basket.reopened_from is not None:
            basket.bad.append(
                (
                    line,
                    f"{description} already appeared at line {basket.reopened_from}; "
                    "the rows of one basket must be contiguous",
                )
            )
            return
        if len(basket.lines) + len(basket.bad) >= self._limits.max_lines:
            basket.bad.append(
                (line, f"a basket has at most {self._limits.max_lines} lines; this is one more")
            )
            return
        try:
            request, purchased_at = _parse(fields, len(basket.lines), now)
        except ValidationError as e:
            basket.bad.append((line, _in_file_words(e.message)))
            return
        store_id = fields.store_id or None
        if not basket.lines and not basket.bad:
            basket.customer_id = fields.customer_id
            basket.purchased_at = purchased_at
            basket.store_id = store_id
        elif basket.purchased_at is not None:
            for column, value, expected in (
                ("customer_id", fields.customer_id, basket.customer_id),
                ("purchased_at", purchased_at, basket.purchased_at),
                ("store_id", store_id, basket.store_id),
            ):
                if value != expected:
                    basket.bad.append(
                        (
                            line,
                            f"{column} differs from line {basket.first_line} of the same "
                            f"{description}",
                        )
                    )
                    return
        basket.lines.append(_Line(line, request))

    async def _write(
        self,
        baskets: list[_Basket],
        prices: dict[str, Cents | None],
        report: ImportReport,
        now: datetime,
    ) -> None:
        unseen = sorted(
            {ln.request.sku for b in baskets if not b.bad for ln in b.lines} - set(prices)
        )
        if unseen:
            found = await self._products.get_many(unseen)
            for sku in unseen:
                product = found.get(sku)
                prices[sku] = product.price if product is not None else None
        purchases: list[Purchase] = []
        for basket in baskets:
            lines = self._price(basket, prices)
            if basket.bad or lines is None or basket.purchased_at is None:
                report.bad_rows.extend(basket.bad)
                report.baskets_skipped += 1
                continue
            purchases.append(
                Purchase(
                    id=basket.purchase_id,
                    customer_id=basket.customer_id,
                    purchased_at=basket.purchased_at,
                    lines=lines,
                    store_id=basket.store_id,
                    recorded_at=now,
                )
            )
        if not purchases:
            return
        first_seen: dict[str, datetime] = {}
        for p in purchases:
            earliest = first_seen.get(p.customer_id, p.purchased_at)
            first_seen[p.customer_id] = min(p.purchased_at, earliest)
        known = await self._customers.get_many(sorted(first_seen))
        # An imported customer is known from their earliest purchase in the chunk: that, not
        # the moment of the import, is when they became a customer.
        new = [
            Customer(id=cid, created_at=at) for cid, at in first_seen.items() if cid not in known
        ]
        if new:
            report.customers_created += await self._customers.add_many(
                new, [customer_registered(c) for c in new]
            )
        added = await self._purchases.add_many(
            purchases, [purchase_recorded(p, source="import") for p in purchases]
        )
        report.baskets_imported += added
        report.baskets_present += len(purchases) - added

    @staticmethod
    def _price(
        basket: _Basket, prices: Mapping[str, Cents | None]
    ) -> tuple[PurchaseLine, ...] | None:
        """The basket's lines priced from the catalogue where the file gave no price; None
        (with the reasons added to ``basket.bad``) when a line cannot be priced."""
        if basket.bad:
            return None
        priced: list[PurchaseLine] = []
        for ln in basket.lines:
            request = ln.request
            catalogue_price = prices.get(request.sku)
            if catalogue_price is None:
                basket.bad.append((ln.line, f"unknown sku {request.sku!r}"))
                continue
            unit_price = catalogue_price if request.unit_price is None else request.unit_price
            discount = request.discount or 0
            if discount > unit_price * request.quantity:
                basket.bad.append((ln.line, "discount exceeds the line's amount"))
                continue
            priced.append(PurchaseLine(request.sku, request.quantity, unit_price, discount))
        return None if basket.bad else tuple(priced)

    async def import_products(
        self,
        rows: Iterable[tuple[int, Row]],
        *,
        on_progress: Callable[[int], None] | None = None,
        chunk_size: int = 2000,
    ) -> CatalogueImportReport:
        """Insert or update products from ``(line number, row)`` pairs with columns sku, name,
        category, brand, price_tier, pack_size, unit, price and optionally tags (separated by
        ``|``). A sku given twice in one file is a bad row."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        report = CatalogueImportReport()
        first_line: dict[str, int] = {}
        chunk: list[Product] = []
        for line, row in rows:
            report.rows_read += 1
            try:
                product = _parse_product(row)
            except ValidationError as e:
                report.bad_rows.append((line, e.message))
                continue
            if product.sku in first_line:
                report.bad_rows.append(
                    (
                        line,
                        f"sku {product.sku!r} was already given at line {first_line[product.sku]}",
                    )
                )
                continue
            first_line[product.sku] = line
            chunk.append(product)
            if len(chunk) >= chunk_size:
                await self._upsert(chunk, report)
                chunk = []
                if on_progress is not None:
                    on_progress(report.rows_read)
        await self._upsert(chunk, report)
        if on_progress is not None:
            on_progress(report.rows_read)
        return report

    async def _upsert(self, products: list[Product], report: CatalogueImportReport) -> None:
        if products:
            report.products_changed += await self._products.upsert_many(products)
            report.products_valid += len(products)


def _parse(fields: _Fields, index: int, now: datetime) -> tuple[LineRequest, datetime]:
    """The line as the purchase service would receive it, checked by the same rules."""
    for column in TRANSACTION_COLUMNS:
        if not getattr(fields, column):
            raise ValidationError(f"{column} is required")
    if not is_valid_id(fields.customer_id):
        raise ValidationError(
            f"customer_id {fields.customer_id!r} is not a valid id "
            "(1-64 letters, digits or _.:- starting with a letter or digit)"
        )
    purchased_at = parse_timestamp(fields.purchased_at)
    check_purchased_at(purchased_at, now)
    try:
        quantity = int(fields.quantity)
    except ValueError as e:
        raise ValidationError(f"quantity must be a whole number, got {fields.quantity!r}") from e
    request = LineRequest(
        sku=fields.sku,
        quantity=quantity,
        unit_price=_money(fields.unit_price, "unit_price"),
        discount=_money(fields.discount, "discount"),
    )
    check_line(index, request)
    if len(fields.store_id) > MAX_STORE_ID_LENGTH:
        raise ValidationError(f"store_id is longer than {MAX_STORE_ID_LENGTH} characters")
    return request, purchased_at


def _text(row: Row, column: str, limit: int) -> str:
    value = " ".join(_value(row, column).split())
    if not value:
        raise ValidationError(f"{column} is required")
    if len(value) > limit:
        raise ValidationError(f"{column} is longer than {limit} characters")
    return value


def _parse_product(row: Row) -> Product:
    sku = _value(row, "sku")
    if not sku:
        raise ValidationError("sku is required")
    if not is_valid_id(sku):
        raise ValidationError(
            f"sku {sku!r} is not a valid id "
            "(1-64 letters, digits or _.:- starting with a letter or digit)"
        )
    tier_text = _value(row, "price_tier").upper()
    try:
        tier = PriceTier(tier_text)
    except ValueError as e:
        raise ValidationError(
            f"price_tier must be BUDGET, STANDARD or PREMIUM, got {tier_text!r}"
        ) from e
    pack_text = _value(row, "pack_size")
    try:
        pack_size = float(pack_text)
    except ValueError:
        pack_size = math.nan
    if not (math.isfinite(pack_size) and pack_size > 0):
        raise ValidationError(f"pack_size must be a positive number, got {pack_text!r}")
    price = _money(_value(row, "price"), "price")
    if price is None:
        raise ValidationError("price is required")
    if price < 0:
        raise ValidationError("price must not be negative")
    if price > MAX_UNIT_PRICE:
        raise ValidationError("price is implausibly large")
    tags = tuple(dict.fromkeys(t.strip() for t in _value(row, "tags").split("|") if t.strip()))
    return Product(
        sku=sku,
        name=_text(row, "name", 200),
        category=_text(row, "category", 64),
        brand=_text(row, "brand", 100),
        price_tier=tier,
        pack_size=pack_size,
        unit=_text(row, "unit", 16),
        price=price,
        tags=tags,
    )
