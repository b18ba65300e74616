"""The stores on DynamoDB: customers, the catalogue, purchases and idempotency claims.

A write that carries a domain event puts it in the outbox (the ``events`` table) in the same
TransactWriteItems as the change, with the idempotency claim when there is one; every put that
must not overwrite is conditional on ``attribute_not_exists``. Bulk writes (``add_many``) read
which ids are known first, then write with BatchWriteItem in an order that makes a crash safe to
repeat: events first, then the items, then whatever marks an item as known.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from functools import partial
from itertools import islice
from typing import Any, TypeVar

from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.models import Model

from adapters.dynamodb.client import (
    DynamoClient,
    Put,
    RequestTokenReused,
    TransactionCancelled,
    Update,
    error_code,
)
from adapters.dynamodb.items import (
    CUSTOMER_SK,
    EMAIL_SK,
    PRODUCT_SK,
    PURCHASE_ID_SK,
    PURCHASE_PREFIX,
    check_item_size,
    claim_from_item,
    claim_item,
    customer_from_item,
    customer_item,
    customer_pk,
    email_item,
    event_item,
    iso,
    product_from_item,
    product_item,
    product_pk,
    purchase_from_item,
    purchase_id_item,
    purchase_id_pk,
    purchase_item,
    purchase_sk,
)
from adapters.dynamodb.models import CUSTOMER_LISTING, PRODUCT_LISTING, EmailItem
from domain.customers import Consent, Customer
from domain.errors import ConflictError, NotFoundError, StoreUnavailableError, ValidationError
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
M = TypeVar("M", bound=Model)

_FAILED = "ConditionalCheckFailed"
_BUSY = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}


def _position(kind: str, cursor: str, size: int) -> list[str]:
    position = decode_cursor(kind, cursor)
    if len(position) != size or not all(isinstance(part, str) for part in position):
        raise ValidationError("malformed cursor", field="after", code="INVALID_CURSOR")
    return position


def _page(fetched: Sequence[T], first: int, cursor: Callable[[T], str]) -> Page[T]:
    items = list(fetched[:first])
    return Page(
        items=items,
        end_cursor=cursor(items[-1]) if items else None,
        has_next_page=len(fetched) > first,
    )


def _get(model: type[M], hash_key: str, range_key: str) -> M | None:
    try:
        return model.get(hash_key, range_key, consistent_read=True)
    except DoesNotExist:
        return None


def _key(*values: str) -> dict[str, dict[str, Any]]:
    """An ExclusiveStartKey of the main table (and its listing index when four values)."""
    names = ("pk", "sk", "listing", "listing_key")
    return {name: {"S": value} for name, value in zip(names, values, strict=False)}


def _fresh(items: Sequence[T], key: Callable[[T], str]) -> list[T]:
    """``items`` without repeats of a key (the first one wins)."""
    seen: set[str] = set()
    fresh = []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            fresh.append(item)
    return fresh


def _busy(reasons: Sequence[str | None]) -> StoreUnavailableError | None:
    if any(reason in _BUSY for reason in reasons):
        return StoreUnavailableError("DynamoDB is busy with a conflicting write; retry shortly")
    return None


def _request_token(kind: str, entity_id: str) -> str:
    """A ClientRequestToken (at most 36 characters) derived from what is being created, so a
    resent TransactWriteItems is recognised by DynamoDB instead of applied twice."""
    return hashlib.sha256(f"{kind}:{entity_id}".encode()).hexdigest()[:36]


class _Dynamo:
    def __init__(self, client: DynamoClient) -> None:
        self._client = client
        self._tables = client.tables

    async def _claim_conflict(self, claim: IdempotencyClaim) -> DuplicateRequestError:
        existing = await self._client.run(
            partial(_get, self._tables.claim, claim.scope, claim.key), what="claim read"
        )
        if existing is None:  # expired between the write and this read: the caller may retry
            raise StoreUnavailableError("idempotency claim changed while writing; retry")
        return DuplicateRequestError(claim_from_item(existing))

    def _claim_put(self, claim: IdempotencyClaim | None) -> list[Put]:
        if claim is None:
            return []
        return [Put(claim_item(self._tables, claim), self._tables.claim.scope.does_not_exist())]

    def _event_put(self, event: DomainEvent) -> Put:
        item = event_item(self._tables, event)
        check_item_size(item, what="the event", field="lines")
        return Put(item, self._tables.event.event_id.does_not_exist())


class DynamoIdempotencyStore(_Dynamo, IdempotencyStore):
    async def find_claim(self, scope: str, key: str) -> IdempotencyClaim | None:
        item = await self._client.run(
            partial(_get, self._tables.claim, scope, key), what="claim read"
        )
        return claim_from_item(item) if item is not None else None


class DynamoCustomerStore(_Dynamo, CustomerStore):
    async def add(
        self, customer: Customer, event: DomainEvent, claim: IdempotencyClaim | None
    ) -> None:
        tables = self._tables
        item = customer_item(tables, customer)
        check_item_size(item, what="the customer", field="name")
        puts = self._claim_put(claim)
        customer_at = len(puts)
        puts.append(Put(item, tables.customer.pk.does_not_exist()))
        email = email_item(tables, customer)
        email_at = len(puts) if email is not None else -1
        if email is not None:
            puts.append(Put(email, tables.email.pk.does_not_exist()))
        puts.append(self._event_put(event))
        try:
            await self._client.transact(puts, what="customer write")
        except TransactionCancelled as e:
            reasons = e.reasons
            if claim is not None and reasons[0] == _FAILED:
                raise await self._claim_conflict(claim) from e
            if reasons[customer_at] == _FAILED:
                raise ConflictError(f"customer id {customer.id!r} is taken", code="ID_TAKEN") from e
            if email_at >= 0 and reasons[email_at] == _FAILED:
                raise ConflictError(
                    "a customer with this email already exists", field="email", code="EMAIL_TAKEN"
                ) from e
            raise _busy(reasons) or ConflictError("the event id is taken") from e

    async def add_many(self, customers: Sequence[Customer], events: Sequence[DomainEvent]) -> int:
        """Insert the customers whose ids are new, with their events. The emails of the new
        ones are checked first: one another customer holds fails the call with EMAIL_TAKEN
        before anything is written. Not atomic: a failure part-way leaves some written, and
        calling again with the same input completes it without duplicating a customer."""
        if len(customers) != len(events):
            raise ValueError(f"{len(customers)} customers but {len(events)} events")
        tables = self._tables
        pairs = _fresh(list(zip(customers, events, strict=True)), lambda p: p[0].id)
        if not pairs:
            return 0
        known = {
            item.customer_id
            for item in await self._client.batch_get(
                tables.customer,
                [(customer_pk(c.id), CUSTOMER_SK) for c, _ in pairs],
                what="customer read",
            )
        }
        new = [(c, e) for c, e in pairs if c.id not in known]
        if not new:
            return 0
        items = [customer_item(tables, c) for c, _ in new]
        event_items = [event_item(tables, e, i) for i, (_, e) in enumerate(new)]
        for item in items:
            check_item_size(item, what="a customer", field="name")
        for event in event_items:
            check_item_size(event, what="an event", field="customers")
        await self._hold_emails([c for c, _ in new])
        await self._client.batch_put(event_items, what="event write")
        await self._client.batch_put(items, what="customer write")
        return len(new)

    async def _hold_emails(self, customers: Sequence[Customer]) -> None:
        """Take the email guard of each customer that has an email, conditionally (free or
        already this customer's, as after an interrupted import). On a conflict the guards
        taken here are given back and EMAIL_TAKEN is raised: no customer is written then."""
        guards = [g for g in (email_item(self._tables, c) for c in customers) if g is not None]
        if not guards:
            return
        if len({g.pk for g in guards}) < len(guards):
            raise ConflictError(
                "two new customers share an email", field="email", code="EMAIL_TAKEN"
            )
        held = await self._client.batch_get(
            self._tables.email, [(g.pk, EMAIL_SK) for g in guards], what="email read"
        )
        owner = {g.pk: g.customer_id for g in guards}
        if any(h.customer_id != owner[h.pk] for h in held):
            raise _email_taken()
        mine = {h.pk for h in held}
        results = await asyncio.gather(
            *(self._client.run(partial(self._take, g), what="email write") for g in guards),
            return_exceptions=True,
        )
        if all(r is True for r in results):
            return
        taken = [g for g, r in zip(guards, results, strict=True) if r is True and g.pk not in mine]
        await asyncio.gather(
            *(self._client.run(g.delete, what="email release") for g in taken),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        raise _email_taken()

    def _take(self, guard: EmailItem) -> bool:
        model = self._tables.email
        try:
            guard.save(
                condition=model.pk.does_not_exist() | (model.customer_id == guard.customer_id)
            )
        except PutError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def get(self, customer_id: str) -> Customer | None:
        item = await self._client.run(
            partial(_get, self._tables.customer, customer_pk(customer_id), CUSTOMER_SK),
            what="customer read",
        )
        return customer_from_item(item) if item is not None else None

    async def get_many(self, customer_ids: Sequence[str]) -> dict[str, Customer]:
        keys = [(customer_pk(i), CUSTOMER_SK) for i in dict.fromkeys(customer_ids)]
        items = await self._client.batch_get(self._tables.customer, keys, what="customer read")
        return {item.customer_id: customer_from_item(item) for item in items}

    async def list(
        self,
        *,
        first: int,
        after: str | None,
        search: str | None,
        segment: SegmentCode | None = None,
    ) -> Page[Customer]:
        """Customers in id order from the ``by_listing`` index. A search reads that index in
        order and keeps the customers whose lowercased name or email contains the text, until
        it has a page: its cost grows with the customers it passes over (docs/architecture.md).
        A segment reads the ``by_segment`` index instead: only that segment's customers."""
        check_page_size(first)
        if segment is not None:
            return await self._list_segment(first, after, search, segment)
        model = self._tables.customer
        start = None
        if after is not None:
            (after_id,) = _position("customers", after, 1)
            start = _key(customer_pk(after_id), CUSTOMER_SK, CUSTOMER_LISTING, after_id)
        condition = model.search_key.contains(search.lower()) if search else None

        def fetch() -> list[Customer]:
            found = model.by_listing.query(
                CUSTOMER_LISTING,
                filter_condition=condition,
                last_evaluated_key=start,
                limit=first + 1,
                page_size=first + 1 if condition is None else 500,
            )
            return [customer_from_item(item) for item in islice(found, first + 1)]

        customers = await self._client.run(fetch, what="customer list")
        return _page(customers, first, lambda c: encode_cursor("customers", [c.id]))

    async def _list_segment(
        self, first: int, after: str | None, search: str | None, segment: SegmentCode
    ) -> Page[Customer]:
        model = self._tables.customer
        condition = "#segment = :segment"
        values: dict[str, Any] = {":segment": {"S": segment.value}}
        if after is not None:
            (after_id,) = _position("customers", after, 1)
            condition += " AND customer_id > :after"
            values[":after"] = {"S": after_id}
        query: dict[str, Any] = {
            "TableName": model.Meta.table_name,
            "IndexName": "by_segment",
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#segment": "segment"},
            "ExpressionAttributeValues": values,
            "Limit": first + 1 if not search else 500,
        }
        if search:
            query["FilterExpression"] = "contains(search_key, :search)"
            values[":search"] = {"S": search.lower()}

        def fetch() -> list[Customer]:
            found: list[dict[str, Any]] = []
            start: dict[str, Any] | None = None
            while len(found) <= first:
                extra = {"ExclusiveStartKey": start} if start else {}
                response = self._client.api.query(**query, **extra)
                found.extend(response.get("Items", []))
                start = response.get("LastEvaluatedKey")
                if not start:
                    break
            return [customer_from_item(model.from_raw_data(item)) for item in found[: first + 1]]

        customers = await self._client.run(fetch, what="customer list by segment")
        return _page(customers, first, lambda c: encode_cursor("customers", [c.id]))

    async def set_consent(self, customer_id: str, consent: Consent, event: DomainEvent) -> Customer:
        model = self._tables.customer
        target = model(customer_pk(customer_id), CUSTOMER_SK)
        actions = [
            model.analytics.set(consent.analytics),
            model.ai_profiling.set(consent.ai_profiling),
            model.marketing.set(consent.marketing),
        ]
        update = Update(target, actions, model.pk.exists())
        try:
            await self._client.transact([self._event_put(event)], [update], what="consent write")
        except TransactionCancelled as e:
            if e.reasons[1] == _FAILED:
                raise NotFoundError("customer", customer_id, field="customerId") from e
            raise _busy(e.reasons) or ConflictError("the event id is taken") from e
        updated = await self.get(customer_id)
        if updated is None:
            raise NotFoundError("customer", customer_id, field="customerId")
        return updated

    async def count(self) -> int:
        """Counts the ``by_listing`` index's customer partition: reads all of it."""
        index = self._tables.customer.by_listing
        return await self._client.run(partial(index.count, CUSTOMER_LISTING), what="count")


def _email_taken() -> ConflictError:
    return ConflictError(
        "a customer with this email already exists", field="email", code="EMAIL_TAKEN"
    )


class DynamoProductStore(_Dynamo, ProductStore):
    async def upsert_many(self, products: Sequence[Product]) -> int:
        """Insert new products and replace changed ones (the last of repeated skus wins);
        returns how many were new or changed. Reads the current items first, so an unchanged
        catalogue costs reads only."""
        latest = list({p.sku: p for p in products}.values())
        if not latest:
            return 0
        current = {
            p.sku: p
            for p in map(
                product_from_item,
                await self._client.batch_get(
                    self._tables.product,
                    [(product_pk(p.sku), PRODUCT_SK) for p in latest],
                    what="product read",
                ),
            )
        }
        changed = [p for p in latest if current.get(p.sku) != p]
        items = [product_item(self._tables, p) for p in changed]
        for item in items:
            check_item_size(item, what="a product", field="products")
        await self._client.batch_put(items, what="product write")
        return len(changed)

    async def get(self, sku: str) -> Product | None:
        item = await self._client.run(
            partial(_get, self._tables.product, product_pk(sku), PRODUCT_SK), what="product read"
        )
        return product_from_item(item) if item is not None else None

    async def get_many(self, skus: Sequence[str]) -> dict[str, Product]:
        keys = [(product_pk(s), PRODUCT_SK) for s in dict.fromkeys(skus)]
        items = await self._client.batch_get(self._tables.product, keys, what="product read")
        return {item.sku: product_from_item(item) for item in items}

    async def list(self, *, first: int, after: str | None, category: str | None) -> Page[Product]:
        check_page_size(first)
        model = self._tables.product
        after_sku = _position("products", after, 1)[0] if after is not None else None

        def fetch() -> list[Product]:
            if category is None:
                start = None
                if after_sku is not None:
                    pk = product_pk(after_sku)
                    start = _key(pk, PRODUCT_SK, PRODUCT_LISTING, after_sku)
                found = model.by_listing.query(
                    PRODUCT_LISTING, last_evaluated_key=start, limit=first + 1
                )
            else:
                condition = model.sku > after_sku if after_sku is not None else None
                found = model.by_category.query(
                    category, range_key_condition=condition, limit=first + 1
                )
            return [product_from_item(item) for item in islice(found, first + 1)]

        products = await self._client.run(fetch, what="product list")
        return _page(products, first, lambda p: encode_cursor("products", [p.sku]))

    async def count(self) -> int:
        index = self._tables.product.by_listing
        return await self._client.run(partial(index.count, PRODUCT_LISTING), what="count")


class DynamoPurchaseStore(_Dynamo, PurchaseStore):
    async def add(
        self, purchase: Purchase, event: DomainEvent, claim: IdempotencyClaim | None
    ) -> None:
        """The claim, the purchase, its id guard and its event in one TransactWriteItems, with a
        ClientRequestToken derived from the purchase id."""
        tables = self._tables
        item = purchase_item(tables, purchase)
        check_item_size(item, what="the basket", field="lines")
        puts = self._claim_put(claim)
        item_at = len(puts)
        puts.append(Put(item, tables.purchase.pk.does_not_exist()))
        puts.append(Put(purchase_id_item(tables, item), tables.purchase_id.pk.does_not_exist()))
        puts.append(self._event_put(event))
        taken = ConflictError(f"purchase id {purchase.id!r} is taken", code="ID_TAKEN")
        try:
            await self._client.transact(
                puts, token=_request_token("purchase", purchase.id), what="purchase write"
            )
        except TransactionCancelled as e:
            reasons = e.reasons
            if claim is not None and reasons[0] == _FAILED:
                raise await self._claim_conflict(claim) from e
            if _FAILED in reasons[item_at : item_at + 2]:
                raise taken from e
            raise _busy(reasons) or ConflictError("the event id is taken") from e
        except RequestTokenReused as e:
            # The same purchase id sent again with other content within DynamoDB's ten-minute
            # token window: a different purchase under a taken id.
            if claim is not None:
                existing = await self._client.run(
                    partial(_get, tables.claim, claim.scope, claim.key), what="claim read"
                )
                if existing is not None:
                    raise DuplicateRequestError(claim_from_item(existing)) from e
            raise taken from e

    async def add_many(self, purchases: Sequence[Purchase], events: Sequence[DomainEvent]) -> int:
        """Insert the purchases whose ids are new, each with its event; returns how many were
        new. Reads the id guards of the input first (one consistent read per purchase, 100 per
        call), then writes with BatchWriteItem: the events, then the purchases, then their id
        guards, which is what marks a purchase as known. A failure part-way is reported
        (BatchWriteFailed) and calling again with the same input completes it: no purchase is
        written twice. An event may then be written twice under two ids; consumers also
        de-duplicate PurchaseRecorded by purchase id."""
        if len(purchases) != len(events):
            raise ValueError(f"{len(purchases)} purchases but {len(events)} events")
        tables = self._tables
        pairs = _fresh(list(zip(purchases, events, strict=True)), lambda p: p[0].id)
        if not pairs:
            return 0
        known = {
            guard.pk
            for guard in await self._client.batch_get(
                tables.purchase_id,
                [(purchase_id_pk(p.id), PURCHASE_ID_SK) for p, _ in pairs],
                what="purchase read",
            )
        }
        new = [(p, e) for p, e in pairs if purchase_id_pk(p.id) not in known]
        if not new:
            return 0
        items = [purchase_item(tables, p) for p, _ in new]
        event_items = [event_item(tables, e, i) for i, (_, e) in enumerate(new)]
        for item in items:
            check_item_size(item, what="a basket", field="lines")
        for event in event_items:
            check_item_size(event, what="a basket's event", field="lines")
        await self._client.batch_put(event_items, what="event write")
        await self._client.batch_put(items, what="purchase write")
        await self._client.batch_put(
            [purchase_id_item(tables, item) for item in items], what="purchase write"
        )
        return len(new)

    async def get(self, purchase_id: str) -> Purchase | None:
        tables = self._tables

        def fetch() -> Purchase | None:
            guard = _get(tables.purchase_id, purchase_id_pk(purchase_id), PURCHASE_ID_SK)
            if guard is None:
                return None
            item = _get(tables.purchase, customer_pk(guard.customer_id), guard.purchase_sk)
            return purchase_from_item(item) if item is not None else None

        return await self._client.run(fetch, what="purchase read")

    async def list_for_customers(
        self, requests: Sequence[PurchasePageRequest]
    ) -> list[Page[Purchase]]:
        """One Query per request (the customer's partition read backwards from the cursor),
        the queries in parallel, bounded by the pool."""
        starts: list[dict[str, dict[str, Any]] | None] = []
        for request in requests:
            check_page_size(request.first)
            if request.after is None:
                starts.append(None)
            else:
                at, purchase_id = _position("purchases", request.after, 2)
                starts.append(_key(customer_pk(request.customer_id), purchase_sk(at, purchase_id)))
        pages = [
            self._client.run(partial(self._page, request, start), what="purchase list")
            for request, start in zip(requests, starts, strict=True)
        ]
        return list(await asyncio.gather(*pages))

    def _page(
        self, request: PurchasePageRequest, start: dict[str, dict[str, Any]] | None
    ) -> Page[Purchase]:
        model = self._tables.purchase
        found = model.query(
            customer_pk(request.customer_id),
            range_key_condition=model.sk.startswith(PURCHASE_PREFIX),
            scan_index_forward=False,
            consistent_read=True,
            last_evaluated_key=start,
            limit=request.first + 1,
        )
        purchases = [purchase_from_item(item) for item in islice(found, request.first + 1)]
        return _page(
            purchases,
            request.first,
            lambda p: encode_cursor("purchases", [iso(p.purchased_at), p.id]),
        )

    async def count(self) -> int:
        """Scans the main table for purchase-id guards: reads all of it (an operator's
        figure, not a request-path one)."""
        model = self._tables.purchase_id
        condition = model.pk.startswith("PURCHASE#") & (model.sk == PURCHASE_ID_SK)

        def scan() -> int:
            found = model.scan(filter_condition=condition, attributes_to_get=["pk"])
            return sum(1 for _ in found)

        return await self._client.run(scan, what="count")
