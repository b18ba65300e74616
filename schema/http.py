"""GraphQL over HTTP (the GraphQL-over-HTTP specification), kept lean: it is the request path.

Content negotiation: ``application/graphql-response+json`` when the client accepts it, else
``application/json``. Malformed requests get 4xx; with graphql-response+json a document that
fails to parse or validate gets 400, with plain JSON 200 and an ``errors`` list. GET runs
queries only (405 for a mutation); GET from a browser without a query renders GraphiQL."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from functools import lru_cache
from random import getrandbits
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from schema.auth import AuthenticationError, Authenticator
from schema.context import Context, Services
from schema.errors_policy import log_errors, present_error
from schema.ratelimit import RateLimiter
from schema.schema import OmnixSchema

log = logging.getLogger("omnix.http")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
MAX_BODY_BYTES = 1_000_000
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_GET_ONLY = frozenset({OperationType.QUERY})
_POST = frozenset({OperationType.QUERY, OperationType.MUTATION})


class RequestError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _media_types(header: str) -> list[tuple[str, float]]:
    types = []
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        if not fields[0]:
            continue
        q = 1.0
        for param in fields[1:]:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if q > 0:
            types.append((fields[0].lower(), q))
    return types


@lru_cache(maxsize=256)
def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None when nothing acceptable."""
    if not accept:
        return JSON
    best: tuple[float, int, str] | None = None
    for order, (media, q) in enumerate(_media_types(accept)):
        if media == GRAPHQL_RESPONSE:
            candidate = GRAPHQL_RESPONSE
        elif media in (JSON, "application/*", "*/*"):
            candidate = JSON
        else:
            continue
        key = (q, -order, candidate)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


Headers = dict[bytes, bytes]


def _headers(request: Request) -> Headers:
    """The request's headers by (lowercase) name, read once; the first of a repeated header
    wins, as with Starlette's ``Headers.get``."""
    raw = request.scope["headers"]
    return dict(reversed(raw if isinstance(raw, list) else list(raw)))


def _header(headers: Headers, name: bytes) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


def new_request_id() -> str:
    """24 hex digits from the process's generator (seeded by the OS): unique enough to find a
    request in the logs, without os.urandom's system call, which releases the GIL on every
    request and so hands it to a store thread mid-request."""
    return f"{getrandbits(96):024x}"


def _wants_ide(request: Request, headers: Headers) -> bool:
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and "text/html" in (_header(headers, b"accept") or "")
    )


def _json_param(raw: str | None, name: str) -> dict[str, Any] | None:
    if raw is None or raw == "":
        return None
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise RequestError(400, f"`{name}` is not valid JSON") from e
    if value is not None and not isinstance(value, dict):
        raise RequestError(400, f"`{name}` must be a JSON object")
    return value


