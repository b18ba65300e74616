"""Segments on DynamoDB, in the main table.

A customer's segment lives on the customer item itself (``CUSTOMER#<id>`` / ``CUSTOMER``):
``segment`` (the key of the ``by_segment`` GSI, which lists a segment's customers and which the
sweep reads segment by segment), ``segment_at`` (when it was assigned: the optimistic-locking
token) and ``segment_body`` (the assignment and its behaviour as JSON). A change of segment is
one TransactWriteItems: the conditional update of the customer item, the migration item and the
SegmentChanged event in the outbox; a change within a segment is one conditional UpdateItem.

Migrations are items ``SEGMENT_MIGRATIONS`` / ``<at>#<id>``: one partition read in time order
(a partition takes about 1,000 writes a second, which bounds how fast a refit of a large base
can record migrations; docs/segments.md). Models are ``SEGMENT_MODEL`` / ``<fitted at>#<version>``
and the KPI summary is ``SEGMENT_SUMMARY`` / ``CURRENT``.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from adapters.dynamodb.client import DynamoClient, error_code, translate
from adapters.dynamodb.items import CUSTOMER_SK, customer_pk, event_item, iso
from domain.errors import StoreUnavailableError, ValidationError
from domain.pagination import Page, check_page_size, decode_cursor, encode_cursor
from domain.ports import SegmentStore
from domain.segments import (
    CustomerSegment,
    MigrationReason,
    SegmentChange,
    SegmentCode,
    SegmentMigration,
    SegmentModel,
    SegmentSummary,
)

MODEL_PK = "SEGMENT_MODEL"
MIGRATIONS_PK = "SEGMENT_MIGRATIONS"
SUMMARY_KEY = {"pk": {"S": "SEGMENT_SUMMARY"}, "sk": {"S": "CURRENT"}}
SEGMENT_ORDER: tuple[SegmentCode, ...] = tuple(SegmentCode)
_CONDITION_FAILED = "ConditionalCheckFailed"


def _customer_key(customer_id: str) -> dict[str, Any]:
    return {"pk": {"S": customer_pk(customer_id)}, "sk": {"S": CUSTOMER_SK}}


def _migration_item(m: SegmentMigration) -> dict[str, Any]:
    return {
        "pk": {"S": MIGRATIONS_PK},
        "sk": {"S": f"{iso(m.at)}#{m.id}"},
        "migration_id": {"S": m.id},
        "customer_id": {"S": m.customer_id},
        "from_segment": {"S": m.from_segment.value},
        "to_segment": {"S": m.to_segment.value},
        "reason": {"S": m.reason.value},
        "model_version": {"S": m.model_version},
    }


def _migration(item: dict[str, Any]) -> SegmentMigration:
    return SegmentMigration(
        id=item["migration_id"]["S"],
        customer_id=item["customer_id"]["S"],
        from_segment=SegmentCode(item["from_segment"]["S"]),
        to_segment=SegmentCode(item["to_segment"]["S"]),
        at=datetime.fromisoformat(item["sk"]["S"].split("#", 1)[0]),
        reason=MigrationReason(item["reason"]["S"]),
        model_version=item["model_version"]["S"],
    )


def _record(item: dict[str, Any]) -> CustomerSegment:
    customer_id = item["pk"]["S"].removeprefix(customer_pk(""))
    return CustomerSegment.from_json(customer_id, item["segment_body"]["S"])


def _strings(cursor: str, kind: str) -> list[str]:
    position = decode_cursor(kind, cursor)
    if len(position) != 2 or not all(isinstance(part, str) for part in position):
        raise ValidationError("malformed cursor", field="after", code="INVALID_CURSOR")
    return position


class DynamoSegmentStore(SegmentStore):
    def __init__(self, client: DynamoClient) -> None:
        self._client = client
        self._table = client.tables.main.Meta.table_name

    async def _call(self, operation: str, what: str, **kwargs: Any) -> dict[str, Any]:
        response: dict[str, Any] = await self._client.run(
            partial(getattr(self._client.api, operation), TableName=self._table, **kwargs),
            what=what,
        )
        return response

    # --- models and summary -----------------------------------------------------------------

    async def save_model(self, model: SegmentModel) -> None:
        item = {
            "pk": {"S": MODEL_PK},
            "sk": {"S": f"{iso(model.fitted_at)}#{model.version}"},
            "body": {"B": zlib.compress(model.to_json().encode(), 6)},
        }
        await self._call("put_item", "segment model write", Item=item)

    async def current_model(self) -> SegmentModel | None:
        response = await self._call(
            "query",
            "segment model read",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": MODEL_PK}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = response.get("Items", [])
        return SegmentModel.from_json(zlib.decompress(items[0]["body"]["B"])) if items else None

    async def save_summary(self, summary: SegmentSummary) -> None:
        item = {**SUMMARY_KEY, "body": {"S": summary.to_json()}}
        await self._call("put_item", "segment summary write", Item=item)

    async def summary(self) -> SegmentSummary | None:
        response = await self._call(
            "get_item", "segment summary read", Key=SUMMARY_KEY, ConsistentRead=True
        )
        item = response.get("Item")
        return SegmentSummary.from_json(item["body"]["S"]) if item else None

    # --- customers' segments ----------------------------------------------------------------

    async def get_many(self, customer_ids: Sequence[str]) -> dict[str, CustomerSegment]:
        wanted = list(dict.fromkeys(customer_ids))
        found: dict[str, CustomerSegment] = {}
        for start in range(0, len(wanted), 100):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [_customer_key(c) for c in wanted[start : start + 100]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "pk, segment_body",
                }
            }
            for attempt in range(8):
                response = await self._client.run(
                    partial(self._client.api.batch_get_item, RequestItems=request),
                    what="segments read",
                )
                for item in response.get("Responses", {}).get(self._table, []):
                    if "segment_body" in item:
                        record = _record(item)
                        found[record.assignment.customer_id] = record
                request = {t: r for t, r in response.get("UnprocessedKeys", {}).items() if r}
                if not request:
                    break
                await asyncio.sleep(0.05 * 2**attempt)
            else:
                raise StoreUnavailableError("DynamoDB kept segment reads unprocessed")
        return {c: found[c] for c in customer_ids if c in found}

    async def scan(self, *, after: str | None, limit: int) -> Page[CustomerSegment]:
        """Segment by segment through the ``by_segment`` index, customers in id order."""
        segment_at, customer_after = 0, None
        if after is not None:
            code, customer_after = _strings(after, "segments")
            segment_at = SEGMENT_ORDER.index(SegmentCode(code))
        records: list[CustomerSegment] = []
        while segment_at < len(SEGMENT_ORDER) and len(records) <= limit:
            segment = SEGMENT_ORDER[segment_at]
            condition = "#segment = :segment"
            values: dict[str, Any] = {":segment": {"S": segment.value}}
            if customer_after is not None:
                condition += " AND customer_id > :after"
                values[":after"] = {"S": customer_after}
            start: dict[str, Any] | None = None
            while len(records) <= limit:
                extra = {"ExclusiveStartKey": start} if start else {}
                response = await self._call(
                    "query",
                    "segment scan",
                    IndexName="by_segment",
                    KeyConditionExpression=condition,
                    ExpressionAttributeNames={"#segment": "segment"},
                    ExpressionAttributeValues=values,
                    Limit=limit + 1 - len(records),
                    **extra,
                )
                records.extend(_record(i) for i in response.get("Items", []))
                start = response.get("LastEvaluatedKey")
                if not start:
                    break
            segment_at, customer_after = segment_at + 1, None
        page = records[:limit]
        return Page(
            items=page,
            end_cursor=(
                encode_cursor(
                    "segments",
                    [page[-1].assignment.segment.value, page[-1].assignment.customer_id],
                )
                if page
                else None
            ),
            has_next_page=len(records) > limit,
        )

    async def apply(self, changes: Sequence[SegmentChange]) -> list[SegmentChange]:
        results = await asyncio.gather(*(self._apply_one(c) for c in changes))
        return [c for c, ok in zip(changes, results, strict=True) if ok]

    async def _apply_one(self, change: SegmentChange) -> bool:
        a = change.record.assignment
        values: dict[str, Any] = {
            ":segment": {"S": a.segment.value},
            ":at": {"S": iso(a.assigned_at)},
            ":body": {"S": change.record.to_json()},
        }
        if change.expected is None:
            condition = "attribute_exists(pk) AND attribute_not_exists(segment_at)"
        else:
            condition = "segment_at = :was_at AND #segment = :was"
            values[":was_at"] = {"S": iso(change.expected.assigned_at)}
            values[":was"] = {"S": change.expected.segment.value}
        update = {
            "TableName": self._table,
            "Key": _customer_key(a.customer_id),
            "UpdateExpression": "SET #segment = :segment, segment_at = :at, segment_body = :body",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#segment": "segment"},
            "ExpressionAttributeValues": values,
        }
        api = self._client.api
        if change.migration is None:
            call = partial(api.update_item, **update)
        else:
            items: list[dict[str, Any]] = [{"Update": update}]
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _migration_item(change.migration),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
            if change.event is not None:
                event = event_item(self._client.tables, change.event)
                items.append(
                    {
                        "Put": {
                            "TableName": event.Meta.table_name,
                            "Item": event.serialize(),
                            "ConditionExpression": "attribute_not_exists(event_id)",
                        }
                    }
                )
            call = partial(api.transact_write_items, TransactItems=items)
        try:
            await self._client.run(call, what="segment write", raw=True)
        except ClientError as e:
            code = error_code(e)
            if code == "ConditionalCheckFailedException":
                return False
            if code == "TransactionCanceledException":
                reasons = [r.get("Code") for r in e.response.get("CancellationReasons", [])]
                if _CONDITION_FAILED in reasons:
                    return False
            raise translate(e, "segment write") from e
        except BotoCoreError as e:
            raise translate(e, "segment write") from e
        return True

    # --- migrations -------------------------------------------------------------------------

    async def migrations(
        self,
        *,
        first: int,
        after: str | None,
        from_segment: SegmentCode | None,
        to_segment: SegmentCode | None,
        since: datetime | None,
    ) -> Page[SegmentMigration]:
        check_page_size(first)
        values: dict[str, Any] = {":pk": {"S": MIGRATIONS_PK}}
        condition = "pk = :pk"
        lower = iso(since) if since is not None else None
        if after is not None:
            at, migration_id = _strings(after, "migrations")
            cursor_key = f"{at}#{migration_id}"
            if lower is None or cursor_key >= lower:
                condition += " AND sk > :after"
                values[":after"] = {"S": cursor_key}
                lower = None
        if lower is not None:
            condition += " AND sk >= :since"
            values[":since"] = {"S": lower}
        filters = []
        if from_segment is not None:
            filters.append("from_segment = :from")
            values[":from"] = {"S": from_segment.value}
        if to_segment is not None:
            filters.append("to_segment = :to")
            values[":to"] = {"S": to_segment.value}
        query: dict[str, Any] = {
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
            "Limit": first + 1 if not filters else 500,
        }
        if filters:
            query["FilterExpression"] = " AND ".join(filters)
        found: list[SegmentMigration] = []
        start: dict[str, Any] | None = None
        while len(found) <= first:
            extra = {"ExclusiveStartKey": start} if start else {}
            response = await self._call("query", "migrations read", **query, **extra)
            found.extend(_migration(i) for i in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        page = found[:first]
        return Page(
            items=page,
            end_cursor=encode_cursor("migrations", [iso(page[-1].at), page[-1].id])
            if page
            else None,
            has_next_page=len(found) > first,
        )

    async def migration_counts(
        self, *, since: datetime | None, until: datetime | None
    ) -> dict[tuple[SegmentCode, SegmentCode], int]:
        values: dict[str, Any] = {":pk": {"S": MIGRATIONS_PK}}
        condition = "pk = :pk"
        if since is not None and until is not None:
            condition += " AND sk BETWEEN :since AND :until"
            values[":since"] = {"S": iso(since)}
            values[":until"] = {"S": iso(until)}
        elif since is not None:
            condition += " AND sk >= :since"
            values[":since"] = {"S": iso(since)}
        elif until is not None:
            condition += " AND sk < :until"
            values[":until"] = {"S": iso(until)}
        counts: dict[tuple[SegmentCode, SegmentCode], int] = {}
        until_key = iso(until) if until is not None else None
        start: dict[str, Any] | None = None
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            response = await self._call(
                "query",
                "migration counts",
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ProjectionExpression="sk, from_segment, to_segment",
                **extra,
            )
            for item in response.get("Items", []):
                # BETWEEN is inclusive; "<at>#<id>" sorts after "<at>", so drop what is at until.
                if until_key is not None and item["sk"]["S"] >= until_key:
                    continue
                pair = (
                    SegmentCode(item["from_segment"]["S"]),
                    SegmentCode(item["to_segment"]["S"]),
                )
                counts[pair] = counts.get(pair, 0) + 1
            start = response.get("LastEvaluatedKey")
            if not start:
                return counts
