"""Starting, running and following jobs: a recompute, a segment refit or a batch of analyses,
run as an asyncio task in the process that accepted the start.

Lanes: a recompute and a segment refit both rewrite the models, so they share one lane; batch
analyses have another. A lane runs one job at a time; asking to start a job in a busy lane
answers with the job already running there (``started`` False) rather than queueing a second
one, so a double click or an impatient script costs nothing. The lane is checked against this
process's tasks and against the store's unfinished jobs (another process's).

Progress: the running job's state lives in memory and a writer task saves it, at most every
``persist_interval`` seconds, at once when the stage changes, and every ``heartbeat`` seconds
even when nothing moved (so a long computation still looks alive). Each save is published on the
job's bus channel, best effort: the store is the truth, and followers fall back to reading it.

Interruption: a process that dies mid-job leaves the job RUNNING. On start-up, and whenever a
lane finds a job in the way, an unfinished job not saved for ``stale_after`` seconds is marked
FAILED with the message "interrupted". Saves are conditional on the previous revision, so if
the process that ran it was only slow, its next save fails and it abandons the job instead of
overwriting the verdict. A process that shuts down marks its running jobs FAILED the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from domain.clock import Clock
from domain.errors import ConflictError, DomainError, NotFoundError, ValidationError
from domain.ids import is_valid_id, new_id
from domain.jobs import (
    MAX_JOB_FAILURES,
    Job,
    JobFailure,
    JobKind,
    JobStatus,
    job_channel,
)
from domain.pagination import Page
from domain.ports import Bus, CustomerStore, IdempotencyClaim, JobStore
from domain.segments import SegmentCode
from domain.services.batch_analysis import Analyse, BatchProgress, run_batch
from domain.services.idempotency import Idempotency
from domain.services.predictions import RecomputeReport
from domain.services.segments import RefitReport

log = logging.getLogger("omnix.jobs")

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``, as the recompute and the refit report it."""


class Recompute(Protocol):
    """``PredictionUpdater.recompute`` or ``PredictionService.recompute``."""

    async def __call__(self, *, progress: Progress | None = None) -> RecomputeReport: ...


class Refit(Protocol):
    """``SegmentUpdater.refit`` or ``SegmentService.refit``."""

    async def __call__(self, *, progress: Progress | None = None) -> RefitReport: ...


MAX_BATCH_LIMIT = 1_000
INTERRUPTED = "interrupted"

_LANES = {
    JobKind.RECOMPUTE: "models",
    JobKind.SEGMENT_REFIT: "models",
    JobKind.BATCH_ANALYSIS: "analysis",
}
_FINAL_WRITE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class JobSettings:
    persist_interval: float = 0.5
    heartbeat: float = 10.0
    stale_after: float = 60.0
    follow_poll: float = 2.0
    """How long a follower waits for a published update before reading the store."""
    batch_concurrency: int = 4


