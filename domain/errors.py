"""Errors the domain raises. Adapters translate vendor failures into these; the API maps the
expected ones to typed results and masks the rest."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain knows about."""

    code = "DOMAIN_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(DomainError):
    """Input that can never succeed as given. Nothing was written."""

    code = "VALIDATION_ERROR"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        if code is not None:
            self.code = code


class NotFoundError(DomainError):
    """A referenced entity does not exist. Nothing was written."""

    code = "NOT_FOUND"

    def __init__(self, entity: str, key: str, *, field: str | None = None) -> None:
        super().__init__(f"{entity} {key!r} does not exist")
        self.entity = entity
        self.key = key
        self.field = field


class ConflictError(DomainError):
    """The write collides with existing state (a taken email, a reused idempotency key)."""

    code = "CONFLICT"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        if code is not None:
            self.code = code


class ForbiddenError(DomainError):
    """The caller's role does not allow this."""

    code = "FORBIDDEN"


class StoreUnavailableError(DomainError):
    """A backing store or broker could not be reached or timed out; safe to retry."""

    code = "UNAVAILABLE"


class EventTooLargeError(ValidationError):
    """Events whose encoded size exceeds what the event log accepts in one record. None of them
    was appended; ``event_ids`` names them."""

    code = "EVENT_TOO_LARGE"

    def __init__(self, event_ids: tuple[str, ...], limit_bytes: int) -> None:
        super().__init__(
            f"{len(event_ids)} event(s) exceed the {limit_bytes}-byte record limit: "
            + ", ".join(event_ids[:5])
        )
        self.event_ids = event_ids
        self.limit_bytes = limit_bytes


class EventPublishError(StoreUnavailableError):
    """The event log kept refusing some events after every retry. ``published_ids`` were
    appended, ``failed_ids`` were not; appending the failed ones again is safe."""

    def __init__(
        self, message: str, *, published_ids: tuple[str, ...], failed_ids: tuple[str, ...]
    ) -> None:
        super().__init__(message)
        self.published_ids = published_ids
        self.failed_ids = failed_ids
