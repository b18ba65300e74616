"""Anomalies and insights on DynamoDB, in the main table.

**The order of acceptance.** Replays (``after(position)``) need a total order in which a reader
never sees position n+1 while n is still to come. Each store keeps a counter item
(``SEQUENCE#ANOMALY`` / ``SEQUENCE``): a write reads it (n), numbers its new items n+1..n+k and
sets it to n+k *in the same TransactWriteItems*, on the condition that it still reads n. Writers
are therefore serialised by the counter: positions are dense, commit order is position order,
and a write that lost the race is cancelled (nothing written) and numbered again. Readers read
the counter first and never look past it, so they see only what has committed. The items in
order live in partitions of 10,000 positions (``ANOMALIES#<position // 10000>`` / position as 20
digits), read with consistent Queries: a page touches one partition, rarely two, and no
partition grows without bound. The counter is one hot key (~1,000 writes a second); anomalies
arrive far below that, up to 32 per transaction, written by one processor per deployment.

A per-day partition with a time-and-id sort key was the alternative: no counter, but the API's
positions are integers shared with the SQLite store, and time order between writers depends on
their clocks, so a reader could pass an item that commits later with an earlier time.

Items per anomaly (one transaction with its AnomalyDetected event in the outbox):

| pk | sk | what |
|---|---|---|
| ``ANOMALY#<id>`` | ``ANOMALY`` | the anomaly by id; ``attribute_not_exists``: one per dedup key |
| ``ANOMALIES#<block>`` | position | the anomaly in acceptance order, with severity and customer |
| ``DETECTOR_STATE#<name>`` | ``STATE`` | a detector's state, written with the anomalies |

Items per insight (one transaction with its InsightGenerated event):

| pk | sk | what |
|---|---|---|
| ``INSIGHT#<id>`` | ``INSIGHT`` | the insight by id; ``attribute_not_exists`` |
| ``ANOMALY#<anomaly>`` | ``INSIGHT`` | the anomaly's insight; ``attribute_not_exists`` |
| ``CUSTOMER#<id>`` | ``INSIGHT#<position>`` | the customer's insights (newest first: backwards) |
| ``INSIGHTS#<block>`` | position | every insight in acceptance order |

Anomaly ids follow from dedup keys (``domain.anomalies.anomaly_id``), so one item per id is one
per key. A batch larger than one transaction is written in several, each atomic with its events
(the detector state goes with the last): a crash between them leaves the first stored, and the
batch handled again finds them stored and writes the rest.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from adapters.dynamodb.client import BATCH_ATTEMPTS, DynamoClient, backoff, error_code, translate
from adapters.dynamodb.items import MAX_ITEM_BYTES, customer_pk, event_item, iso
from domain.anomalies import (
    Anomaly,
    Insight,
    Severity,
    anomaly_detected,
    anomaly_from_payload,
    anomaly_id,
    anomaly_payload,
    insight_from_payload,
    insight_generated,
    insight_payload,
)
from domain.errors import StoreUnavailableError, ValidationError
from domain.events import DomainEvent
from domain.pagination import Page, check_page_size, decode_cursor, encode_cursor
from domain.ports import AnomalyStore, InsightStore

BLOCK = 10_000
"""Positions per ordered partition."""
ANOMALIES_PER_WRITE = 32  # 3 items each, plus the counter and the state: within 100 a call
INSIGHTS_PER_WRITE = 19  # 5 items each, plus the counter
WRITE_ATTEMPTS = 8
SINCE_SLACK = timedelta(hours=1)
"""``recent(since=)`` reads newest first and stops at an anomaly detected this long before
``since``: detection times follow the order of acceptance (the writer stamps them as it
stores), up to clock differences between writers far below this."""
ITEM_HEADROOM = 1024  # keys and attribute names beside the body
_CONTENTION = {"ConditionalCheckFailed", "TransactionConflict"}


def _pad(position: int) -> str:
    return f"{position:020d}"


def _body(payload: dict[str, Any], what: str) -> str:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    if len(body.encode()) + ITEM_HEADROOM > MAX_ITEM_BYTES:
        raise ValidationError(
            f"{what} is too large to store (the limit is {MAX_ITEM_BYTES:,} bytes an item)",
            field="evidence" if what == "an anomaly" else "text",
            code="TOO_LARGE",
        )
    return body


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _position(cursor: str | None, kind: str) -> int | None:
    if cursor is None:
        return None
    value = decode_cursor(kind, cursor)
    if len(value) != 1 or not isinstance(value[0], int) or value[0] < 1:
        raise ValidationError("malformed cursor", field="after", code="INVALID_CURSOR")
    return value[0]


class _Contention(Exception):
    """A write lost the race for the counter (or a guard): read again and renumber."""


async def _lost_race(failures: int, what: str) -> None:
    """Back off before numbering again; after WRITE_ATTEMPTS lost races, give up."""
    if failures >= WRITE_ATTEMPTS:
        raise StoreUnavailableError(f"{what} could not be stored: the write kept conflicting")
    await asyncio.sleep(backoff(failures))


class _Table:
    """Raw calls on the main table and the outbox, as the other main-table stores make them."""

    def __init__(self, client: DynamoClient) -> None:
        self.client = client
        self.name = client.tables.main.Meta.table_name

    async def call(self, operation: str, what: str, **kwargs: Any) -> dict[str, Any]:
        response: dict[str, Any] = await self.client.run(
            partial(getattr(self.client.api, operation), **kwargs), what=what
        )
        return response

    async def get_many(
        self, keys: Sequence[tuple[str, str]], what: str
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The items that exist among ``keys``, read consistently (100 a call)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(wanted), 100):
            request: dict[str, Any] = {
                self.name: {
                    "Keys": [_key(pk, sk) for pk, sk in wanted[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(BATCH_ATTEMPTS):
                if attempt:
                    await asyncio.sleep(backoff(attempt))
                response = await self.call("batch_get_item", what, RequestItems=request)
                for item in response.get("Responses", {}).get(self.name, []):
                    found[(item["pk"]["S"], item["sk"]["S"])] = item
                request = {t: r for t, r in response.get("UnprocessedKeys", {}).items() if r}
                if not request:
                    break
            else:
                raise StoreUnavailableError(f"DynamoDB kept {what} unprocessed; retry shortly")
        return found

    def put(self, item: dict[str, Any], *, new: bool = True) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.name, "Item": item}
        if new:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        return {"Put": put}

    def event(self, event: DomainEvent) -> dict[str, Any]:
        item = event_item(self.client.tables, event)
        return {
            "Put": {
                "TableName": item.Meta.table_name,
                "Item": item.serialize(),
                "ConditionExpression": "attribute_not_exists(event_id)",
            }
        }

    async def transact(self, items: list[dict[str, Any]], what: str) -> None:
        """One TransactWriteItems; a cancellation by a condition or a conflicting transaction
        is ``_Contention`` (nothing was written)."""
        try:
            await self.client.run(
                partial(self.client.api.transact_write_items, TransactItems=items),
                what=what,
                raw=True,
            )
        except ClientError as e:
            code = error_code(e)
            if code == "TransactionCanceledException":
                reasons = {r.get("Code") for r in e.response.get("CancellationReasons", [])}
                if reasons & _CONTENTION:
                    raise _Contention() from e
            if code in {"TransactionConflictException", "TransactionInProgressException"}:
                raise _Contention() from e
            raise translate(e, what) from e
        except BotoCoreError as e:
            raise translate(e, what) from e


class _Sequence:
    """A store's order of acceptance: the counter and the ordered partitions."""

    def __init__(self, table: _Table, name: str, partition: str) -> None:
        self._table = table
        self._counter = _key(f"SEQUENCE#{name}", "SEQUENCE")
        self._partition = partition

    def key(self, position: int) -> dict[str, Any]:
        return _key(f"{self._partition}#{position // BLOCK}", _pad(position))

    async def head(self) -> int:
        """The last position committed (0: none)."""
        response = await self._table.call(
            "get_item",
            "sequence read",
            TableName=self._table.name,
            Key=self._counter,
            ConsistentRead=True,
        )
        item = response.get("Item")
        return int(item["position"]["N"]) if item else 0

    def advance(self, was: int, to: int) -> dict[str, Any]:
        """The transaction item moving the counter from ``was`` to ``to``, only if it is still
        at ``was``."""
        update: dict[str, Any] = {
            "TableName": self._table.name,
            "Key": self._counter,
            "UpdateExpression": "SET #p = :to",
            "ExpressionAttributeNames": {"#p": "position"},
            "ExpressionAttributeValues": {":to": {"N": str(to)}},
        }
        if was == 0:
            update["ConditionExpression"] = "attribute_not_exists(#p)"
        else:
            update["ConditionExpression"] = "#p = :was"
            update["ExpressionAttributeValues"][":was"] = {"N": str(was)}
        return {"Update": update}

    async def read(
        self, *, after: int, until: int, forward: bool, page: int
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of the items positioned in (after, until], in order (``forward``) or newest
        first; partition by partition."""
        if until <= after:
            return
        blocks = range(after // BLOCK, until // BLOCK + 1)
        for block in blocks if forward else reversed(blocks):
            low, high = max(after + 1, block * BLOCK), min(until, (block + 1) * BLOCK - 1)
            if low > high:
                continue
            query: dict[str, Any] = {
                "TableName": self._table.name,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
                "ExpressionAttributeValues": {
                    ":pk": {"S": f"{self._partition}#{block}"},
                    ":low": {"S": _pad(low)},
                    ":high": {"S": _pad(high)},
                },
                "ConsistentRead": True,
                "ScanIndexForward": forward,
                "Limit": page,
            }
            start: dict[str, Any] | None = None
            while True:
                extra = {"ExclusiveStartKey": start} if start else {}
                response = await self._table.call("query", "ordered read", **query, **extra)
                yield response.get("Items", [])
                start = response.get("LastEvaluatedKey")
                if not start:
                    break


def _anomaly(item: dict[str, Any]) -> Anomaly:
    return anomaly_from_payload(json.loads(item["body"]["S"]))


def _insight(item: dict[str, Any]) -> Insight:
    return insight_from_payload(json.loads(item["body"]["S"]))


class DynamoAnomalyStore(AnomalyStore):
    def __init__(self, client: DynamoClient) -> None:
        self._table = _Table(client)
        self._sequence = _Sequence(self._table, "ANOMALY", "ANOMALIES")

    async def record(
        self, anomalies: Sequence[Anomaly], *, state: tuple[str, str] | None = None
    ) -> list[Anomaly]:
        if not anomalies and state is None:
            return []
        first: dict[str, Anomaly] = {}
        for a in anomalies:
            if a.id != anomaly_id(a.dedup_key):
                raise ValidationError("an anomaly's id must follow from its dedup key", field="id")
            first.setdefault(a.id, a)
        stored: dict[str, Anomaly] = {}
        state_due = state is not None
        failures = 0
        while True:
            stored.update(await self.get_many([i for i in first if i not in stored]))
            new = [a for i, a in first.items() if i not in stored]
            if not new and not state_due:
                break
            chunk, last = new[:ANOMALIES_PER_WRITE], len(new) <= ANOMALIES_PER_WRITE
            head = await self._sequence.head() if chunk else 0
            numbered = [replace(a, position=head + n) for n, a in enumerate(chunk, start=1)]
            items = self._items(numbered)
            if numbered:
                items.append(self._sequence.advance(head, head + len(numbered)))
            if last and state is not None:
                items.append(self._table.put(self._state_item(*state), new=False))
            try:
                await self._table.transact(items, "anomaly write")
            except _Contention:
                failures += 1
                await _lost_race(failures, "anomalies")
                continue
            stored.update((a.id, a) for a in numbered)
            state_due = state_due and not last
        return [stored[a.id] for a in anomalies]

    def _items(self, anomalies: Sequence[Anomaly]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for a in anomalies:
            body = _body(anomaly_payload(a), "an anomaly")
            ordered = {
                **self._sequence.key(a.position),
                "body": {"S": body},
                "severity": {"N": str(int(a.severity))},
                "detected_at": {"S": iso(a.detected_at)},
            }
            if a.customer_id is not None:
                ordered["customer"] = {"S": a.customer_id}
            by_id = {**_key(f"ANOMALY#{a.id}", "ANOMALY"), "body": {"S": body}}
            items += [
                self._table.put(by_id),
                self._table.put(ordered),
                self._table.event(anomaly_detected(a)),
            ]
        return items

    @staticmethod
    def _state_item(name: str, body: str) -> dict[str, Any]:
        return {**_key(f"DETECTOR_STATE#{name}", "STATE"), "body": {"S": body}}

    async def get_many(self, anomaly_ids: Sequence[str]) -> dict[str, Anomaly]:
        keys = [(f"ANOMALY#{i}", "ANOMALY") for i in anomaly_ids]
        found = await self._table.get_many(keys, "anomaly read")
        return {a.id: a for a in map(_anomaly, found.values())}

    async def recent(
        self,
        *,
        first: int,
        after: str | None,
        min_severity: Severity | None,
        since: datetime | None,
    ) -> Page[Anomaly]:
        check_page_size(first)
        if since is not None and since.tzinfo is None:
            raise ValidationError("since needs a time zone", field="since")
        before = _position(after, "anomaly")
        until = before - 1 if before is not None else await self._sequence.head()
        stop = iso(since - SINCE_SLACK) if since is not None else None
        found: list[Anomaly] = []
        async for items in self._sequence.read(after=0, until=until, forward=False, page=100):
            for item in items:
                if stop is not None and item["detected_at"]["S"] < stop:
                    return _page(found, first)
                if min_severity is not None and int(item["severity"]["N"]) < min_severity:
                    continue
                a = _anomaly(item)
                if since is None or a.detected_at >= since:
                    found.append(a)
            if len(found) > first:
                break
        return _page(found, first)

    async def after(
        self,
        position: int,
        *,
        limit: int,
        min_severity: Severity | None = None,
        customer_id: str | None = None,
    ) -> list[Anomaly]:
        if limit < 1:
            return []
        head = await self._sequence.head()
        page = limit if min_severity is None and customer_id is None else 100
        found: list[Anomaly] = []
        async for items in self._sequence.read(
            after=max(position, 0), until=head, forward=True, page=page
        ):
            for item in items:
                if min_severity is not None and int(item["severity"]["N"]) < min_severity:
                    continue
                if customer_id is not None and item.get("customer", {}).get("S") != customer_id:
                    continue
                found.append(_anomaly(item))
                if len(found) == limit:
                    return found
        return found

    async def load_state(self, name: str) -> str | None:
        response = await self._table.call(
            "get_item",
            "detector state read",
            TableName=self._table.name,
            Key=_key(f"DETECTOR_STATE#{name}", "STATE"),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return str(item["body"]["S"]) if item else None


def _page(found: list[Anomaly], first: int) -> Page[Anomaly]:
    items = found[:first]
    end = encode_cursor("anomaly", [items[-1].position]) if items else None
    return Page(items, end, len(found) > first)


class DynamoInsightStore(InsightStore):
    def __init__(self, client: DynamoClient) -> None:
        self._table = _Table(client)
        self._sequence = _Sequence(self._table, "INSIGHT", "INSIGHTS")

    async def record(self, insights: Sequence[Insight]) -> list[Insight]:
        if not insights:
            return []
        by_id: dict[str, Insight] = {}
        by_anomaly: dict[str, Insight] = {}

        def known(i: Insight) -> Insight | None:
            return by_id.get(i.id) or by_anomaly.get(i.anomaly_id or "")

        failures = 0
        while True:
            ids, anomalies = await self._known([i for i in insights if known(i) is None])
            by_id.update(ids)
            by_anomaly.update(anomalies)
            new: list[Insight] = []
            taken: set[str] = set()
            for i in insights:
                claims = {i.id, f"anomaly:{i.anomaly_id}"} if i.anomaly_id else {i.id}
                if known(i) is None and not claims & taken:
                    new.append(i)
                    taken |= claims
            if not new:
                break
            chunk = new[:INSIGHTS_PER_WRITE]
            head = await self._sequence.head()
            numbered = [replace(i, position=head + n) for n, i in enumerate(chunk, start=1)]
            items = self._items(numbered)
            items.append(self._sequence.advance(head, head + len(numbered)))
            try:
                await self._table.transact(items, "insight write")
            except _Contention:
                failures += 1
                await _lost_race(failures, "insights")
                continue
            for i in numbered:
                by_id[i.id] = i
                if i.anomaly_id is not None:
                    by_anomaly[i.anomaly_id] = i
        return [stored for i in insights if (stored := known(i)) is not None]

    async def _known(
        self, insights: Sequence[Insight]
    ) -> tuple[dict[str, Insight], dict[str, Insight]]:
        """Stored insights among these ids, and stored insights of these anomalies."""
        keys = [(f"INSIGHT#{i.id}", "INSIGHT") for i in insights]
        keys += [(f"ANOMALY#{i.anomaly_id}", "INSIGHT") for i in insights if i.anomaly_id]
        found = await self._table.get_many(keys, "insight read")
        by_id: dict[str, Insight] = {}
        by_anomaly: dict[str, Insight] = {}
        for (pk, _), item in found.items():
            if pk.startswith("INSIGHT#"):
                by_id[pk.removeprefix("INSIGHT#")] = _insight(item)
            else:
                by_anomaly[pk.removeprefix("ANOMALY#")] = _insight(item)
        return by_id, by_anomaly

    def _items(self, insights: Sequence[Insight]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for i in insights:
            body = {"body": {"S": _body(insight_payload(i), "an insight")}}
            items.append(self._table.put({**_key(f"INSIGHT#{i.id}", "INSIGHT"), **body}))
            if i.anomaly_id is not None:
                by_anomaly = _key(f"ANOMALY#{i.anomaly_id}", "INSIGHT")
                items.append(self._table.put({**by_anomaly, **body}))
            by_customer = _key(customer_pk(i.customer_id), f"INSIGHT#{_pad(i.position)}")
            ordered = {**self._sequence.key(i.position), **body}
            ordered["customer"] = {"S": i.customer_id}
            items += [
                self._table.put({**by_customer, **body}),
                self._table.put(ordered),
                self._table.event(insight_generated(i)),
            ]
        return items

    async def for_anomalies(self, anomaly_ids: Sequence[str]) -> dict[str, Insight]:
        keys = [(f"ANOMALY#{a}", "INSIGHT") for a in anomaly_ids]
        found = await self._table.get_many(keys, "insight read")
        return {pk.removeprefix("ANOMALY#"): _insight(item) for (pk, _), item in found.items()}

    async def for_customer(
        self, customer_id: str, *, first: int, after: str | None
    ) -> Page[Insight]:
        check_page_size(first)
        before = _position(after, "insight")
        high = f"INSIGHT#{_pad(before - 1)}" if before is not None else "INSIGHT#~"
        items = await self._customer_query(
            customer_id, low="INSIGHT#", high=high, forward=False, limit=first + 1
        )
        page = [_insight(item) for item in items[:first]]
        end = encode_cursor("insight", [page[-1].position]) if page else None
        return Page(page, end, len(items) > first)

    async def after(
        self, position: int, *, limit: int, customer_id: str | None = None
    ) -> list[Insight]:
        if limit < 1:
            return []
        head = await self._sequence.head()
        if head <= position:
            return []
        if customer_id is not None:
            low, high = f"INSIGHT#{_pad(max(position, 0) + 1)}", f"INSIGHT#{_pad(head)}"
            items = await self._customer_query(
                customer_id, low=low, high=high, forward=True, limit=limit
            )
            return [_insight(item) for item in items]
        found: list[Insight] = []
        async for items in self._sequence.read(
            after=max(position, 0), until=head, forward=True, page=limit
        ):
            found += map(_insight, items)
            if len(found) >= limit:
                break
        return found[:limit]

    async def _customer_query(
        self, customer_id: str, *, low: str, high: str, forward: bool, limit: int
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while len(items) < limit:
            extra = {"ExclusiveStartKey": start} if start else {}
            response = await self._table.call(
                "query",
                "insights read",
                TableName=self._table.name,
                KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
                ExpressionAttributeValues={
                    ":pk": {"S": customer_pk(customer_id)},
                    ":low": {"S": low},
                    ":high": {"S": high},
                },
                ConsistentRead=True,
                ScanIndexForward=forward,
                Limit=limit - len(items),
                **extra,
            )
            items += response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        return items
