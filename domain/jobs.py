"""Jobs: long-running work started through the API (a recompute, a segment refit, a batch of
analyses) whose progress is kept in the store and streamed to whoever follows it.

A job is written whole each time it changes, with a ``revision`` one higher than the last: the
store refuses a write whose previous revision is not the stored one, so a job taken over as
interrupted is never overwritten by the process that lost it, and followers order the updates
they receive by revision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.errors import ValidationError
from domain.pagination import decode_cursor, encode_cursor

MAX_JOB_FAILURES = 20
"""Failures named on a job; the ``failed`` count goes on beyond it."""


class JobKind(StrEnum):
    RECOMPUTE = "RECOMPUTE"
    SEGMENT_REFIT = "SEGMENT_REFIT"
    BATCH_ANALYSIS = "BATCH_ANALYSIS"


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)


def job_channel(job_id: str) -> str:
    """The bus channel on which one job's updates are published."""
    return f"omnix.jobs.{job_id}"


@dataclass(frozen=True, slots=True)
class JobFailure:
    """One item of a job that failed (a customer of a batch) while the job went on."""

    subject: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: JobKind
    status: JobStatus
    requested_by: str
    created_at: datetime
    updated_at: datetime
    parameters: dict[str, Any] = field(default_factory=dict)
    """What the job was started with (JSON values), e.g. ``{"segment": "AT_RISK"}``."""
    stage: str | None = None
    done: int = 0
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    """Running counts by outcome, e.g. analysed, skipped, failed."""
    failures: tuple[JobFailure, ...] = ()
    message: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    """The outcome in figures once finished, e.g. the model version and how many were saved."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    revision: int = 1

    @property
    def finished(self) -> bool:
        return self.status.finished

    def next_revision(self, **changes: Any) -> Job:
        """This job with ``changes`` as the next revision."""
        return replace(self, revision=self.revision + 1, **changes)

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "kind": self.kind.value,
                "status": self.status.value,
                "requestedBy": self.requested_by,
                "createdAt": self.created_at.isoformat(),
                "updatedAt": self.updated_at.isoformat(),
                "parameters": self.parameters,
                "stage": self.stage,
                "done": self.done,
                "total": self.total,
                "counts": self.counts,
                "failures": [[f.subject, f.code, f.message] for f in self.failures],
                "message": self.message,
                "result": self.result,
                "startedAt": _iso(self.started_at),
                "finishedAt": _iso(self.finished_at),
                "revision": self.revision,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Job:
        data = json.loads(raw)
        return cls(
            id=data["id"],
            kind=JobKind(data["kind"]),
            status=JobStatus(data["status"]),
            requested_by=data["requestedBy"],
            created_at=datetime.fromisoformat(data["createdAt"]),
            updated_at=datetime.fromisoformat(data["updatedAt"]),
            parameters=data["parameters"],
            stage=data["stage"],
            done=data["done"],
            total=data["total"],
            counts=data["counts"],
            failures=tuple(JobFailure(*f) for f in data["failures"]),
            message=data["message"],
            result=data["result"],
            started_at=_moment(data["startedAt"]),
            finished_at=_moment(data["finishedAt"]),
            revision=data["revision"],
        )


def job_cursor(job: Job) -> str:
    """The cursor of a page of jobs ending with ``job`` (newest first, so: older than it)."""
    return encode_cursor("job", [job.id])


def job_after(cursor: str) -> str:
    """The id a jobs cursor stands after. ValidationError for anything but such a cursor."""
    position = decode_cursor("job", cursor)
    if len(position) != 1 or not isinstance(position[0], str):
        raise ValidationError("malformed cursor", field="after", code="INVALID_CURSOR")
    return position[0]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _moment(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw is not None else None
