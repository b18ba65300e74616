"""Jobs in SQLite: one row per job, the whole job as JSON beside the columns it is listed and
guarded by. Ids sort by creation time, so newest first is descending id."""

from __future__ import annotations

import sqlite3

from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.stores import _claim as record_claim
from domain.jobs import UNFINISHED, Job, JobStatus, job_after, job_cursor
from domain.pagination import Page, check_page_size
from domain.ports import IdempotencyClaim, JobStore

_INSERT = (
    "INSERT INTO jobs (id, kind, status, revision, updated_at, body) VALUES (?, ?, ?, ?, ?, ?)"
)
_UPDATE = (
    "UPDATE jobs SET status = ?, revision = ?, updated_at = ?, body = ? "
    "WHERE id = ? AND revision = ?"
)
_GET = "SELECT body FROM jobs WHERE id = ?"
_UNFINISHED = (
    f"SELECT body FROM jobs WHERE status IN ({', '.join('?' for _ in UNFINISHED)}) ORDER BY id"
)


def _row(job: Job) -> tuple[str, str, str, int, str, str]:
    return (
        job.id,
        job.kind.value,
        job.status.value,
        job.revision,
        job.updated_at.isoformat(),
        job.to_json(),
    )


class SqliteJobStore(JobStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def add(self, job: Job, claim: IdempotencyClaim | None) -> None:
        row = _row(job)

        def insert(conn: sqlite3.Connection) -> None:
            record_claim(conn, claim)
            conn.execute(_INSERT, row)

        await self._db.write(insert)

    async def save(self, job: Job) -> bool:
        params = (
            job.status.value,
            job.revision,
            job.updated_at.isoformat(),
            job.to_json(),
            job.id,
            job.revision - 1,
        )

        def update(conn: sqlite3.Connection) -> bool:
            return conn.execute(_UPDATE, params).rowcount == 1

        return await self._db.write(update)

    async def get(self, job_id: str) -> Job | None:
        row = await self._db.fetch_one(_GET, (job_id,))
        return Job.from_json(row[0]) if row is not None else None

    async def page(self, *, first: int, after: str | None, status: JobStatus | None) -> Page[Job]:
        check_page_size(first)
        where, params = [], []
        if after is not None:
            where.append("id < ?")
            params.append(job_after(after))
        if status is not None:
            where.append("status = ?")
            params.append(status.value)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = await self._db.fetch_all(
            f"SELECT body FROM jobs {clause}ORDER BY id DESC LIMIT ?", (*params, first + 1)
        )
        jobs = [Job.from_json(r[0]) for r in rows[:first]]
        end = job_cursor(jobs[-1]) if jobs else None
        return Page(items=jobs, end_cursor=end, has_next_page=len(rows) > first)

    async def unfinished(self) -> list[Job]:
        rows = await self._db.fetch_all(_UNFINISHED, [s.value for s in UNFINISHED])
        return [Job.from_json(r[0]) for r in rows]
