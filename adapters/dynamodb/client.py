"""The DynamoDB connection behind the stores: pynamodb's blocking calls run in a bounded thread
pool, each under a timeout, and vendor failures come out as domain errors.

AWS error text is logged here and never put in a domain error's message: a client sees
"unavailable, retry", an operator sees why in the log.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from adapters.dynamodb.config import DynamoConfig
from adapters.dynamodb.models import Tables, bind
from domain.errors import DomainError, StoreUnavailableError
from domain.ports import HealthCheck

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=Model)

BATCH_WRITE_SIZE = 25  # BatchWriteItem's limit
BATCH_GET_SIZE = 100  # BatchGetItem's limit
BATCH_ATTEMPTS = 8
BACKOFF_BASE = 0.05
BACKOFF_CAP = 2.0

_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "TransactionConflictException",
    "LimitExceededException",
}


class TransactionCancelled(Exception):
    """A TransactWriteItems call was cancelled; ``reasons[i]`` is the code for the i-th item
    (``None`` when that item was not the cause)."""

    def __init__(self, reasons: list[str | None]) -> None:
        super().__init__(f"transaction cancelled: {reasons}")
        self.reasons = reasons


class RequestTokenReused(Exception):
    """DynamoDB saw the transaction's ClientRequestToken within ten minutes with other content."""


class BatchWriteFailed(StoreUnavailableError):
    """Items a batch write could not store after every retry. Nothing is lost by it: the
    stores write what makes an item known last, so writing the same input again completes it."""

    def __init__(self, failed: int, total: int, attempts: int) -> None:
        super().__init__(
            f"{failed} of {total} items could not be written to DynamoDB after {attempts} "
            "attempts (throttled); writing the same input again is safe"
        )
        self.failed = failed
        self.total = total


@dataclass(frozen=True, slots=True)
class Put:
    """One put of a transaction, with the condition it must meet."""

    item: Model
    condition: Condition | None = None


@dataclass(frozen=True, slots=True)
class Update:
    item: Model
    actions: Sequence[Action]
    condition: Condition | None = None


def error_code(error: BaseException) -> str | None:
    if isinstance(error, PynamoDBException):
        return error.cause_response_code
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def translate(error: BaseException, what: str) -> DomainError:
    """The domain error for a vendor failure; the vendor's own words go to the log only."""
    code = error_code(error)
    log.warning("DynamoDB %s failed (%s): %s", what, code or type(error).__name__, error)
    if code == "ResourceNotFoundException":
        return StoreUnavailableError(
            "a DynamoDB table is missing: run `omnix init` against this store"
        )
    if code in _RETRYABLE:
        return StoreUnavailableError("DynamoDB is busy or throttling; retry shortly")
    return StoreUnavailableError(f"DynamoDB {what} failed ({code or 'no answer'})")


