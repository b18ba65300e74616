"""Jobs through the schema, on the composition root's container (SQLite, in-process bus)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from strawberry.types import ExecutionResult

from domain.access import DEV_ADMIN, Principal, Role
from schema.app import Container
from schema.context import Context, Services
from schema.schema import build_schema
from subscriptions.hub import SubscriptionHub

SCHEMA = build_schema()
JOB_FIELDS = "id kind status stage done total counts { name value } failures { subject code } "
JOB_FIELDS += "message parameters result requestedBy startedAt finishedAt revision"
RUN_BATCH = f"""
mutation ($segment: SegmentCode, $limit: Int!, $key: String) {{
  runBatchAnalysis(segment: $segment, limit: $limit, idempotencyKey: $key) {{
    __typename
    ... on StartJobSuccess {{ started job {{ {JOB_FIELDS} }} }}
    ... on ValidationError {{ code field }}
  }}
}}
"""
PROGRESS = f"subscription ($id: ID!) {{ jobProgress(id: $id) {{ {JOB_FIELDS} }} }}"
CUSTOMER = Principal(subject="cus_1", roles=frozenset({Role.CUSTOMER}), customer_id="cus_1")


def context(c: Container, principal: Principal) -> Context:
    services = Services(
        customers=c.customers,
        purchases=c.purchases,
        catalogue=c.catalogue,
        hub=SubscriptionHub(c.bus),
        analyst=c.analyst,
        jobs=c.jobs,
    )
    return Context(services=services, principal=principal, request_id="t")


async def run(
    c: Container, query: str, principal: Principal = DEV_ADMIN, **variables: Any
) -> ExecutionResult:
    return await SCHEMA.execute(
        query, variable_values=variables, context_value=context(c, principal)
    )


async def follow(c: Container, job_id: str) -> list[dict[str, Any]]:
    stream = await SCHEMA.subscribe(PROGRESS, {"id": job_id}, context(c, DEV_ADMIN))
    assert isinstance(stream, AsyncGenerator), stream
    seen = []
    async with asyncio.timeout(10):
        async for result in stream:
            assert result.errors is None, result.errors
            assert result.data is not None
            seen.append(result.data["jobProgress"])
    return seen


async def test_a_batch_analysis_job_is_started_followed_to_the_end_and_read_back(
    container: Container,
) -> None:
    started = await run(container, RUN_BATCH, limit=10, key="batch-1")
    assert started.errors is None
    assert started.data is not None
    result = started.data["runBatchAnalysis"]
    assert result["__typename"] == "StartJobSuccess"
    assert result["started"] is True
    job_id = result["job"]["id"]
    assert result["job"]["parameters"] == {"segment": None, "limit": 10}
    assert result["job"]["requestedBy"] == "dev"

    seen = await follow(container, job_id)
    final = seen[-1]
    assert final["status"] == "SUCCEEDED"
    assert (final["done"], final["total"]) == (3, 3)
    counts = {c["name"]: c["value"] for c in final["counts"]}
    assert counts["analysed"] + counts["skipped"] == 3
    assert [s["revision"] for s in seen] == sorted(s["revision"] for s in seen)

    again = await run(container, RUN_BATCH, limit=10, key="batch-1")
    assert again.data is not None
    assert again.data["runBatchAnalysis"]["job"]["id"] == job_id

    read = await run(container, f'{{ job(id: "{job_id}") {{ {JOB_FIELDS} }} }}')
    assert read.data == {"job": final}
    listed = await run(
        container, "{ jobs(status: SUCCEEDED) { nodes { id } pageInfo { hasNextPage } } }"
    )
    assert listed.data == {"jobs": {"nodes": [{"id": job_id}], "pageInfo": {"hasNextPage": False}}}
    missing = await run(container, '{ job(id: "job_nope") { id } }')
    assert missing.data == {"job": None}


async def test_a_refit_and_a_recompute_share_one_lane(container: Container) -> None:
    started = await run(
        container, "mutation { refitSegments { ... on StartJobSuccess { started job { id } } } }"
    )
    assert started.data is not None
    refit = started.data["refitSegments"]
    assert refit["started"] is True
    second = await run(
        container,
        "mutation { startRecompute { ... on StartJobSuccess { started job { id kind } } } }",
    )
    assert second.data is not None
    recompute = second.data["startRecompute"]
    assert (recompute["started"], recompute["job"]["id"]) == (False, refit["job"]["id"])
    assert recompute["job"]["kind"] == "SEGMENT_REFIT"
    final = (await follow(container, refit["job"]["id"]))[-1]
    assert final["status"] == "SUCCEEDED"
    assert final["message"] == "no purchases to learn from"


async def test_bad_input_and_callers_without_the_role_are_refused(container: Container) -> None:
    refused = await run(container, RUN_BATCH, limit=0)
    assert refused.data is not None
    assert refused.data["runBatchAnalysis"] == {
        "__typename": "ValidationError",
        "code": "LIMIT_OUT_OF_RANGE",
        "field": "limit",
    }
    forbidden = await run(container, RUN_BATCH, principal=CUSTOMER, limit=5)
    assert forbidden.errors is not None
    assert forbidden.errors[0].extensions is not None
    assert forbidden.errors[0].extensions["code"] == "FORBIDDEN"
    listed = await run(container, "{ jobs { nodes { id } } }", principal=CUSTOMER)
    assert listed.errors is not None
    assert container.jobs is not None
    assert (await container.jobs.page(first=10, after=None, status=None)).items == []


async def test_following_an_unknown_job_is_not_found(container: Container) -> None:
    stream = await SCHEMA.subscribe(PROGRESS, {"id": "job_nope"}, context(container, DEV_ADMIN))
    assert isinstance(stream, AsyncGenerator)
    results = [r async for r in stream]
    assert len(results) == 1
    assert results[0].errors is not None
    assert results[0].errors[0].extensions is not None
    assert results[0].errors[0].extensions["code"] == "NOT_FOUND"