@dataclass(frozen=True, slots=True)
class StartedJob:
    job: Job
    started: bool
    """False when the lane was busy and ``job`` is the one already running there."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: dict[str, Any]
    message: str | None = None
    failed: bool = False


class _JobLostError(Exception):
    """The stored job moved on without this process (marked interrupted elsewhere)."""


class JobService:
    """Long-running work with progress: start it, read it, follow it."""

    def __init__(
        self,
        store: JobStore,
        idempotency: Idempotency,
        bus: Bus,
        clock: Clock,
        *,
        customers: CustomerStore,
        recompute: Recompute | None = None,
        refit: Refit | None = None,
        analyse: Analyse | None = None,
        settings: JobSettings | None = None,
    ) -> None:
        self._store = store
        self._idempotency = idempotency
        self._bus = bus
        self._clock = clock
        self._customers = customers
        self._recompute = recompute
        self._refit = refit
        self._analyse = analyse
        self._settings = settings or JobSettings()
        self._lock = asyncio.Lock()
        self._tasks: dict[str, tuple[JobKind, asyncio.Task[None]]] = {}

    @property
    def settings(self) -> JobSettings:
        return self._settings

    # ---------------------------------------------------------------------------------------
    # Starting
    # ---------------------------------------------------------------------------------------

    async def start_recompute(
        self, *, requested_by: str, idempotency_key: str | None = None
    ) -> StartedJob:
        """Refit the prediction models on the whole base and re-predict everyone."""
        recompute = self._recompute
        if recompute is None:
            raise _unavailable("this store keeps no predictions to recompute")

        async def work(tracker: _Tracker) -> _Outcome:
            report = await recompute(progress=tracker.progress)
            return _Outcome(_figures(report), report.skipped_reason)

        return await self._start(JobKind.RECOMPUTE, {}, requested_by, idempotency_key, work)

    async def start_segment_refit(
        self, *, requested_by: str, idempotency_key: str | None = None
    ) -> StartedJob:
        """Refit the segment boundaries and clusters and re-assign everyone."""
        refit = self._refit
        if refit is None:
            raise _unavailable("this store keeps no segments to refit")

        async def work(tracker: _Tracker) -> _Outcome:
            report = await refit(progress=tracker.progress)
            return _Outcome(_figures(report), report.skipped_reason)

        return await self._start(JobKind.SEGMENT_REFIT, {}, requested_by, idempotency_key, work)

    async def start_batch_analysis(
        self,
        *,
        segment: SegmentCode | None,
        limit: int,
        requested_by: str,
        idempotency_key: str | None = None,
    ) -> StartedJob:
        """Analyse up to ``limit`` customers (of ``segment``, or any) with bounded concurrency;
        a customer whose analysis fails is counted and named, and the batch goes on; analyses
        cached for a customer's current inputs are counted as skipped."""
        if not 1 <= limit <= MAX_BATCH_LIMIT:
            raise ValidationError(
                f"limit must be between 1 and {MAX_BATCH_LIMIT}, got {limit}",
                field="limit",
                code="LIMIT_OUT_OF_RANGE",
            )
        analyse = self._analyse
        if analyse is None:
            raise _unavailable("no analyst is configured")
        concurrency = self._settings.batch_concurrency

        async def work(tracker: _Tracker) -> _Outcome:
            tracker.progress("selecting", 0, limit)
            ids = await self._customers_of(segment, limit)

            async def on_progress(p: BatchProgress) -> None:
                tracker.update("analysing", p.done, p.total, _batch_counts(p), _failures(p))

            tracker.update("analysing", 0, len(ids), _batch_counts(BatchProgress(len(ids))), ())
            final = await run_batch(analyse, ids, concurrency=concurrency, on_progress=on_progress)
            tracker.update(
                "analysing", final.done, final.total, _batch_counts(final), _failures(final)
            )
            message = f"{final.failed} of {final.total} customers failed" if final.failed else None
            failed = final.total > 0 and final.failed == final.total
            return _Outcome(dict(_batch_counts(final)), message, failed)

        parameters = {"segment": segment.value if segment else None, "limit": limit}
        return await self._start(
            JobKind.BATCH_ANALYSIS, parameters, requested_by, idempotency_key, work
        )

    async def _start(
        self,
        kind: JobKind,
        parameters: dict[str, Any],
        requested_by: str,
        idempotency_key: str | None,
        work: Callable[[_Tracker], Awaitable[_Outcome]],
    ) -> StartedJob:
        now = self._clock.now()
        job = Job(
            id=new_id("job"),
            kind=kind,
            status=JobStatus.QUEUED,
            requested_by=requested_by,
            created_at=now,
            updated_at=now,
            parameters=parameters,
        )

        async def create(claim: IdempotencyClaim | None) -> StartedJob:
            async with self._lock:
                busy = await self._running_in_lane(_LANES[kind])
                if busy is not None:
                    return StartedJob(busy, started=False)
                await self._store.add(job, claim)
                task = asyncio.create_task(self._run(job, work), name=f"job:{job.id}")
                self._tasks[job.id] = (kind, task)
                task.add_done_callback(lambda _: self._tasks.pop(job.id, None))
                log.info("job %s (%s) started by %s", job.id, kind.value, requested_by)
                return StartedJob(job, started=True)

        async def replay(job_id: str) -> StartedJob:
            return StartedJob(await self.require(job_id), started=True)

        return await self._idempotency.run(
            scope=f"startJob:{kind.value}",
            key=idempotency_key,
            request=parameters,
            now=now,
            new_id=job.id,
            create=create,
            replay=replay,
        )

    async def _running_in_lane(self, lane: str) -> Job | None:
        for job_id, (kind, _) in self._tasks.items():
            if _LANES[kind] == lane:
                return await self.require(job_id)
        await self.recover()
        for job in await self._store.unfinished():
            if _LANES[job.kind] == lane:
                return job
        return None

    async def _customers_of(self, segment: SegmentCode | None, limit: int) -> list[str]:
        ids: list[str] = []
        after = None
        while len(ids) < limit:
            page = await self._customers.list(
                first=min(100, limit - len(ids)), after=after, search=None, segment=segment
            )
            ids.extend(c.id for c in page.items)
            if not page.has_next_page:
                break
            after = page.end_cursor
        return ids

    # ---------------------------------------------------------------------------------------
    # Running
    # ---------------------------------------------------------------------------------------

    async def _run(self, job: Job, work: Callable[[_Tracker], Awaitable[_Outcome]]) -> None:
        tracker = _Tracker(self._store, self._bus, self._clock, self._settings, job)
        try:
            await tracker.begin()
        except (_JobLostError, DomainError) as e:
            log.error("job %s could not be marked running: %s", job.id, e)
            return
        writer = asyncio.create_task(tracker.write_loop(), name=f"job-writer:{job.id}")
        try:
            outcome = await work(tracker)
        except asyncio.CancelledError:
            if tracker.lost:
                log.warning("job %s was marked interrupted elsewhere; abandoned here", job.id)
                return
            await _stop(writer)
            await tracker.finish(JobStatus.FAILED, f"{INTERRUPTED}: the server shut down", {})
            raise
        except Exception as e:
            await _stop(writer)
            if isinstance(e, DomainError):
                message = e.message
                log.warning("job %s failed: %s", job.id, e)
            else:
                message = f"internal error ({type(e).__name__})"
                log.exception("job %s failed", job.id)
            await tracker.finish(JobStatus.FAILED, message, {})
        else:
            await _stop(writer)
            status = JobStatus.FAILED if outcome.failed else JobStatus.SUCCEEDED
            await tracker.finish(status, outcome.message, outcome.result)

    async def recover(self) -> list[Job]:
        """Mark FAILED ("interrupted") every unfinished job that is not running in this process
        and was not saved for ``stale_after`` seconds; returns the jobs so marked."""
        now = self._clock.now()
        marked = []
        for job in await self._store.unfinished():
            if job.id in self._tasks:
                continue
            if (now - job.updated_at).total_seconds() < self._settings.stale_after:
                continue
            failed = job.next_revision(
                status=JobStatus.FAILED,
                message=f"{INTERRUPTED}: its process stopped while it ran",
                updated_at=now,
                finished_at=now,
            )
            if await self._store.save(failed):
                log.warning("job %s (%s) was interrupted; marked failed", job.id, job.kind.value)
                marked.append(failed)
                await _publish(self._bus, failed)
        return marked

    async def close(self) -> None:
        """Stop this process's running jobs (each is marked FAILED, interrupted)."""
        tasks = [task for _, task in self._tasks.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---------------------------------------------------------------------------------------
    # Reading and following
    # ---------------------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job | None:
        return await self._store.get(job_id) if is_valid_id(job_id) else None

    async def require(self, job_id: str) -> Job:
        job = await self.get(job_id)
        if job is None:
            raise NotFoundError("job", job_id, field="id")
        return job

    async def page(self, *, first: int, after: str | None, status: JobStatus | None) -> Page[Job]:
        """Jobs, newest first."""
        return await self._store.page(first=first, after=after, status=status)

    async def follow(self, job_id: str) -> AsyncIterator[Job]:
        """The job as it is now, then each newer state, ending with the final one. NotFoundError
        for an unknown id. Published updates are taken as they come; when none comes within
        ``follow_poll`` seconds the store is read, so a lost message only delays an update."""
        async with self._bus.subscribe(job_channel(job_id)) as messages:
            job = await self.require(job_id)
            yield job
            if job.finished:
                return
            revision = job.revision
            queue: asyncio.Queue[str] = asyncio.Queue()

            async def pump() -> None:
                async for message in messages:
                    queue.put_nowait(message)

            reader = asyncio.create_task(pump(), name=f"job-follow:{job_id}")
            try:
                while True:
                    try:
                        async with asyncio.timeout(self._settings.follow_poll):
                            raw = await queue.get()
                        latest: Job | None = Job.from_json(raw)
                    except TimeoutError:
                        latest = await self._store.get(job_id)
                    if latest is None or latest.revision <= revision:
                        continue
                    revision = latest.revision
                    yield latest
                    if latest.finished:
                        return
            finally:
                await _stop(reader)


class _Tracker:
    """One running job's state and the writes that keep the store (and followers) up to date."""

    def __init__(
        self, store: JobStore, bus: Bus, clock: Clock, settings: JobSettings, job: Job
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._settings = settings
        self._state = job
        self.written = job
        self.lost = False
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._owner = asyncio.current_task()

    def progress(self, stage: str, done: int, total: int) -> None:
        self.update(stage, done, total, self._state.counts, self._state.failures)

    def update(
        self,
        stage: str,
        done: int,
        total: int,
        counts: Mapping[str, int],
        failures: tuple[JobFailure, ...],
    ) -> None:
        if stage != self._state.stage:
            self._urgent.set()
        self._state = replace(
            self._state,
            stage=stage,
            done=done,
            total=total,
            counts=dict(counts),
            failures=failures[:MAX_JOB_FAILURES],
        )
        self._wake.set()

    async def begin(self) -> None:
        now = self._clock.now()
        self._state = replace(self._state, status=JobStatus.RUNNING, started_at=now)
        await self._write()

    async def write_loop(self) -> None:
        settings = self._settings
        last = time.monotonic()
        while True:
            await _wait(self._wake, settings.heartbeat)
            self._wake.clear()
            if not self._urgent.is_set():
                delay = settings.persist_interval - (time.monotonic() - last)
                if delay > 0:
                    await _wait(self._urgent, delay)
            self._urgent.clear()
            try:
                await self._write()
            except _JobLostError:
                if self._owner is not None:
                    self._owner.cancel()
                return
            except DomainError as e:
                log.warning("progress of job %s not saved: %s", self._state.id, e)
            last = time.monotonic()

    async def finish(self, status: JobStatus, message: str | None, result: dict[str, Any]) -> None:
        now = self._clock.now()
        self._state = replace(
            self._state, status=status, message=message, result=result, finished_at=now
        )
        for attempt in range(_FINAL_WRITE_ATTEMPTS):
            try:
                await self._write()
            except _JobLostError:
                log.warning(
                    "job %s was marked interrupted elsewhere; its end not saved", self._state.id
                )
                return
            except DomainError as e:
                log.warning("end of job %s not saved (attempt %d): %s", self._state.id, attempt, e)
                await asyncio.sleep(0.2 * 2**attempt)
            else:
                log.info("job %s %s", self._state.id, status.value.lower())
                return
        log.error(
            "job %s ended %s but could not be saved; it will be marked interrupted",
            self._state.id,
            status.value,
        )

    async def _write(self) -> None:
        async with self._write_lock:
            if self.lost:
                raise _JobLostError(self._state.id)
            candidate = replace(
                self._state, revision=self.written.revision + 1, updated_at=self._clock.now()
            )
            if not await self._store.save(candidate):
                self.lost = True
                raise _JobLostError(candidate.id)
            self.written = candidate
        await _publish(self._bus, candidate)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait for ``event`` at most ``seconds``. (``asyncio.timeout`` rather than ``wait_for``:
    on Python 3.11 ``wait_for`` can swallow a cancellation that arrives as the event is set.)"""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


async def _publish(bus: Bus, job: Job) -> None:
    try:
        await bus.publish(job_channel(job.id), job.to_json())
    except Exception as e:  # best effort: followers read the store when a message is lost
        log.warning("update of job %s not published: %s", job.id, e)


async def _stop(task: asyncio.Task[Any]) -> None:
    if task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _unavailable(message: str) -> ConflictError:
    return ConflictError(message, code="JOB_UNAVAILABLE")


def _figures(report: RecomputeReport | RefitReport) -> dict[str, Any]:
    return {k: v for k, v in asdict(report).items() if k != "skipped_reason"}


def _batch_counts(p: BatchProgress) -> dict[str, int]:
    return {
        "analysed": p.analysed,
        "skipped": p.skipped,
        "fallbacks": p.fallbacks,
        "failed": p.failed,
    }


def _failures(p: BatchProgress) -> tuple[JobFailure, ...]:
    return tuple(JobFailure(f.customer_id, f.code, f.message) for f in p.failures)
