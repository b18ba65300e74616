"""Shared subscription streams: each distinct live subscription runs once per process.

Subscribers that send the same subscription document with the same variables, as the same
principal, receive the same results. Run per subscriber, every event would be executed (the
resolver, the GraphQL execution, error masking) as many times as there are subscribers, which
is most of what fan-out costs. So the process runs one stream per distinct subscription, the
first subscriber's, and hands each result to every subscriber of it through a bounded queue of
its own; each subscriber's task only frames the result with its operation id and sends it.

Only fields in ``LIVE_ONLY`` are shared: fields whose stream depends on nothing but their
arguments and the caller, and which deliver only what happens after the subscription starts (a
subscriber joining a running stream then gets exactly what a stream of its own would have
given). Subscriptions that replay from a ``since`` cursor each run their own stream.

A subscriber whose queue overflows (its socket does not keep up) is cut off alone, as the hub
cuts off a slow listener: it gets a SLOW_SUBSCRIBER error and ``complete``, and the others
carry on. The stream stops when its last subscriber leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSyntaxError,
    OperationType,
    get_operation_ast,
    parse,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError

from domain.access import Principal
from subscriptions.hub import Listener, SlowSubscriberError

log = logging.getLogger(__name__)

LIVE_ONLY = frozenset({"purchaseRecorded", "segmentChanged"})

Handler = BaseGraphQLTransportWSHandler[Any, Any]


@dataclass(frozen=True, slots=True)
class _Key:
    query: str
    operation_name: str | None
    variables: str
    principal: Principal


@lru_cache(maxsize=256)
def _parsed(query: str) -> DocumentNode | None:
    try:
        return parse(query)
    except GraphQLSyntaxError:
        return None


def _root_field(query: str, operation_name: str | None) -> str | None:
    """The one root field of a subscription operation, or None for anything else."""
    document = _parsed(query)
    if document is None:
        return None
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
        return None
    selections = operation.selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode):
        return None
    if selections[0].directives:
        return None
    return selections[0].name.value


def _payload(result: ExecutionResult) -> dict[str, Any]:
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return payload


class _Stream:
    """One running subscription and the queues of the subscribers it feeds."""

    def __init__(self, streams: SharedStreams, key: _Key, handler: Handler, variables: Any) -> None:
        self.key = key
        self.listeners: set[Listener] = set()
        self._streams = streams
        self.task = asyncio.create_task(self._run(handler, variables), name="shared-stream")

    def _offer(self, message: tuple[str, Any]) -> None:
        for listener in tuple(self.listeners):
            listener.offer(message)

    async def _run(self, handler: Handler, variables: Any) -> None:
        try:
            source = await handler.schema.stream(
                self.key.query,
                variable_values=variables,
                context_value=handler.context,
                root_value=handler.root_value,
                operation_name=self.key.operation_name,
            )
            first = True
            async with contextlib.aclosing(source):
                async for result in source:
                    if first and isinstance(result, PreExecutionError):
                        self._offer(("error", [e.formatted for e in result.errors or []]))
                        return
                    if not isinstance(result, ExecutionResult):
                        message = "Incremental delivery is not supported over graphql-transport-ws"
                        self._offer(("error", [GraphQLError(message).formatted]))
                        return
                    first = False
                    self._streams.results += 1
                    self._offer(("next", _payload(result)))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("shared subscription stream failed")
            self._offer(("error", [GraphQLError("Internal server error.").formatted]))
        finally:
            self._streams.forget(self)
            for listener in tuple(self.listeners):
                listener.close()


class SharedStreams:
    """The process's shared subscription streams, by document, variables and principal."""

    def __init__(self, *, queue_size: int = 256, fields: frozenset[str] = LIVE_ONLY) -> None:
        self._queue_size = queue_size
        self._fields = fields
        self._streams: dict[_Key, _Stream] = {}
        self.results = 0

    def _key(self, handler: Handler, operation: Operation[Any, Any]) -> _Key | None:
        if _root_field(operation.query, operation.operation_name) not in self._fields:
            return None
        principal = getattr(handler.context, "principal", None)
        if not isinstance(principal, Principal):
            return None
        try:
            variables = json.dumps(operation.variables or {}, sort_keys=True)
        except (TypeError, ValueError):
            return None
        return _Key(operation.query, operation.operation_name, variables, principal)

    async def run(self, handler: Handler, operation: Operation[Any, Any]) -> bool:
        """Serve ``operation`` from a shared stream until it ends; False (having done nothing)
        when the operation is not one that may share."""
        key = self._key(handler, operation)
        if key is None:
            return False
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(self, key, handler, operation.variables)
        listener = Listener(self._queue_size)
        stream.listeners.add(listener)
        try:
            await self._deliver(operation, listener)
        finally:
            self._leave(stream, listener)
        return True

    async def _deliver(self, operation: Operation[Any, Any], listener: Listener) -> None:
        try:
            async for kind, payload in listener:
                if kind == "error":
                    await operation.send_operation_message(
                        {"id": operation.id, "type": "error", "payload": payload}
                    )
                    return
                await operation.send_operation_message(
                    {"id": operation.id, "type": "next", "payload": payload}
                )
        except SlowSubscriberError as e:
            error = GraphQLError(str(e), extensions={"code": e.code})
            await operation.send_operation_message(
                {
                    "id": operation.id,
                    "type": "next",
                    "payload": {"data": None, "errors": [error.formatted]},
                }
            )
        await operation.send_operation_message({"id": operation.id, "type": "complete"})

    def _leave(self, stream: _Stream, listener: Listener) -> None:
        stream.listeners.discard(listener)
        if not stream.listeners:
            self.forget(stream)
            stream.task.cancel()

    def forget(self, stream: _Stream) -> None:
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]

    def stats(self) -> dict[str, int]:
        """Shared streams running, the subscribers they feed and the results they executed."""
        return {
            "streams": len(self._streams),
            "subscribers": sum(len(s.listeners) for s in self._streams.values()),
            "results": self.results,
        }
