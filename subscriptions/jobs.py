"""The jobProgress subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from domain.access import Role
from schema.context import Context
from schema.types.jobs import Job, job_service


async def job_progress(info: Info[Context, None], id: strawberry.ID) -> AsyncGenerator[Job, None]:
    """A job as it is now, then every update, ending after the final state (staff only). An
    unknown id is a NOT_FOUND error."""
    info.context.principal.require(Role.ADMIN, Role.ANALYST, Role.SERVICE)
    async for job in job_service(info).follow(id):
        yield Job.from_domain(job)
