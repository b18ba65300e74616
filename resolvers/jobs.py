"""Job queries and the mutations that start jobs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import strawberry
from strawberry.types import Info

from domain import errors as domain_errors
from domain.access import Role
from domain.jobs import JobStatus as DomainJobStatus
from domain.services.jobs import JobService, StartedJob
from schema.context import Context
from schema.errors import (
    ConflictError,
    ValidationError,
    conflict_error,
    validation_error,
)
from schema.types.jobs import Job, JobConnection, JobStatus, job_service
from schema.types.segments import SegmentCode

READERS = (Role.ADMIN, Role.ANALYST, Role.SERVICE)
STARTERS = (Role.ADMIN, Role.ANALYST)


@strawberry.type
class StartJobSuccess:
    job: Job
    started: bool = strawberry.field(
        description="False when a job of the same lane was already running: `job` is that one."
    )


StartJobResult = Annotated[
    StartJobSuccess | ValidationError | ConflictError, strawberry.union("StartJobResult")
]


async def job(info: Info[Context, None], id: strawberry.ID) -> Job | None:
    """A job by id (staff only); null when there is none."""
    info.context.principal.require(*READERS)
    found = await job_service(info).get(id)
    return Job.from_domain(found) if found is not None else None


async def jobs(
    info: Info[Context, None],
    first: int = 20,
    after: str | None = None,
    status: JobStatus | None = None,  # type: ignore[valid-type]
) -> JobConnection:
    """Jobs newest first, optionally of one status (staff only). `first` is 1..100."""
    info.context.principal.require(*READERS)
    page = await job_service(info).page(
        first=first, after=after, status=DomainJobStatus(status) if status else None
    )
    return JobConnection.from_page(page)


async def _started(
    info: Info[Context, None], start: Callable[[JobService], Awaitable[StartedJob]]
) -> StartJobResult:
    try:
        started = await start(job_service(info))
    except domain_errors.ValidationError as e:
        return validation_error(e)
    except domain_errors.ConflictError as e:
        return conflict_error(e)
    return StartJobSuccess(job=Job.from_domain(started.job), started=started.started)


async def run_batch_analysis(
    info: Info[Context, None],
    segment: SegmentCode | None = None,  # type: ignore[valid-type]
    limit: int = 100,
    idempotency_key: str | None = None,
) -> StartJobResult:
    """Start a job analysing up to `limit` (1..1000) customers, of `segment` or any, with bounded
    concurrency; follow it with `jobProgress`. One customer's failure does not stop the job;
    analyses cached for a customer's current data are skipped (admin or analyst)."""
    principal = info.context.principal
    principal.require(*STARTERS)
    return await _started(
        info,
        lambda jobs: jobs.start_batch_analysis(
            segment=segment,
            limit=limit,
            requested_by=principal.subject,
            idempotency_key=idempotency_key,
        ),
    )


async def start_recompute(
    info: Info[Context, None], idempotency_key: str | None = None
) -> StartJobResult:
    """Start a job refitting the prediction models on the whole base and re-predicting
    everyone (admin or analyst)."""
    principal = info.context.principal
    principal.require(*STARTERS)
    return await _started(
        info,
        lambda jobs: jobs.start_recompute(
            requested_by=principal.subject, idempotency_key=idempotency_key
        ),
    )


async def refit_segments(
    info: Info[Context, None], idempotency_key: str | None = None
) -> StartJobResult:
    """Start a job refitting the segment boundaries and clusters and re-assigning everyone
    (admin or analyst)."""
    principal = info.context.principal
    principal.require(*STARTERS)
    return await _started(
        info,
        lambda jobs: jobs.start_segment_refit(
            requested_by=principal.subject, idempotency_key=idempotency_key
        ),
    )
