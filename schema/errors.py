"""Expected failures as schema types (members of mutation result unions)."""

from __future__ import annotations

import strawberry

from domain import errors as domain_errors


@strawberry.interface(description="A failure the caller can act on; nothing was written.")
class UserError:
    code: str
    message: str
    field: str | None = strawberry.field(
        description="The input path at fault, e.g. lines[2].quantity."
    )


@strawberry.type(description="The input is invalid as given.")
class ValidationError(UserError):
    pass


@strawberry.type(description="A referenced entity does not exist.")
class NotFoundError(UserError):
    pass


@strawberry.type(description="The write collides with existing state.")
class ConflictError(UserError):
    pass


def validation_error(e: domain_errors.ValidationError) -> ValidationError:
    return ValidationError(code=e.code, message=e.message, field=e.field)


def not_found_error(e: domain_errors.NotFoundError) -> NotFoundError:
    return NotFoundError(code=e.code, message=e.message, field=e.field)


def conflict_error(e: domain_errors.ConflictError) -> ConflictError:
    return ConflictError(code=e.code, message=e.message, field=e.field)