def backoff(attempt: int) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class DynamoClient(HealthCheck):
    """The bound tables, one pynamodb connection for transactions and batches, and the pool."""

    def __init__(self, config: DynamoConfig) -> None:
        self.config = config
        self.tables: Tables = bind(config)
        self._connection = Connection(
            region=config.region,
            host=config.endpoint,
            connect_timeout_seconds=min(config.timeout, 5.0),
            read_timeout_seconds=config.timeout,
            max_retry_attempts=3,
            max_pool_connections=config.threads,
        )
        self._pool: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        if self._pool is not None:
            raise RuntimeError("the DynamoDB client is already open")
        self._pool = ThreadPoolExecutor(self.config.threads, thread_name_prefix="omnix-dynamodb")
        await self.run(self._connect, what="connect")

    def _connect(self) -> None:
        """Create the botocore client once and give it to every model's table connection.
        Creating one is not thread-safe and costs ~0.2 s (it loads the service model); the
        models share the same settings, so one client serves them all."""
        client = self.api
        for model in self.tables.all:
            model._get_connection().connection._client = client

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True)

    async def ping(self) -> None:
        table = self.tables.main.Meta.table_name
        await self.run(partial(self.api.describe_table, TableName=table), what="ping")

    @property
    def api(self) -> Any:
        """The botocore client under pynamodb, for the table administration pynamodb lacks."""
        return self._connection.client

    async def run(self, fn: Callable[[], T], *, what: str, raw: bool = False) -> T:
        """Run one blocking call in the pool within the timeout. A call that times out raises
        StoreUnavailableError; if it was a write it may still land, which is why every write is
        conditional or idempotent. Vendor errors become domain errors unless ``raw``."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailableError("the DynamoDB store is not open")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.config.timeout):
                return await loop.run_in_executor(pool, fn)
        except TimeoutError as e:
            raise StoreUnavailableError(
                f"DynamoDB did not answer within {self.config.timeout:g}s"
            ) from e
        except (PynamoDBException, BotoCoreError, ClientError) as e:
            if raw:
                raise
            raise translate(e, what) from e

    async def transact(
        self,
        puts: Sequence[Put],
        updates: Sequence[Update] = (),
        *,
        token: str | None = None,
        what: str,
    ) -> None:
        """One TransactWriteItems: the puts, then the updates (``reasons`` in a
        TransactionCancelled follow that order). ``token`` makes a retried call idempotent for
        ten minutes."""

        def commit() -> None:
            try:
                with TransactWrite(connection=self._connection, client_request_token=token) as tx:
                    for put in puts:
                        tx.save(put.item, condition=put.condition)
                    for update in updates:
                        tx.update(update.item, list(update.actions), condition=update.condition)
            except TransactWriteError as e:
                if e.cause_response_code == "TransactionCanceledException":
                    raise TransactionCancelled(
                        [reason.code if reason else None for reason in e.cancellation_reasons]
                    ) from e
                if e.cause_response_code == "IdempotentParameterMismatchException":
                    raise RequestTokenReused() from e
                raise

        await self.run(commit, what=what)

    async def batch_get(
        self, model: type[M], keys: Sequence[tuple[str, str] | str], *, what: str
    ) -> list[M]:
        """The items that exist among ``keys``, read consistently, 100 keys per call, the calls
        in parallel (bounded by the pool)."""
        if not keys:
            return []

        def get(part: Sequence[tuple[str, str] | str]) -> list[M]:
            return list(model.batch_get(list(part), consistent_read=True))

        parts = await asyncio.gather(
            *(self.run(partial(get, part), what=what) for part in chunks(keys, BATCH_GET_SIZE))
        )
        return [item for part in parts for item in part]

    async def batch_put(self, items: Sequence[Model], *, what: str) -> None:
        """Put ``items`` with BatchWriteItem, 25 per call, the calls in parallel (bounded by the
        pool). Unprocessed items are retried with full-jitter exponential backoff; what is
        still unprocessed after BATCH_ATTEMPTS raises BatchWriteFailed."""
        if not items:
            return
        requests = [
            (type(item).Meta.table_name, {"PutRequest": {"Item": item.serialize()}})
            for item in items
        ]
        left = await asyncio.gather(
            *(self._batch_write(part, what) for part in chunks(requests, BATCH_WRITE_SIZE))
        )
        failed = sum(left)
        if failed:
            raise BatchWriteFailed(failed, len(items), BATCH_ATTEMPTS)

    async def batch_write(
        self, requests: Sequence[tuple[str, dict[str, Any]]], *, what: str
    ) -> None:
        """BatchWriteItem of raw ``(table name, PutRequest or DeleteRequest)`` pairs, as
        ``batch_put`` does for models."""
        left = await asyncio.gather(
            *(self._batch_write(part, what) for part in chunks(requests, BATCH_WRITE_SIZE))
        )
        if sum(left):
            raise BatchWriteFailed(sum(left), len(requests), BATCH_ATTEMPTS)

    async def _batch_write(self, requests: Sequence[tuple[str, dict[str, Any]]], what: str) -> int:
        """Write one chunk; returns how many items stayed unprocessed."""
        pending: dict[str, list[dict[str, Any]]] = {}
        for table, request in requests:
            pending.setdefault(table, []).append(request)
        client = self.api
        for attempt in range(BATCH_ATTEMPTS):
            if attempt:
                await asyncio.sleep(backoff(attempt))
            response = await self.run(
                partial(client.batch_write_item, RequestItems=pending), what=what
            )
            pending = {t: r for t, r in response.get("UnprocessedItems", {}).items() if r}
            if not pending:
                return 0
        unprocessed = sum(len(r) for r in pending.values())
        log.warning("DynamoDB %s: %d items unprocessed after retries", what, unprocessed)
        return unprocessed
