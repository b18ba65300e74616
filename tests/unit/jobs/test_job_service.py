"""JobService: lifecycle, lanes, throttled progress, idempotent starts, the restart rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.memory.bus import MemoryBus
from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.jobs import SqliteJobStore
from adapters.sqlite.stores import SqliteCustomerStore, SqliteIdempotencyStore
from domain.clock import SystemClock
from domain.errors import ConflictError, NotFoundError, ValidationError
from domain.events import customer_registered
from domain.jobs import Job, JobKind, JobStatus
from domain.services.idempotency import Idempotency
from domain.services.jobs import JobService, JobSettings, Progress
from domain.services.predictions import RecomputeReport
from domain.services.segments import RefitReport
from tests.unit.analysis.fakes import customer
from tests.unit.analysis.world import World, open_world

FAST = JobSettings(persist_interval=0.05, heartbeat=0.5, stale_after=30.0, follow_poll=0.2)


class RecordingJobStore(SqliteJobStore):
    def __init__(self, db: SqliteDatabase) -> None:
        super().__init__(db)
        self.saved: list[Job] = []

    async def save(self, job: Job) -> bool:
        self.saved.append(job)
        return await super().save(job)


def report(**changes: object) -> RecomputeReport:
    base = RecomputeReport("v1", 3, 3, 5, 1, 9, 20, 0.1, 0.2, 0.05)
    return replace(base, **changes)  # type: ignore[arg-type]


@dataclass
class Jobs:
    world: World
    store: RecordingJobStore
    bus: MemoryBus
    db: SqliteDatabase
    recompute_gate: asyncio.Event
    recompute_calls: list[Progress]

    def service(self, settings: JobSettings = FAST, **overrides: object) -> JobService:
        async def recompute(*, progress: Progress | None = None) -> RecomputeReport:
            assert progress is not None
            self.recompute_calls.append(progress)
            progress("reading", 0, 3)
            await self.recompute_gate.wait()
            progress("saving", 3, 3)
            return report()

        async def analyse(customer_id: str):  # type: ignore[no-untyped-def]
            if customer_id == "cus_2":
                raise NotFoundError("customer", customer_id)
            return await self.world.service.analyse(customer_id)

        kwargs: dict[str, object] = {
            "customers": SqliteCustomerStore(self.db),
            "recompute": recompute,
            "analyse": analyse,
            "settings": settings,
            **overrides,
        }
        return JobService(
            self.store,
            Idempotency(SqliteIdempotencyStore(self.db)),
            self.bus,
            SystemClock(),
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture
async def jobs(tmp_path: Path) -> AsyncIterator[Jobs]:
    async with (
        open_world(tmp_path) as world,
        SqliteDatabase(tmp_path / "jobs.db", readers=1) as db,
    ):
        people = [customer(f"cus_{i}") for i in (1, 2, 3)]
        await SqliteCustomerStore(db).add_many(people, [customer_registered(c) for c in people])
        bus = MemoryBus()
        try:
            yield Jobs(world, RecordingJobStore(db), bus, db, asyncio.Event(), [])
        finally:
            await bus.close()


async def final_state(service: JobService, job_id: str) -> list[Job]:
    async with asyncio.timeout(10):
        return [job async for job in service.follow(job_id)]


async def test_a_batch_goes_past_a_failing_customer_and_a_rerun_skips_the_cached(
    jobs: Jobs,
) -> None:
    service = jobs.service()
    started = await service.start_batch_analysis(segment=None, limit=10, requested_by="ana")
    assert started.started
    assert started.job.status is JobStatus.QUEUED
    seen = await final_state(service, started.job.id)
    final = seen[-1]
    assert final.status is JobStatus.SUCCEEDED
    assert (final.done, final.total) == (3, 3)
    assert final.counts == {"analysed": 2, "skipped": 0, "fallbacks": 0, "failed": 1}
    assert [(f.subject, f.code) for f in final.failures] == [("cus_2", "NOT_FOUND")]
    assert final.message == "1 of 3 customers failed"
    assert final.started_at is not None
    assert final.finished_at is not None
    assert [j.revision for j in seen] == sorted({j.revision for j in seen})
    assert await service.get(final.id) == final

    again = await service.start_batch_analysis(segment=None, limit=10, requested_by="ana")
    rerun = (await final_state(service, again.job.id))[-1]
    assert rerun.counts["skipped"] == 2
    assert rerun.counts["analysed"] == 0


async def test_a_batch_limit_out_of_range_is_refused_and_writes_nothing(jobs: Jobs) -> None:
    service = jobs.service()
    for limit in (0, 1001):
        with pytest.raises(ValidationError) as raised:
            await service.start_batch_analysis(segment=None, limit=limit, requested_by="ana")
        assert raised.value.code == "LIMIT_OUT_OF_RANGE"
    assert (await service.page(first=10, after=None, status=None)).items == []


async def test_one_model_job_at_a_time_and_the_second_start_answers_with_the_first(
    jobs: Jobs,
) -> None:
    async def refit(*, progress: Progress | None = None) -> RefitReport:
        raise AssertionError("the model lane was busy: no refit may start")

    service = jobs.service(refit=refit)
    first = await service.start_recompute(requested_by="ana")
    second = await service.start_segment_refit(requested_by="ana")
    assert second.started is False
    assert second.job.id == first.job.id
    jobs.recompute_gate.set()
    final = (await final_state(service, first.job.id))[-1]
    assert final.status is JobStatus.SUCCEEDED
    assert final.result["model_version"] == "v1"
    assert final.stage == "saving"
    assert len(jobs.recompute_calls) == 1


async def test_progress_is_saved_at_most_every_interval_and_at_every_stage(jobs: Jobs) -> None:
    async def recompute(*, progress: Progress | None = None) -> RecomputeReport:
        assert progress is not None
        for stage in ("reading", "computing", "saving"):
            for i in range(200):
                progress(stage, i, 200)
                await asyncio.sleep(0.001)
        return report()

    service = jobs.service(JobSettings(persist_interval=0.1, heartbeat=5.0), recompute=recompute)
    loop = asyncio.get_running_loop()
    began = loop.time()
    started = await service.start_recompute(requested_by="ana")
    await final_state(service, started.job.id)
    seconds = loop.time() - began
    saves = [j for j in jobs.store.saved if j.id == started.job.id]
    # begin + the end + one per interval + one per stage change
    assert len(saves) <= 2 + seconds / 0.1 + 3 + 1
    assert {"reading", "computing", "saving"} <= {j.stage for j in saves}
    assert saves[-1].status is JobStatus.SUCCEEDED


async def test_a_failing_job_is_marked_failed_with_its_reason(jobs: Jobs) -> None:
    async def recompute(*, progress: Progress | None = None) -> RecomputeReport:
        raise ConflictError("the store is busy", code="BUSY")

    service = jobs.service(recompute=recompute)
    started = await service.start_recompute(requested_by="ana")
    final = (await final_state(service, started.job.id))[-1]
    assert final.status is JobStatus.FAILED
    assert final.message == "the store is busy"


async def test_a_retried_start_with_the_same_key_returns_the_same_job(jobs: Jobs) -> None:
    service = jobs.service()
    first = await service.start_batch_analysis(
        segment=None, limit=5, requested_by="ana", idempotency_key="k-1"
    )
    await final_state(service, first.job.id)
    retried = await service.start_batch_analysis(
        segment=None, limit=5, requested_by="ana", idempotency_key="k-1"
    )
    assert retried.started
    assert retried.job.id == first.job.id
    assert len((await service.page(first=10, after=None, status=None)).items) == 1
    with pytest.raises(ConflictError) as raised:
        await service.start_batch_analysis(
            segment=None, limit=6, requested_by="ana", idempotency_key="k-1"
        )
    assert raised.value.code == "IDEMPOTENCY_KEY_REUSED"


async def test_on_start_up_a_stale_running_job_is_marked_interrupted(jobs: Jobs) -> None:
    now = SystemClock().now()
    stale = Job(
        id="job_stale",
        kind=JobKind.RECOMPUTE,
        status=JobStatus.RUNNING,
        requested_by="ana",
        created_at=now - timedelta(minutes=5),
        updated_at=now - timedelta(minutes=5),
    )
    fresh = replace(stale, id="job_fresh", kind=JobKind.BATCH_ANALYSIS, updated_at=now)
    await jobs.store.add(stale, None)
    await jobs.store.add(fresh, None)
    service = jobs.service()
    marked = await service.recover()
    assert [j.id for j in marked] == ["job_stale"]
    interrupted = await service.require("job_stale")
    assert interrupted.status is JobStatus.FAILED
    assert interrupted.message is not None
    assert interrupted.message.startswith("interrupted")
    # A job another process is still running keeps its lane.
    busy = await service.start_batch_analysis(segment=None, limit=5, requested_by="ana")
    assert busy.started is False
    assert busy.job.id == "job_fresh"
    # The stale job no longer blocks the model lane.
    started = await service.start_recompute(requested_by="ana")
    assert started.started
    jobs.recompute_gate.set()
    await final_state(service, started.job.id)


async def test_a_job_marked_interrupted_elsewhere_is_abandoned_here(jobs: Jobs) -> None:
    service = jobs.service()
    started = await service.start_recompute(requested_by="ana")
    async with asyncio.timeout(5):
        async for job in service.follow(started.job.id):
            if job.stage == "reading":
                break
    job = await service.require(started.job.id)
    verdict = job.next_revision(status=JobStatus.FAILED, message="interrupted: elsewhere")
    assert await jobs.store.save(verdict)
    jobs.recompute_gate.set()
    await asyncio.sleep(0.3)
    stored = await service.require(started.job.id)
    assert stored.status is JobStatus.FAILED
    assert stored.message == "interrupted: elsewhere"


async def test_shutting_down_marks_running_jobs_interrupted(jobs: Jobs) -> None:
    service = jobs.service()
    started = await service.start_recompute(requested_by="ana")
    await asyncio.sleep(0.05)
    await service.close()
    stored = await service.require(started.job.id)
    assert stored.status is JobStatus.FAILED
    assert stored.message == "interrupted: the server shut down"


async def test_following_an_unknown_job_is_not_found(jobs: Jobs) -> None:
    service = jobs.service()
    with pytest.raises(NotFoundError):
        await final_state(service, "job_nope")
    with pytest.raises(NotFoundError):
        await final_state(service, "no such id!")
