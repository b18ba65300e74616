"""Stored predictions on DynamoDB, in the main table.

Everything held on one customer (consumption patterns, forecast, profile) is one item,
``CUSTOMER#<id>`` / ``PREDICTIONS``, beside the customer and their purchases: replacing it is one
PutItem, so a reader sees the old predictions or the new ones, never a mix, and a page of
customers reads theirs with one BatchGetItem per 100. The body is compact JSON (a row per
pattern), zlib-compressed: about 40 bytes a pattern, so even thousands of staples stay far below
the 400 KB item limit; beyond it the oldest patterns are left out (logged). Fitted models are
items ``PREDICTION_MODEL`` / ``<fitted at>#<version>``; the newest is read by a reverse query.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from datetime import datetime
from functools import partial
from typing import Any

from adapters.dynamodb.client import BATCH_ATTEMPTS, DynamoClient, backoff
from adapters.dynamodb.items import MAX_ITEM_BYTES, customer_pk
from domain.errors import StoreUnavailableError
from domain.ports import PredictionStore
from domain.predictions import (
    Affluence,
    ChurnRiskBand,
    ConsumptionPattern,
    ConsumptionStatus,
    CustomerForecast,
    CustomerPredictions,
    PredictionModel,
    SocioeconomicProfile,
)

log = logging.getLogger(__name__)

PREDICTIONS_SK = "PREDICTIONS"
MODEL_PK = "PREDICTION_MODEL"
ITEM_HEADROOM = 1024  # keys and attribute names

_PATTERN_FIELDS = [f.name for f in fields(ConsumptionPattern) if f.name != "customer_id"]
_PATTERN_TIMES = {"last_purchased_at", "next_expected_at", "window_low", "window_high",
                  "computed_at"}  # fmt: skip


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def _encode(p: CustomerPredictions) -> dict[str, Any]:
    return {
        "patterns": [
            [_encode_value(getattr(c, name)) for name in _PATTERN_FIELDS] for c in p.consumption
        ],
        "forecast": (
            None
            if p.forecast is None
            else {k: _encode_value(v) for k, v in asdict(p.forecast).items()}
        ),
        "profile": (
            None
            if p.profile is None
            else {k: _encode_value(v) for k, v in asdict(p.profile).items()}
        ),
    }


def _decode(customer_id: str, body: dict[str, Any]) -> CustomerPredictions:
    patterns = []
    for row in body["patterns"]:
        values = dict(zip(_PATTERN_FIELDS, row, strict=True))
        for name in _PATTERN_TIMES:
            values[name] = datetime.fromisoformat(values[name])
        values["status"] = ConsumptionStatus(values["status"])
        patterns.append(ConsumptionPattern(customer_id=customer_id, **values))
    forecast = None
    if (f := body["forecast"]) is not None:
        f["computed_at"] = datetime.fromisoformat(f["computed_at"])
        f["churn_risk"] = ChurnRiskBand(f["churn_risk"])
        forecast = CustomerForecast(**f)
    profile = None
    if (r := body["profile"]) is not None:
        r["computed_at"] = datetime.fromisoformat(r["computed_at"])
        r["affluence"] = Affluence(r["affluence"])
        r["drivers"] = tuple(r["drivers"])
        profile = SocioeconomicProfile(**r)
    return CustomerPredictions(customer_id, tuple(patterns), forecast, profile)


def _pack(value: Any) -> bytes:
    return zlib.compress(json.dumps(value, separators=(",", ":")).encode(), 6)


def _unpack(blob: bytes) -> Any:
    return json.loads(zlib.decompress(blob))


def _fitting(p: CustomerPredictions) -> tuple[bytes, CustomerPredictions]:
    """The packed body, leaving out the least recently bought patterns if it would not fit."""
    body = _pack(_encode(p))
    if len(body) + ITEM_HEADROOM <= MAX_ITEM_BYTES:
        return body, p
    by_recency = sorted(p.consumption, key=lambda c: c.last_purchased_at, reverse=True)
    keep = len(by_recency)
    while keep > 0:
        keep = keep * 3 // 4
        trimmed = replace(p, consumption=tuple(by_recency[:keep]))
        body = _pack(_encode(trimmed))
        if len(body) + ITEM_HEADROOM <= MAX_ITEM_BYTES:
            log.warning(
                "predictions of %s: kept the %d most recently bought of %d patterns (item limit)",
                p.customer_id, keep, len(p.consumption),
            )  # fmt: skip
            return body, trimmed
    raise AssertionError("a forecast and a profile alone always fit in one item")


class DynamoPredictionStore(PredictionStore):
    def __init__(self, client: DynamoClient) -> None:
        self._client = client
        self._table = client.tables.main.Meta.table_name

    async def save_model(self, model: PredictionModel) -> None:
        item: dict[str, Any] = {
            "pk": {"S": MODEL_PK},
            "sk": {"S": f"{model.fitted_at.isoformat()}#{model.version}"},
            "body": {"B": zlib.compress(model.to_json().encode(), 6)},
        }
        size = len(item["body"]["B"]) + ITEM_HEADROOM
        if size > MAX_ITEM_BYTES:
            raise ValueError(f"the fitted model is {size:,} bytes compressed, over the item limit")
        await self._client.run(
            partial(self._client.api.put_item, TableName=self._table, Item=item),
            what="prediction model write",
        )

    async def current_model(self) -> PredictionModel | None:
        response = await self._client.run(
            partial(
                self._client.api.query,
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": MODEL_PK}},
                ScanIndexForward=False,
                Limit=1,
                ConsistentRead=True,
            ),
            what="prediction model read",
        )
        items = response.get("Items", [])
        if not items:
            return None
        return PredictionModel.from_json(zlib.decompress(items[0]["body"]["B"]))

    async def save(self, predictions: Sequence[CustomerPredictions]) -> None:
        requests: list[tuple[str, dict[str, Any]]] = []
        for p in {p.customer_id: p for p in predictions}.values():
            key = {"pk": {"S": customer_pk(p.customer_id)}, "sk": {"S": PREDICTIONS_SK}}
            if not p.consumption and p.forecast is None and p.profile is None:
                requests.append((self._table, {"DeleteRequest": {"Key": key}}))
                continue
            body, _ = _fitting(p)
            requests.append((self._table, {"PutRequest": {"Item": {**key, "body": {"B": body}}}}))
        await self._client.batch_write(requests, what="predictions write")

    async def get_many(self, customer_ids: Sequence[str]) -> dict[str, CustomerPredictions]:
        wanted = list(dict.fromkeys(customer_ids))
        found: dict[str, CustomerPredictions] = {}
        for start in range(0, len(wanted), 100):
            keys = [
                {"pk": {"S": customer_pk(c)}, "sk": {"S": PREDICTIONS_SK}}
                for c in wanted[start : start + 100]
            ]
            request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            attempts = 0
            while request:
                response = await self._client.run(
                    partial(self._client.api.batch_get_item, RequestItems=request),
                    what="predictions read",
                )
                for item in response.get("Responses", {}).get(self._table, []):
                    cid = item["pk"]["S"].removeprefix(customer_pk(""))
                    found[cid] = _decode(cid, _unpack(item["body"]["B"]))
                request = {t: r for t, r in response.get("UnprocessedKeys", {}).items() if r}
                if request:
                    attempts += 1
                    if attempts > BATCH_ATTEMPTS:
                        raise StoreUnavailableError("DynamoDB kept predictions reads unprocessed")
                    await asyncio.sleep(backoff(attempts))
        return {c: found[c] for c in customer_ids if c in found}

    async def delete_profile(self, customer_id: str) -> None:
        stored = await self.get_many([customer_id])
        if customer_id in stored and stored[customer_id].profile is not None:
            await self.save([replace(stored[customer_id], profile=None)])
