"""Jobs on DynamoDB, in the main table: every job is one item in the partition ``JOBS`` with
sort key ``JOB#<id>``. Job ids sort by creation time, so the partition read backwards lists the
newest first. Jobs are few (a handful a day), so one partition holds them comfortably.

Adding a job writes it and its idempotency claim in one TransactWriteItems, each conditional on
not existing; a save is a PutItem conditional on the stored revision being the one before.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from adapters.dynamodb.client import DynamoClient, error_code, translate
from adapters.dynamodb.items import claim_item
from adapters.dynamodb.stores import _Dynamo
from domain.errors import ConflictError
from domain.jobs import UNFINISHED, Job, JobStatus, job_after, job_cursor
from domain.pagination import Page, check_page_size
from domain.ports import IdempotencyClaim, JobStore

JOBS_PK = "JOBS"
_FAILED = "ConditionalCheckFailed"


def _sk(job_id: str) -> str:
    return f"JOB#{job_id}"


def _item(job: Job) -> dict[str, Any]:
    return {
        "pk": {"S": JOBS_PK},
        "sk": {"S": _sk(job.id)},
        "status": {"S": job.status.value},
        "revision": {"N": str(job.revision)},
        "body": {"S": job.to_json()},
    }


class DynamoJobStore(_Dynamo, JobStore):
    def __init__(self, client: DynamoClient) -> None:
        super().__init__(client)
        self._table = client.tables.main.Meta.table_name

    async def add(self, job: Job, claim: IdempotencyClaim | None) -> None:
        writes: list[dict[str, Any]] = []
        if claim is not None:
            claim_model = claim_item(self._tables, claim)
            writes.append(
                {
                    "Put": {
                        "TableName": type(claim_model).Meta.table_name,
                        "Item": claim_model.serialize(),
                        "ConditionExpression": "attribute_not_exists(#scope)",
                        "ExpressionAttributeNames": {"#scope": "scope"},
                    }
                }
            )
        writes.append(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _item(job),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        )
        call = partial(
            self._client.api.transact_write_items,
            TransactItems=writes,
            ClientRequestToken=job.id[-36:],
        )
        try:
            await self._client.run(call, what="job write", raw=True)
        except ClientError as e:
            reasons = [r.get("Code") for r in e.response.get("CancellationReasons", [])]
            if claim is not None and reasons and reasons[0] == _FAILED:
                raise await self._claim_conflict(claim) from e
            if _FAILED in reasons:
                raise ConflictError(f"job {job.id} already exists", code="JOB_EXISTS") from e
            raise translate(e, "job write") from e
        except BotoCoreError as e:
            raise translate(e, "job write") from e

    async def save(self, job: Job) -> bool:
        call = partial(
            self._client.api.put_item,
            TableName=self._table,
            Item=_item(job),
            ConditionExpression="#revision = :previous",
            ExpressionAttributeNames={"#revision": "revision"},
            ExpressionAttributeValues={":previous": {"N": str(job.revision - 1)}},
        )
        try:
            await self._client.run(call, what="job save", raw=True)
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return False
            raise translate(e, "job save") from e
        except BotoCoreError as e:
            raise translate(e, "job save") from e
        return True

    async def get(self, job_id: str) -> Job | None:
        response = await self._client.run(
            partial(
                self._client.api.get_item,
                TableName=self._table,
                Key={"pk": {"S": JOBS_PK}, "sk": {"S": _sk(job_id)}},
                ConsistentRead=True,
            ),
            what="job read",
        )
        item = response.get("Item")
        return Job.from_json(item["body"]["S"]) if item else None

    async def page(self, *, first: int, after: str | None, status: JobStatus | None) -> Page[Job]:
        check_page_size(first)
        upper = _sk(job_after(after)) if after is not None else None
        jobs = await self._query(
            newest_first=True,
            below=upper,
            statuses=(status,) if status is not None else (),
            limit=first + 1,
        )
        page = jobs[:first]
        return Page(
            items=page,
            end_cursor=job_cursor(page[-1]) if page else None,
            has_next_page=len(jobs) > first,
        )

    async def unfinished(self) -> list[Job]:
        return await self._query(newest_first=False, below=None, statuses=UNFINISHED, limit=None)

    async def _query(
        self,
        *,
        newest_first: bool,
        below: str | None,
        statuses: Sequence[JobStatus],
        limit: int | None,
    ) -> list[Job]:
        """Jobs of the partition in id order, below ``below`` (exclusive) when given, of one of
        ``statuses`` when given, at most ``limit``; pages through DynamoDB's own pages, since a
        status filter applies after each page is read."""
        condition = "pk = :pk AND sk < :below" if below is not None else "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": JOBS_PK}}
        if below is not None:
            values[":below"] = {"S": below}
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        if statuses:
            names = [f":s{i}" for i in range(len(statuses))]
            request["FilterExpression"] = f"#status IN ({', '.join(names)})"
            request["ExpressionAttributeNames"] = {"#status": "status"}
            values.update({n: {"S": s.value} for n, s in zip(names, statuses, strict=True)})
        request["ExpressionAttributeValues"] = values
        jobs: list[Job] = []
        while True:
            response = await self._client.run(
                partial(self._client.api.query, **request), what="job list"
            )
            jobs.extend(Job.from_json(item["body"]["S"]) for item in response.get("Items", []))
            if limit is not None and len(jobs) >= limit:
                return jobs[:limit]
            if "LastEvaluatedKey" not in response:
                return jobs
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
