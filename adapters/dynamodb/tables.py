"""Creating and updating the tables (``omnix init``): idempotent, safe to run twice.

Each table is made to match its model: created with on-demand billing when missing, switched to
on-demand, given the indexes it lacks (one at a time, as DynamoDB requires), TTL enabled on
``expires_at`` where records expire, and point-in-time recovery enabled where the API allows it
(a server that refuses is reported, not fatal). Returns one line per thing done or checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.models import Model

from adapters.dynamodb.client import DynamoClient
from adapters.dynamodb.models import TTL_ATTRIBUTE
from domain.errors import StoreUnavailableError

WAIT_SECONDS = 600.0
POLL_SECONDS = 1.0


def _spec(model: type[Model]) -> dict[str, Any]:
    """CreateTable's arguments for a model's keys and indexes."""
    schema = model._get_schema()

    def keys(key_schema: Any) -> list[dict[str, str]]:
        return sorted(key_schema, key=lambda k: k["KeyType"] != "HASH")

    return {
        "AttributeDefinitions": schema["attribute_definitions"],
        "KeySchema": keys(schema["key_schema"]),
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index["index_name"],
                "KeySchema": keys(index["key_schema"]),
                "Projection": index["projection"],
            }
            for index in schema["global_secondary_indexes"]
        ],
    }


def _has_ttl(model: type[Model]) -> bool:
    return TTL_ATTRIBUTE in model.get_attributes()


class TableSetup:
    def __init__(self, client: DynamoClient) -> None:
        self._client = client
        self._api = client.api

    async def _call(self, operation: Callable[..., Any], what: str, **kwargs: Any) -> Any:
        return await self._client.run(partial(operation, **kwargs), what=what)

    async def _describe(self, name: str) -> dict[str, Any] | None:
        try:
            table: dict[str, Any] = (
                await self._client.run(
                    partial(self._api.describe_table, TableName=name), what="describe", raw=True
                )
            )["Table"]
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return table

    async def _wait_active(self, name: str, index: str | None = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while True:
            table = await self._describe(name)
            if table is not None and table.get("TableStatus") == "ACTIVE":
                indexes = table.get("GlobalSecondaryIndexes", [])
                if all(i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes):
                    return
            if loop.time() > deadline:
                what = f"index {index} of {name}" if index else name
                raise StoreUnavailableError(f"{what} did not become active in {WAIT_SECONDS:g}s")
            await asyncio.sleep(POLL_SECONDS)

    async def ensure(self) -> list[str]:
        done: list[str] = []
        for model in self._client.tables.schemas:
            name = model.Meta.table_name
            done += await self._ensure_table(name, _spec(model))
            if _has_ttl(model):
                done += await self._ensure_ttl(name)
            done += await self._ensure_pitr(name)
        return done

    async def _ensure_table(self, name: str, spec: dict[str, Any]) -> list[str]:
        table = await self._describe(name)
        if table is None:
            indexes = spec["GlobalSecondaryIndexes"]
            create = spec if indexes else {k: v for k, v in spec.items() if v is not indexes}
            await self._call(
                self._api.create_table,
                "create table",
                TableName=name,
                BillingMode="PAY_PER_REQUEST",
                **create,
            )
            await self._wait_active(name)
            names = ", ".join(i["IndexName"] for i in indexes) or "none"
            return [f"{name}: created (on-demand billing; indexes: {names})"]
        done: list[str] = []
        billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
        if billing != "PAY_PER_REQUEST":
            await self._call(
                self._api.update_table,
                "update table",
                TableName=name,
                BillingMode="PAY_PER_REQUEST",
            )
            await self._wait_active(name)
            done.append(f"{name}: switched to on-demand billing")
        existing = {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])}
        for index in spec["GlobalSecondaryIndexes"]:
            if index["IndexName"] in existing:
                continue
            await self._call(
                self._api.update_table,
                "update table",
                TableName=name,
                AttributeDefinitions=spec["AttributeDefinitions"],
                GlobalSecondaryIndexUpdates=[{"Create": index}],
            )
            await self._wait_active(name, index["IndexName"])
            done.append(f"{name}: added index {index['IndexName']}")
        return done or [f"{name}: up to date"]

    async def _ensure_ttl(self, name: str) -> list[str]:
        answer = await self._call(self._api.describe_time_to_live, "describe TTL", TableName=name)
        description = answer.get("TimeToLiveDescription", {})
        if description.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
            attribute = description.get("AttributeName")
            if attribute == TTL_ATTRIBUTE:
                return []
            return [f"{name}: TTL is on attribute {attribute!r}, not {TTL_ATTRIBUTE!r}: left as is"]
        await self._call(
            self._api.update_time_to_live,
            "update TTL",
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
        return [f"{name}: TTL enabled on {TTL_ATTRIBUTE}"]

    async def _ensure_pitr(self, name: str) -> list[str]:
        """Best effort: a server without the continuous-backups API is reported, not fatal."""
        try:
            answer = await self._client.run(
                partial(self._api.describe_continuous_backups, TableName=name),
                what="describe backups",
                raw=True,
            )
            status = (
                answer.get("ContinuousBackupsDescription", {})
                .get("PointInTimeRecoveryDescription", {})
                .get("PointInTimeRecoveryStatus")
            )
            if status == "ENABLED":
                return []
            await self._client.run(
                partial(
                    self._api.update_continuous_backups,
                    TableName=name,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                ),
                what="enable backups",
                raw=True,
            )
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "error")
            return [
                f"{name}: point-in-time recovery NOT enabled ({code}); "
                "enable it by hand (docs/operations.md)"
            ]
        return [f"{name}: point-in-time recovery enabled"]
