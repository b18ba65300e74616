"""Job types: long-running work and its progress."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from domain.errors import ConflictError
from domain.jobs import Job as DomainJob
from domain.jobs import JobKind as DomainJobKind
from domain.jobs import JobStatus as DomainJobStatus
from domain.pagination import Page
from domain.services.jobs import JobService
from schema.context import Context
from schema.types.pages import PageInfo

JobKind = strawberry.enum(
    DomainJobKind,
    name="JobKind",
    description="What a job does: RECOMPUTE (the prediction models), SEGMENT_REFIT, "
    "BATCH_ANALYSIS.",
)
JobStatus = strawberry.enum(
    DomainJobStatus,
    name="JobStatus",
    description="QUEUED and RUNNING are unfinished; SUCCEEDED, FAILED and CANCELLED are final.",
)


@strawberry.type(description="One item of a job that failed while the job went on.")
class JobFailure:
    subject: str = strawberry.field(description="What failed, e.g. a customer id.")
    code: str
    message: str


@strawberry.type(description="A count of a job's items by outcome, e.g. analysed or skipped.")
class JobCount:
    name: str
    value: int


@strawberry.type(description="Long-running work started through the API, and how far it got.")
class Job:
    id: strawberry.ID
    kind: JobKind  # type: ignore[valid-type]
    status: JobStatus  # type: ignore[valid-type]
    stage: str | None = strawberry.field(
        description="What it is doing now, e.g. reading, computing, saving, analysing."
    )
    done: int
    total: int
    counts: list[JobCount]
    failures: list[JobFailure] = strawberry.field(
        description="The first failed items, named (at most 20); `counts` keeps the full count."
    )
    message: str | None = strawberry.field(
        description="Why it failed, or a note on how it ended (e.g. how many items failed)."
    )
    parameters: JSON = strawberry.field(description="What it was started with.")
    result: JSON = strawberry.field(description="Its outcome in figures, once finished.")
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    revision: int = strawberry.field(
        description="Increases with every saved update; later updates have higher revisions."
    )

    @classmethod
    def from_domain(cls, job: DomainJob) -> Job:
        return cls(
            id=strawberry.ID(job.id),
            kind=job.kind,
            status=job.status,
            stage=job.stage,
            done=job.done,
            total=job.total,
            counts=[JobCount(name=k, value=v) for k, v in job.counts.items()],
            failures=[
                JobFailure(subject=f.subject, code=f.code, message=f.message) for f in job.failures
            ],
            message=job.message,
            parameters=cast("JSON", job.parameters),
            result=cast("JSON", job.result),
            requested_by=job.requested_by,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            updated_at=job.updated_at,
            revision=job.revision,
        )


@strawberry.type
class JobConnection:
    nodes: list[Job]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[DomainJob]) -> JobConnection:
        return cls(
            nodes=[Job.from_domain(j) for j in page.items], page_info=PageInfo.from_page(page)
        )


def job_service(info: Info[Context, None]) -> JobService:
    """The job service; JOB_UNAVAILABLE (a ConflictError) where the store keeps no jobs."""
    service = info.context.services.jobs
    if service is None:
        raise ConflictError("this store keeps no jobs", code="JOB_UNAVAILABLE")
    return service
