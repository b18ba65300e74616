"""Consumer checkpoints in DynamoDB: one item per (consumer, shard).

An item holds the sequence number of the last record acknowledged, whether the shard's end has
been acknowledged (its children may then be read) and the ids of the most recent events seen on
it, which de-duplicate events published twice across a restart. ``checkpoint_table_definition``
is what ``omnix init`` creates; ``CheckpointTable.ensure`` creates it on first use otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from adapters.kinesis.errors import AWS_ERRORS, error_code, unavailable
from domain.errors import StoreUnavailableError

TABLE_READY_TIMEOUT = 60.0


class DynamoClient(Protocol):
    async def create_table(self, **kwargs: Any) -> dict[str, Any]: ...
    async def describe_table(self, **kwargs: Any) -> dict[str, Any]: ...
    async def put_item(self, **kwargs: Any) -> dict[str, Any]: ...
    async def query(self, **kwargs: Any) -> dict[str, Any]: ...


def checkpoint_table_definition(name: str) -> dict[str, Any]:
    """CreateTable arguments for the checkpoint table (on-demand billing)."""
    return {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": "consumer", "AttributeType": "S"},
            {"AttributeName": "shard", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "consumer", "KeyType": "HASH"},
            {"AttributeName": "shard", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


@dataclass(frozen=True, slots=True)
class Checkpoint:
    shard: str
    sequence: str | None = None
    finished: bool = False
    recent_ids: tuple[str, ...] = field(default=())


async def ensure_table(client: DynamoClient, name: str) -> None:
    """Create the table unless it exists, and wait until it is ACTIVE. Safe to run concurrently."""
    try:
        await client.create_table(**checkpoint_table_definition(name))
    except ClientError as e:
        if error_code(e) != "ResourceInUseException":
            raise unavailable(f"creating DynamoDB table {name}", e) from e
    except AWS_ERRORS as e:
        raise unavailable(f"creating DynamoDB table {name}", e) from e
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TABLE_READY_TIMEOUT
    while True:
        try:
            described = await client.describe_table(TableName=name)
        except AWS_ERRORS as e:
            raise unavailable(f"describing DynamoDB table {name}", e) from e
        if described["Table"].get("TableStatus") == "ACTIVE":
            return
        if loop.time() > deadline:
            raise StoreUnavailableError(f"DynamoDB table {name} is not ACTIVE after 60 s")
        await asyncio.sleep(0.5)


class CheckpointTable:
    def __init__(self, client: DynamoClient, name: str) -> None:
        self._client = client
        self.name = name

    async def ensure(self) -> None:
        await ensure_table(self._client, self.name)

    async def load(self, consumer: str) -> dict[str, Checkpoint]:
        """Every shard checkpoint of ``consumer``, by shard id."""
        found: dict[str, Checkpoint] = {}
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.name,
                "KeyConditionExpression": "#c = :c",
                "ExpressionAttributeNames": {"#c": "consumer"},
                "ExpressionAttributeValues": {":c": {"S": consumer}},
                "ConsistentRead": True,
            }
            if start is not None:
                kwargs["ExclusiveStartKey"] = start
            try:
                page = await self._client.query(**kwargs)
            except AWS_ERRORS as e:
                raise unavailable(f"reading checkpoints from {self.name}", e) from e
            for item in page.get("Items", []):
                checkpoint = _from_item(item)
                found[checkpoint.shard] = checkpoint
            start = page.get("LastEvaluatedKey")
            if not start:
                return found

    async def save(self, consumer: str, checkpoint: Checkpoint) -> None:
        item: dict[str, Any] = {
            "consumer": {"S": consumer},
            "shard": {"S": checkpoint.shard},
            "finished": {"BOOL": checkpoint.finished},
            "recent": {"S": " ".join(checkpoint.recent_ids)},
            "updated_at": {"S": datetime.now(UTC).isoformat()},
        }
        if checkpoint.sequence is not None:
            item["sequence"] = {"S": checkpoint.sequence}
        try:
            await self._client.put_item(TableName=self.name, Item=item)
        except AWS_ERRORS as e:
            raise unavailable(f"saving a checkpoint to {self.name}", e) from e


def _from_item(item: dict[str, Any]) -> Checkpoint:
    recent = item.get("recent", {}).get("S", "")
    return Checkpoint(
        shard=item["shard"]["S"],
        sequence=item["sequence"]["S"] if "sequence" in item else None,
        finished=bool(item.get("finished", {}).get("BOOL", False)),
        recent_ids=tuple(recent.split()) if recent else (),
    )


def merge_recent(windows: Sequence[tuple[str, ...]], size: int) -> tuple[str, ...]:
    """The newest ``size`` ids of several windows (parents of a shard), oldest first."""
    merged: dict[str, None] = {}
    for window in windows:
        for event_id in window:
            merged[event_id] = None
    ids = tuple(merged)
    return ids[-size:] if size else ()
