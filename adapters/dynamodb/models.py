"""The OMNIX tables as pynamodb models, bound to one deployment's table names at run time.

Three tables (docs/architecture.md, "DynamoDB table design"):

- ``main``: customers, email guards, products, purchases and purchase-id guards, one item type
  per key shape. A customer's partition ``CUSTOMER#<id>`` holds the customer and their purchases
  (sort key ``PURCHASE#<purchased_at>#<id>``, newest first by reading backwards); it is also
  where the predictions and profiles of a customer go (``FORECAST``, ``PROFILE``,
  ``CONSUMPTION#<sku>``). GSIs: ``by_listing`` (customers in id order, products in sku order),
  ``by_category`` (products of a category) and ``by_segment`` (customers of a segment).
- ``idempotency``: claims of create mutations, expiring by TTL.
- ``events``: the outbox; pending events are found through the sparse ``pending`` GSI, and a
  published event expires by TTL.

The classes below describe items; ``bind`` makes subclasses that name a deployment's tables and
connection settings, with fresh index objects (pynamodb ties an index to one model class).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from adapters.dynamodb.config import DynamoConfig

M = TypeVar("M", bound=Model)

TTL_ATTRIBUTE = "expires_at"
CUSTOMER_LISTING = "customer"
PRODUCT_LISTING = "product"


class ListingIndex(GlobalSecondaryIndex[Any]):  # type: ignore[no-untyped-call]
    """Every customer (``listing = "customer"``) in id order, every product in sku order."""

    class Meta:
        index_name = "by_listing"
        projection = AllProjection()

    listing = UnicodeAttribute(hash_key=True)
    listing_key = UnicodeAttribute(range_key=True)


class CategoryIndex(GlobalSecondaryIndex[Any]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "by_category"
        projection = AllProjection()

    category = UnicodeAttribute(hash_key=True)
    sku = UnicodeAttribute(range_key=True)


class SegmentIndex(GlobalSecondaryIndex[Any]):  # type: ignore[no-untyped-call]
    """Customers of one segment; the ``segment`` attribute is written by segmentation."""

    class Meta:
        index_name = "by_segment"
        projection = AllProjection()

    segment = UnicodeAttribute(hash_key=True)
    customer_id = UnicodeAttribute(range_key=True)


class PendingIndex(GlobalSecondaryIndex[Any]):  # type: ignore[no-untyped-call]
    """Unpublished events, spread over a few partitions, oldest first in each."""

    class Meta:
        index_name = "pending"
        projection = KeysOnlyProjection()

    pending_shard = UnicodeAttribute(hash_key=True)
    pending_key = UnicodeAttribute(range_key=True)


class MainItem(Model):
    class Meta:
        table_name = "main"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class MainTable(MainItem):
    """The main table's full key schema with every index: what ``omnix init`` creates."""

    listing = UnicodeAttribute(null=True)
    listing_key = UnicodeAttribute(null=True)
    category = UnicodeAttribute(null=True)
    sku = UnicodeAttribute(null=True)
    segment = UnicodeAttribute(null=True)
    customer_id = UnicodeAttribute(null=True)


class CustomerItem(MainItem):
    by_listing: ClassVar[ListingIndex]

    customer_id = UnicodeAttribute()
    listing = UnicodeAttribute(default=CUSTOMER_LISTING)
    listing_key = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    analytics = BooleanAttribute(default=False)
    ai_profiling = BooleanAttribute(default=False)
    marketing = BooleanAttribute(default=False)
    household_size = NumberAttribute(null=True)
    # Lowercased "name\nemail": search matches a substring of it.
    search_key = UnicodeAttribute(default="")


class EmailItem(MainItem):
    """Holds an email (lowercased) for one customer: what makes emails unique."""

    customer_id = UnicodeAttribute()


class ProductItem(MainItem):
    by_listing: ClassVar[ListingIndex]
    by_category: ClassVar[CategoryIndex]

    sku = UnicodeAttribute()
    listing = UnicodeAttribute(default=PRODUCT_LISTING)
    listing_key = UnicodeAttribute()
    name = UnicodeAttribute()
    category = UnicodeAttribute()
    brand = UnicodeAttribute()
    price_tier = UnicodeAttribute()
    pack_size = NumberAttribute()
    unit = UnicodeAttribute()
    price = NumberAttribute()
    tags = UnicodeAttribute(default="[]")  # a JSON array


class PurchaseItem(MainItem):
    purchase_id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    purchased_at = UnicodeAttribute()
    recorded_at = UnicodeAttribute(null=True)
    store_id = UnicodeAttribute(null=True)
    lines = UnicodeAttribute()  # [[sku, quantity, unit_price_cents, discount_cents], ...]


class PurchaseIdItem(MainItem):
    """Holds a purchase id: makes ids unique across customers and finds a purchase by id."""

    customer_id = UnicodeAttribute()
    purchase_sk = UnicodeAttribute()


class ClaimItem(Model):
    class Meta:
        table_name = "idempotency"

    scope = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)
    request_hash = UnicodeAttribute()
    result_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    expires_at = NumberAttribute()


class EventItem(Model):
    class Meta:
        table_name = "events"

    pending: ClassVar[PendingIndex]

    event_id = UnicodeAttribute(hash_key=True)
    type = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    occurred_at = UnicodeAttribute()
    payload = UnicodeAttribute()  # JSON
    written_key = UnicodeAttribute()  # when the store wrote it: orders the outbox
    pending_shard = UnicodeAttribute(null=True)
    pending_key = UnicodeAttribute(null=True)
    published_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)


@dataclass(frozen=True, slots=True)
class Tables:
    """The model classes bound to one deployment's tables."""

    config: DynamoConfig
    main: type[MainTable]
    customer: type[CustomerItem]
    email: type[EmailItem]
    product: type[ProductItem]
    purchase: type[PurchaseItem]
    purchase_id: type[PurchaseIdItem]
    claim: type[ClaimItem]
    event: type[EventItem]

    @property
    def all(self) -> tuple[type[Model], ...]:
        return (
            self.main,
            self.customer,
            self.email,
            self.product,
            self.purchase,
            self.purchase_id,
            self.claim,
            self.event,
        )

    @property
    def schemas(self) -> tuple[type[Model], ...]:
        """One model per table, carrying its full key and index schema."""
        return (self.main, self.claim, self.event)


def _bound(model: type[M], table: str, config: DynamoConfig, **indexes: Any) -> type[M]:
    meta = type(
        "Meta",
        (),
        {
            "table_name": config.table(table),
            "region": config.region,
            "host": config.endpoint,
            "connect_timeout_seconds": min(config.timeout, 5.0),
            "read_timeout_seconds": config.timeout,
            "max_retry_attempts": 3,
            "max_pool_connections": config.threads,
        },
    )
    return type(model.__name__, (model,), {"Meta": meta, **indexes})


def bind(config: DynamoConfig) -> Tables:
    return Tables(
        config=config,
        main=_bound(
            MainTable,
            "main",
            config,
            by_listing=ListingIndex(),
            by_category=CategoryIndex(),
            by_segment=SegmentIndex(),
        ),
        customer=_bound(CustomerItem, "main", config, by_listing=ListingIndex()),
        email=_bound(EmailItem, "main", config),
        product=_bound(
            ProductItem, "main", config, by_listing=ListingIndex(), by_category=CategoryIndex()
        ),
        purchase=_bound(PurchaseItem, "main", config),
        purchase_id=_bound(PurchaseIdItem, "main", config),
        claim=_bound(ClaimItem, "idempotency", config),
        event=_bound(EventItem, "events", config, pending=PendingIndex()),
    )
