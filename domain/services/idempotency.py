"""Idempotency keys: a retried create returns the first result instead of writing again."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from domain.errors import ConflictError, ValidationError
from domain.ports import DuplicateRequestError, IdempotencyClaim, IdempotencyStore

T = TypeVar("T")

_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")


def request_fingerprint(request: Any) -> str:
    """A stable hash of a request's canonical JSON form."""
    raw = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise ValidationError(
            "idempotencyKey must be 1-128 printable ASCII characters without spaces",
            field="idempotencyKey",
            code="INVALID_IDEMPOTENCY_KEY",
        )
    return key


class Idempotency:
    """Runs a create at most once per (scope, key); replays answer with the recorded result."""

    def __init__(self, store: IdempotencyStore) -> None:
        self._store = store

    async def run(
        self,
        *,
        scope: str,
        key: str | None,
        request: Any,
        now: datetime,
        new_id: str,
        create: Callable[[IdempotencyClaim | None], Awaitable[T]],
        replay: Callable[[str], Awaitable[T]],
    ) -> T:
        """``create(claim)`` writes the new entity (id ``new_id``) with the claim in one
        transaction; ``replay(result_id)`` loads what an earlier identical call created."""
        if key is None:
            return await create(None)
        check_key(key)
        fingerprint = request_fingerprint(request)
        existing = await self._store.find_claim(scope, key)
        if existing is None:
            claim = IdempotencyClaim(scope, key, fingerprint, new_id, now)
            try:
                return await create(claim)
            except DuplicateRequestError as race:
                existing = race.existing
        if existing.request_hash != fingerprint:
            raise ConflictError(
                "this idempotencyKey was already used with a different input",
                field="idempotencyKey",
                code="IDEMPOTENCY_KEY_REUSED",
            )
        return await replay(existing.result_id)
