"""AI usage on DynamoDB, in the main table: one item per analyst call in a partition per UTC day
(``AI_USAGE#<day>``, sort key ``<instant>#<id>``), and one item listing the days that have any
(``AI_USAGE_DAYS``), so a report reads exactly the day partitions in its range. Totals are
summed here, per (day, model); cost is held as integer nano-dollars, so sums stay exact.
Recording the same id twice keeps the first (a conditional put)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from adapters.dynamodb.client import DynamoClient, error_code, translate
from domain.analysis import NANO, AiUsage, AiUsageGroup, AiUsageTotals
from domain.ports import AiUsageStore

DAYS_KEY = {"pk": {"S": "AI_USAGE_DAYS"}, "sk": {"S": "DAYS"}}
PARALLEL_DAYS = 8


def _instant(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("AI usage times must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _day_pk(day: str) -> str:
    return f"AI_USAGE#{day}"


class DynamoAiUsageStore(AiUsageStore):
    def __init__(self, client: DynamoClient) -> None:
        self._client = client
        self._table = client.tables.main.Meta.table_name

    async def record(self, usage: AiUsage) -> None:
        at = _instant(usage.occurred_at)
        day = usage.occurred_at.astimezone(UTC).date().isoformat()
        api = self._client.api
        # The day is listed first, so a report never misses a day that has calls.
        await self._client.run(
            partial(
                api.update_item,
                TableName=self._table,
                Key=DAYS_KEY,
                UpdateExpression="ADD #days :day",
                ExpressionAttributeNames={"#days": "days"},
                ExpressionAttributeValues={":day": {"SS": [day]}},
            ),
            what="AI usage write",
        )
        item: dict[str, Any] = {
            "pk": {"S": _day_pk(day)},
            "sk": {"S": f"{at}#{usage.id}"},
            "model": {"S": usage.model},
            "prompt_version": {"S": usage.prompt_version},
            "input_tokens": {"N": str(usage.input_tokens)},
            "output_tokens": {"N": str(usage.output_tokens)},
            "cost_nanousd": {"N": str(int(usage.cost_usd / NANO))},
            "latency_ms": {"N": repr(float(usage.latency_ms))},
            "success": {"BOOL": usage.success},
            "cached": {"BOOL": usage.cached},
            "fallback": {"BOOL": usage.fallback},
        }
        if usage.customer_id is not None:
            item["customer_id"] = {"S": usage.customer_id}
        if usage.error is not None:
            item["error"] = {"S": usage.error}
        call = partial(
            api.put_item,
            TableName=self._table,
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
        )
        try:
            await self._client.run(call, what="AI usage write", raw=True)
        except ClientError as e:
            if error_code(e) != "ConditionalCheckFailedException":  # else: a retried write
                raise translate(e, "AI usage write") from e
        except BotoCoreError as e:
            raise translate(e, "AI usage write") from e

    async def totals(self, *, since: datetime | None, until: datetime | None) -> list[AiUsageGroup]:
        low = _instant(since) if since else None
        high = _instant(until) if until else None
        response = await self._client.run(
            partial(
                self._client.api.get_item, TableName=self._table, Key=DAYS_KEY, ConsistentRead=True
            ),
            what="AI usage read",
        )
        days = sorted(response.get("Item", {}).get("days", {}).get("SS", []))
        days = [
            d for d in days if (low is None or d >= low[:10]) and (high is None or d <= high[:10])
        ]
        limit = asyncio.Semaphore(PARALLEL_DAYS)

        async def read(day: str) -> list[AiUsageGroup]:
            async with limit:
                return await self._day(day, low, high)

        groups = await asyncio.gather(*(read(d) for d in days))
        return [g for day_groups in groups for g in day_groups]

    async def _day(self, day: str, low: str | None, high: str | None) -> list[AiUsageGroup]:
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": _day_pk(day)}}
        if low is not None and high is not None:
            condition += " AND sk BETWEEN :low AND :high"
            values[":low"], values[":high"] = {"S": low}, {"S": high}
        elif low is not None:
            condition += " AND sk >= :low"
            values[":low"] = {"S": low}
        elif high is not None:
            condition += " AND sk < :high"
            values[":high"] = {"S": high}
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        by_model: dict[str, list[int | float]] = defaultdict(lambda: [0] * 8)
        while True:
            response = await self._client.run(
                partial(self._client.api.query, **request), what="AI usage read"
            )
            for item in response.get("Items", []):
                # BETWEEN is inclusive: the upper bound itself is outside [since, until).
                if high is not None and item["sk"]["S"] >= high:
                    continue
                t = by_model[item["model"]["S"]]
                t[0] += 1
                t[1] += not item["success"]["BOOL"]
                t[2] += item["cached"]["BOOL"]
                t[3] += item["fallback"]["BOOL"]
                t[4] += int(item["input_tokens"]["N"])
                t[5] += int(item["output_tokens"]["N"])
                t[6] += int(item["cost_nanousd"]["N"])
                t[7] += float(item["latency_ms"]["N"])
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return [
            AiUsageGroup(
                day=date.fromisoformat(day),
                model=model,
                totals=AiUsageTotals(
                    calls=int(t[0]),
                    failures=int(t[1]),
                    cached=int(t[2]),
                    fallbacks=int(t[3]),
                    input_tokens=int(t[4]),
                    output_tokens=int(t[5]),
                    cost_usd=Decimal(int(t[6])) * NANO,
                    latency_ms_total=float(t[7]),
                ),
            )
            for model, t in sorted(by_model.items())
        ]
