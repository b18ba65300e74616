"""The Kinesis publisher: the outbox relay's ``EventSink``.

Events go out with PutRecords in batches of at most 500 records and 5 MiB, each record keyed by
its customer id, so one customer's events share a shard and are read back in sequence order.
PutRecords is not atomic: a response may report some records failed (throttling, an internal
error). Only those are sent again, with full-jitter exponential backoff, up to ``max_attempts``;
what still fails is reported as EventPublishError naming which events did go out. Nothing here
relies on the order of records inside one call."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from adapters.kinesis.errors import AWS_ERRORS, error_code, is_retryable
from domain.errors import EventPublishError, EventTooLargeError, ValidationError
from domain.events import DomainEvent
from domain.ports import EventSink

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024  # data plus partition key
MAX_PARTITION_KEY_CHARS = 256


class KinesisPutClient(Protocol):
    async def put_records(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class _Entry:
    event_id: str
    data: bytes
    key: str

    @property
    def size(self) -> int:
        return len(self.data) + len(self.key.encode())

    def record(self) -> dict[str, Any]:
        return {"Data": self.data, "PartitionKey": self.key}


@dataclass
class PublisherStats:
    calls: int = 0
    records: int = 0  # records carried by those calls, retries included
    retried_records: int = 0
    failed_records: int = 0

    @property
    def mean_batch_fill(self) -> float:
        """Records per PutRecords call, on average (500 is a full call)."""
        return self.records / self.calls if self.calls else 0.0


def encode(event: DomainEvent) -> _Entry:
    key = event.customer_id
    if not 1 <= len(key) <= MAX_PARTITION_KEY_CHARS:
        raise ValidationError(
            f"event {event.id}: a partition key (customer id) must be 1-256 characters",
            field="customerId",
        )
    return _Entry(event.id, event.to_json().encode(), key)


def batches(entries: Sequence[_Entry]) -> list[list[_Entry]]:
    """Consecutive runs of at most 500 records and 5 MiB, in the given order."""
    out: list[list[_Entry]] = []
    current: list[_Entry] = []
    size = 0
    for entry in entries:
        if current and (
            len(current) == MAX_RECORDS_PER_CALL or size + entry.size > MAX_BYTES_PER_CALL
        ):
            out.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry.size
    if current:
        out.append(current)
    return out


class KinesisEventLog(EventSink):
    def __init__(
        self,
        client: KinesisPutClient,
        stream: str,
        *,
        max_attempts: int = 8,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self._client = client
        self._stream = stream
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self.stats = PublisherStats()

    async def append(self, events: Sequence[DomainEvent]) -> None:
        entries = [encode(event) for event in events]
        too_large = tuple(e.event_id for e in entries if e.size > MAX_BYTES_PER_RECORD)
        if too_large:
            raise EventTooLargeError(too_large, MAX_BYTES_PER_RECORD)
        published: list[str] = []
        chunks = batches(entries)
        for n, chunk in enumerate(chunks):
            failed, reason = await self._put(chunk, published)
            if failed:
                not_sent = [e.event_id for later in chunks[n + 1 :] for e in later]
                raise EventPublishError(
                    f"Kinesis stream {self._stream!r} refused {len(failed)} record(s) after "
                    f"{self._max_attempts} attempt(s) ({reason})",
                    published_ids=tuple(published),
                    failed_ids=tuple(failed + not_sent),
                )

    async def _put(self, chunk: list[_Entry], published: list[str]) -> tuple[list[str], str]:
        """Send ``chunk``, resending only what failed; appends what went out to ``published``
        and returns the ids still failing after the last attempt, with the last reason."""
        pending = chunk
        reason = ""
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1:
                self.stats.retried_records += len(pending)
                ceiling = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
                await self._sleep(random.uniform(0, ceiling))
            try:
                response = await self._client.put_records(
                    StreamName=self._stream, Records=[e.record() for e in pending]
                )
            except AWS_ERRORS as e:
                reason = error_code(e)
                if not is_retryable(e):
                    break
                continue
            self.stats.calls += 1
            self.stats.records += len(pending)
            results = response.get("Records", [])
            if len(results) != len(pending):
                reason = f"{len(results)} results for {len(pending)} records"
                continue  # cannot tell which went out: send them all again
            still: list[_Entry] = []
            for entry, result in zip(pending, results, strict=True):
                if result.get("ErrorCode"):
                    still.append(entry)
                    reason = str(result["ErrorCode"])
                else:
                    published.append(entry.event_id)
            pending = still
            if not pending:
                return [], ""
        self.stats.failed_records += len(pending)
        return [e.event_id for e in pending], reason or "unknown"
