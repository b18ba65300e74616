"""How errors leave the API. Expected domain errors keep their message and gain a code;
anything else is masked as INTERNAL with the request id, and logged with its traceback."""

from __future__ import annotations

import logging
from typing import Any

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from domain.errors import DomainError, StoreUnavailableError
from subscriptions.hub import SlowSubscriberError

log = logging.getLogger("omnix.api")

EXPECTED = (DomainError, SlowSubscriberError)


def _request_id(context: Any) -> str | None:
    return getattr(context, "request_id", None)


def is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None:
        return False  # syntax and validation errors are the caller's, and safe to show
    return not isinstance(original, EXPECTED) or isinstance(original, StoreUnavailableError)


def present_error(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """The error as the caller sees it: expected ones with their code, the rest masked."""
    original = error.original_error
    if original is None:
        return error
    extensions = dict(error.extensions or {})
    if is_unexpected(error):
        code = "UNAVAILABLE" if isinstance(original, StoreUnavailableError) else "INTERNAL"
        message = (
            "A backing service is unavailable; retry later."
            if code == "UNAVAILABLE"
            else "Internal server error."
        )
        extensions.update(code=code, requestId=request_id)
        return GraphQLError(message, nodes=error.nodes, path=error.path, extensions=extensions)
    extensions["code"] = getattr(original, "code", "ERROR")
    if field := getattr(original, "field", None):
        extensions["field"] = field
    return GraphQLError(
        str(original.args[0]) if original.args else error.message,
        nodes=error.nodes,
        path=error.path,
        extensions=extensions,
    )


class ErrorPolicy(MaskErrors):
    """Applies ``present_error`` to every result strawberry executes (HTTP fallback and
    WebSocket operations)."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda _: True)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return present_error(error, _request_id(self.execution_context.context))


def log_errors(errors: list[GraphQLError], request_id: str | None) -> None:
    for error in errors:
        if is_unexpected(error):
            original = error.original_error
            log.error(
                "unexpected error in %s (request id %s): %s",
                ".".join(str(p) for p in error.path or []) or "operation",
                request_id,
                original,
                exc_info=(type(original), original, original.__traceback__) if original else None,
            )
        else:
            log.debug("request %s: %s", request_id, error.message)