async def _read_params(request: Request, headers: Headers) -> dict[str, Any]:
    if request.method == "GET":
        q = request.query_params
        return {
            "query": q.get("query"),
            "operationName": q.get("operationName") or None,
            "variables": _json_param(q.get("variables"), "variables"),
            "extensions": _json_param(q.get("extensions"), "extensions"),
        }
    content_type = _header(headers, b"content-type")
    if not content_type:
        raise RequestError(415, "POST needs Content-Type: application/json")
    media, *params = [p.strip().lower() for p in content_type.split(";")]
    if media != JSON:
        raise RequestError(415, f"unsupported Content-Type {media!r}; use application/json")
    for param in params:
        if param.startswith("charset=") and param[8:].strip('"') not in ("utf-8", "utf8"):
            raise RequestError(415, "only the utf-8 charset is supported")
    length = _header(headers, b"content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise RequestError(413, "request body too large")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise RequestError(413, "request body too large")
    if not body:
        raise RequestError(400, "POST needs a JSON body")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise RequestError(400, "the request body is not valid JSON") from e
    if not isinstance(data, dict):
        raise RequestError(
            400, "the request body must be a JSON object (batches are not supported)"
        )
    return data


def _check_params(params: dict[str, Any]) -> tuple[str, str | None, dict[str, Any] | None]:
    query = params.get("query")
    if not isinstance(query, str) or not query.strip():
        raise RequestError(400, "the request needs a `query` string")
    operation_name = params.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestError(400, "`operationName` must be a string")
    variables = params.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError(400, "`variables` must be an object")
    extensions = params.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError(400, "`extensions` must be an object")
    return query, operation_name, variables


def _encode(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)


def _error_response(
    status: int, message: str, media: str, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        _encode({"errors": [{"message": message}]}),
        status_code=status,
        media_type=media,
        headers={"x-request-id": request_id, **(headers or {})},
    )


def _is_request_error(errors: list[GraphQLError], data: Any) -> bool:
    """Errors raised before execution (parse, validation, variable coercion) carry no path."""
    return data is None and all(e.path is None for e in errors)


def graphql_endpoint(
    schema: OmnixSchema,
    authenticator: Authenticator,
    ide_html: str | None,
    *,
    compiled_queries: bool = True,
    limiter: RateLimiter | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """The POST/GET /graphql endpoint; domain services come from ``app.state.services``."""

    async def endpoint(request: Request) -> Response:
        services: Services = request.app.state.services
        headers = _headers(request)
        incoming = _header(headers, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else new_request_id()
        if ide_html is not None and _wants_ide(request, headers):
            return HTMLResponse(ide_html)
        media = negotiate(_header(headers, b"accept"))
        if media is None:
            return _error_response(
                406, f"acceptable media types: {GRAPHQL_RESPONSE}, {JSON}", JSON, request_id
            )
        try:
            principal = authenticator.authenticate(_header(headers, b"authorization"))
        except AuthenticationError as e:
            return _error_response(
                401, str(e), media, request_id, {"www-authenticate": 'Bearer realm="omnix"'}
            )
        if limiter is not None:
            caller = principal.subject
            if not principal.roles or caller == "dev":
                caller = f"address:{request.client.host if request.client else 'unknown'}"
            wait = limiter.acquire(caller)
            if wait > 0:
                return _error_response(
                    429,
                    f"rate limit exceeded; retry in {wait:.1f} s",
                    media,
                    request_id,
                    {"retry-after": str(max(1, math.ceil(wait)))},
                )
        try:
            query, operation_name, variables = _check_params(await _read_params(request, headers))
        except RequestError as e:
            return _error_response(e.status, e.message, media, request_id, e.headers)

        context = Context(services=services, principal=principal, request_id=request_id)
        prepared = schema.fast_path.prepare(query, operation_name)
        if prepared.errors:
            return _result_response(None, prepared.errors, media, request_id, request_error=True)
        if prepared.unknown_operation:
            reason = "the document has several operations: name one with operationName"
            if operation_name is not None:
                reason = f"unknown operation named {operation_name!r}"
            return _error_response(400, reason, media, request_id)
        if prepared.plan is not None and compiled_queries:
            data, errors = await schema.fast_path.execute(prepared, variables, context)
            request_error = data is None and bool(errors) and all(e.path is None for e in errors)
            if errors:
                log_errors(errors, request_id)
                errors = [present_error(e, request_id) for e in errors]
            return _result_response(data, errors, media, request_id, request_error=request_error)

        try:
            result = await schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
                allowed_operation_types=_GET_ONLY if request.method == "GET" else _POST,
            )
        except InvalidOperationTypeError as e:
            if e.operation_type == OperationType.SUBSCRIPTION:
                return _error_response(
                    400,
                    "subscriptions are served over WebSocket (graphql-transport-ws)",
                    media,
                    request_id,
                )
            return _error_response(
                405,
                "GET runs queries only; send mutations with POST",
                media,
                request_id,
                {"allow": "POST"},
            )
        except CannotGetOperationTypeError as e:
            return _error_response(400, e.as_http_error_reason(), media, request_id)
        request_error = result.errors is not None and _is_request_error(result.errors, result.data)
        return _result_response(
            result.data, result.errors, media, request_id, request_error=request_error
        )

    return endpoint


def _result_response(
    data: dict[str, Any] | None,
    errors: list[GraphQLError] | None,
    media: str,
    request_id: str,
    *,
    request_error: bool,
) -> Response:
    payload: dict[str, Any] = {}
    if errors:
        payload["errors"] = [e.formatted for e in errors]
    if not request_error:
        payload["data"] = data
    status = 400 if request_error and media == GRAPHQL_RESPONSE else 200
    return Response(
        _encode(payload),
        status_code=status,
        media_type=media,
        headers={"x-request-id": request_id},
    )
