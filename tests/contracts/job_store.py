"""The JobStore contract. Fixture: ``job_store``."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from domain.errors import ValidationError
from domain.jobs import Job, JobFailure, JobKind, JobStatus
from domain.ports import DuplicateRequestError, IdempotencyClaim, JobStore
from tests.contracts.builders import CET, T0


def job(job_id: str, *, kind: JobKind = JobKind.RECOMPUTE, minutes: int = 0) -> Job:
    at = T0 + timedelta(minutes=minutes)
    return Job(
        id=job_id,
        kind=kind,
        status=JobStatus.QUEUED,
        requested_by="analyst-1",
        created_at=at,
        updated_at=at,
        parameters={"segment": "AT_RISK", "limit": 10},
    )


async def test_an_added_job_reads_back_whole(job_store: JobStore) -> None:
    added = job("job_01")
    await job_store.add(added, None)
    assert await job_store.get("job_01") == added
    assert await job_store.get("job_02") is None


async def test_save_replaces_only_the_previous_revision(job_store: JobStore) -> None:
    added = job("job_01")
    await job_store.add(added, None)
    running = added.next_revision(
        status=JobStatus.RUNNING,
        stage="analysing",
        done=3,
        total=10,
        counts={"analysed": 2, "failed": 1},
        failures=(JobFailure("cus_9", "NOT_FOUND", "customer 'cus_9' does not exist"),),
        started_at=T0.astimezone(CET),
        updated_at=T0 + timedelta(seconds=1),
    )
    assert await job_store.save(running)
    assert await job_store.get("job_01") == running
    # A writer that did not see revision 2 cannot overwrite it.
    stale = added.next_revision(status=JobStatus.FAILED, message="interrupted")
    assert not await job_store.save(stale)
    assert await job_store.get("job_01") == running
    assert not await job_store.save(job("job_missing").next_revision())


async def test_a_taken_claim_writes_nothing(job_store: JobStore) -> None:
    claim = IdempotencyClaim("startJob:RECOMPUTE", "key-1", "hash", "job_01", T0)
    await job_store.add(job("job_01"), claim)
    with pytest.raises(DuplicateRequestError) as raised:
        await job_store.add(job("job_02"), replace(claim, result_id="job_02"))
    assert raised.value.existing.result_id == "job_01"
    assert await job_store.get("job_02") is None


async def test_pages_newest_first_and_by_status(job_store: JobStore) -> None:
    for i in range(5):
        await job_store.add(job(f"job_0{i}", minutes=i), None)
    three = await job_store.get("job_03")
    assert three is not None
    assert await job_store.save(three.next_revision(status=JobStatus.SUCCEEDED))
    first = await job_store.page(first=2, after=None, status=None)
    assert [j.id for j in first.items] == ["job_04", "job_03"]
    assert first.has_next_page
    assert first.end_cursor is not None
    second = await job_store.page(first=3, after=first.end_cursor, status=None)
    assert [j.id for j in second.items] == ["job_02", "job_01", "job_00"]
    assert not second.has_next_page
    queued = await job_store.page(first=10, after=None, status=JobStatus.QUEUED)
    assert [j.id for j in queued.items] == ["job_04", "job_02", "job_01", "job_00"]
    succeeded = await job_store.page(first=10, after=None, status=JobStatus.SUCCEEDED)
    assert [j.id for j in succeeded.items] == ["job_03"]
    with pytest.raises(ValidationError):
        await job_store.page(first=10, after="not-a-cursor", status=None)


async def test_unfinished_are_the_queued_and_running_oldest_first(job_store: JobStore) -> None:
    for i in range(3):
        await job_store.add(job(f"job_0{i}", minutes=i), None)
    one = await job_store.get("job_01")
    assert one is not None
    assert await job_store.save(one.next_revision(status=JobStatus.FAILED))
    two = await job_store.get("job_02")
    assert two is not None
    assert await job_store.save(two.next_revision(status=JobStatus.RUNNING))
    assert [j.id for j in await job_store.unfinished()] == ["job_00", "job_02"]
