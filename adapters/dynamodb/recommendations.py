"""Recommendation models on DynamoDB, in the main table.

A model is the item ``RECOMMENDATION_MODEL`` / ``<fitted at>#<version>`` (its body
zlib-compressed JSON); the newest is read by a reverse query, as for prediction models. Each
sku's profile is its own item, ``RECOMMENDATION_ITEM#<version>#<sku>`` / ``PROFILE``: one
partition per sku, so serving reads a customer's few dozen skus with one BatchGetItem per 100
keys and no partition runs hot. Profiles are written first (BatchWriteItem) and the model item
last, so a model is current only once its profiles are all stored. Versions beyond the newest
:data:`KEEP_VERSIONS` are deleted, profiles first (the model body lists its skus).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from functools import partial
from typing import Any

from adapters.dynamodb.client import BATCH_ATTEMPTS, DynamoClient, backoff
from adapters.dynamodb.items import MAX_ITEM_BYTES
from domain.errors import StoreUnavailableError
from domain.ports import RecommendationStore
from domain.recommendations import ItemProfile, RecommendationModel

MODEL_PK = "RECOMMENDATION_MODEL"
ITEM_PREFIX = "RECOMMENDATION_ITEM#"
ITEM_SK = "PROFILE"
KEEP_VERSIONS = 3
ITEM_HEADROOM = 1024
BATCH_GET_KEYS = 100


def _item_key(version: str, sku: str) -> dict[str, Any]:
    return {"pk": {"S": f"{ITEM_PREFIX}{version}#{sku}"}, "sk": {"S": ITEM_SK}}


def _packed(text: str, what: str) -> bytes:
    body = zlib.compress(text.encode(), 6)
    if len(body) + ITEM_HEADROOM > MAX_ITEM_BYTES:
        raise ValueError(f"{what} is {len(body):,} bytes compressed, over the item limit")
    return body


class DynamoRecommendationStore(RecommendationStore):
    def __init__(self, client: DynamoClient) -> None:
        self._client = client
        self._table = client.tables.main.Meta.table_name

    async def save_model(self, model: RecommendationModel, items: Sequence[ItemProfile]) -> None:
        puts = [
            (
                self._table,
                {
                    "PutRequest": {
                        "Item": {
                            **_item_key(model.version, i.sku),
                            "body": {"B": _packed(i.to_json(), f"the profile of {i.sku}")},
                        }
                    }
                },
            )
            for i in items
        ]
        await self._client.batch_write(puts, what="recommendation profiles write")
        item = {
            "pk": {"S": MODEL_PK},
            "sk": {"S": f"{model.fitted_at.isoformat()}#{model.version}"},
            "body": {"B": _packed(model.to_json(), "the recommendation model")},
        }
        await self._client.run(
            partial(self._client.api.put_item, TableName=self._table, Item=item),
            what="recommendation model write",
        )
        await self._prune()

    async def _models(self, *, limit: int | None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": MODEL_PK}},
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        if limit is not None:
            query["Limit"] = limit
        found: list[dict[str, Any]] = []
        while True:
            response = await self._client.run(
                partial(self._client.api.query, **query), what="recommendation model read"
            )
            found.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if last is None or (limit is not None and len(found) >= limit):
                return found
            query["ExclusiveStartKey"] = last

    async def _prune(self) -> None:
        for old in (await self._models(limit=None))[KEEP_VERSIONS:]:
            model = RecommendationModel.from_json(zlib.decompress(old["body"]["B"]))
            deletes = [
                (self._table, {"DeleteRequest": {"Key": _item_key(model.version, sku)}})
                for sku in model.skus
            ]
            await self._client.batch_write(deletes, what="recommendation profiles delete")
            key = {"pk": old["pk"], "sk": old["sk"]}
            await self._client.run(
                partial(self._client.api.delete_item, TableName=self._table, Key=key),
                what="recommendation model delete",
            )

    async def current_model(self) -> RecommendationModel | None:
        items = await self._models(limit=1)
        if not items:
            return None
        return RecommendationModel.from_json(zlib.decompress(items[0]["body"]["B"]))

    async def items(self, version: str, skus: Sequence[str]) -> dict[str, ItemProfile]:
        wanted = list(dict.fromkeys(skus))
        prefix = f"{ITEM_PREFIX}{version}#"
        parts = await asyncio.gather(
            *(
                self._get(prefix, [_item_key(version, s) for s in wanted[i : i + BATCH_GET_KEYS]])
                for i in range(0, len(wanted), BATCH_GET_KEYS)
            )
        )
        return {sku: profile for part in parts for sku, profile in part.items()}

    async def _get(self, prefix: str, keys: list[dict[str, Any]]) -> dict[str, ItemProfile]:
        found: dict[str, ItemProfile] = {}
        request: dict[str, Any] = {self._table: {"Keys": keys}}
        attempts = 0
        while request:
            response = await self._client.run(
                partial(self._client.api.batch_get_item, RequestItems=request),
                what="recommendation profiles read",
            )
            for item in response.get("Responses", {}).get(self._table, []):
                sku = item["pk"]["S"].removeprefix(prefix)
                found[sku] = ItemProfile.from_json(sku, zlib.decompress(item["body"]["B"]))
            request = {t: r for t, r in response.get("UnprocessedKeys", {}).items() if r}
            if request:
                attempts += 1
                if attempts > BATCH_ATTEMPTS:
                    raise StoreUnavailableError(
                        "DynamoDB kept recommendation profile reads unprocessed"
                    )
                await asyncio.sleep(backoff(attempts))
        return found
