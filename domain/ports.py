"""The ports: what the domain needs from the outside world, as small Protocols named for their role.

Every write that changes state takes the domain event(s) it produces; the store persists them in
the same transaction as the change (an outbox), so no accepted write exists without its event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.analysis import AiUsage, AiUsageGroup, AnalysisInput, AnalystAnswer
from domain.anomalies import Anomaly, Insight, Severity
from domain.customers import Consent, Customer
from domain.errors import DomainError
from domain.events import DomainEvent, LoggedEvent
from domain.jobs import Job, JobStatus
from domain.pagination import Page
from domain.predictions import CustomerPredictions, PredictionModel
from domain.products import Product
from domain.purchases import Purchase
from domain.recommendations import ItemProfile, RecommendationModel
from domain.segments import (
    CustomerSegment,
    SegmentChange,
    SegmentCode,
    SegmentKpis,
    SegmentMigration,
    SegmentModel,
    SegmentSummary,
    SegmentText,
)


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """Written with the first successful result of a create mutation: ``scope`` names the
    operation, ``request_hash`` fingerprints the input, ``result_id`` is what was created."""

    scope: str
    key: str
    request_hash: str
    result_id: str
    created_at: datetime


class DuplicateRequestError(Exception):
    """Raised by a store when an idempotency claim for (scope, key) already exists; the caller
    answers with the recorded result instead of writing again."""

    def __init__(self, existing: IdempotencyClaim) -> None:
        super().__init__(f"idempotency key {existing.key!r} already used for {existing.scope}")
        self.existing = existing


@dataclass(frozen=True, slots=True)
class PurchasePageRequest:
    customer_id: str
    first: int
    after: str | None = None


class IdempotencyStore(Protocol):
    async def find_claim(self, scope: str, key: str) -> IdempotencyClaim | None: ...


class CustomerStore(Protocol):
    async def add(
        self, customer: Customer, event: DomainEvent, claim: IdempotencyClaim | None
    ) -> None:
        """Insert the customer, its event and the claim atomically. Raises ConflictError
        (code EMAIL_TAKEN or ID_TAKEN) or DuplicateRequestError; nothing is written then."""
        ...

    async def add_many(self, customers: Sequence[Customer], events: Sequence[DomainEvent]) -> int:
        """Insert the customers whose ids are new, with their events; returns how many were new.
        ``events[i]`` belongs to ``customers[i]``."""
        ...

    async def get(self, customer_id: str) -> Customer | None: ...

    async def get_many(self, customer_ids: Sequence[str]) -> dict[str, Customer]: ...

    async def list(
        self,
        *,
        first: int,
        after: str | None,
        search: str | None,
        segment: SegmentCode | None = None,
    ) -> Page[Customer]:
        """Customers in id order; ``search`` matches part of a name or email, ignoring case;
        ``segment`` keeps the customers whose stored segment is that one."""
        ...

    async def set_consent(self, customer_id: str, consent: Consent, event: DomainEvent) -> Customer:
        """Replace the consent flags and append the event atomically. NotFoundError if unknown."""
        ...

    async def count(self) -> int: ...


class ProductStore(Protocol):
    async def upsert_many(self, products: Sequence[Product]) -> int: ...

    async def get(self, sku: str) -> Product | None: ...

    async def get_many(self, skus: Sequence[str]) -> dict[str, Product]: ...

    async def list(self, *, first: int, after: str | None, category: str | None) -> Page[Product]:
        """Products in sku order, optionally of one category."""
        ...

    async def count(self) -> int: ...


class PurchaseStore(Protocol):
    async def add(
        self, purchase: Purchase, event: DomainEvent, claim: IdempotencyClaim | None
    ) -> None:
        """Insert the purchase with its lines, its event and the claim atomically.
        Raises DuplicateRequestError (nothing written) when the claim exists."""
        ...

    async def add_many(self, purchases: Sequence[Purchase], events: Sequence[DomainEvent]) -> int:
        """Insert the purchases whose ids are new, each with its event (``events[i]`` belongs to
        ``purchases[i]``), all or nothing; returns how many were new."""
        ...

    async def get(self, purchase_id: str) -> Purchase | None: ...

    async def list_for_customers(
        self, requests: Sequence[PurchasePageRequest]
    ) -> list[Page[Purchase]]:
        """One page of each customer's purchases, newest first, answered in one round trip;
        the result is aligned with ``requests``."""
        ...

    async def count(self) -> int: ...


class EventLog(Protocol):
    """Domain events in the order they were accepted, read by position; consumers keep
    checkpoints and must de-duplicate by event id (delivery is at least once)."""

    async def append(self, events: Sequence[DomainEvent]) -> None: ...

    async def read(self, *, after: int, limit: int) -> list[LoggedEvent]: ...

    async def head(self) -> int:
        """The position of the newest event (0 when the log is empty)."""
        ...

    async def wait(self, *, after: int, timeout: float) -> None:
        """Return soon after an event beyond ``after`` may have been appended, or once
        ``timeout`` seconds have passed; a cheap way to tail the log without busy polling."""
        ...

    async def checkpoint(self, consumer: str) -> int: ...

    async def save_checkpoint(self, consumer: str, position: int) -> None: ...


class Bus(Protocol):
    """Live fan-out of messages on named channels. Delivery is best effort, to whoever is
    subscribed at the moment of publishing; durable history lives in the event log."""

    async def publish(self, channel: str, message: str) -> None: ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[str]]: ...


class ReplayWindowExceededError(DomainError):
    """The messages after a replay cursor are no longer all held: the channel's history was
    trimmed past it, or lost (a restarted broker, another process's in-memory history). The gap
    cannot be replayed; the API answers "replay window exceeded" and the client starts again
    from the current state."""

    code = "REPLAY_WINDOW_EXCEEDED"


@dataclass(frozen=True, slots=True)
class Replayed:
    """A message and the cursor that replays what came after it."""

    cursor: str
    message: str


class BusHistory(Protocol):
    """A bounded history per bus channel, so a subscriber that was away can read what it missed.

    Cursors are opaque strings made by the bus: compare them for equality only, never build or
    order them. A cursor is exclusive: ``read_since(channel, c)`` starts with the message after
    the one ``c`` came with. A cursor for which that cannot be done without a gap raises
    ReplayWindowExceededError; a string that is no cursor of this bus raises ValidationError.
    """

    async def append(self, channel: str, message: str, *, key: str | None = None) -> str:
        """Publish ``message`` live (as ``Bus.publish``) and record it; returns its cursor. A
        ``key`` (e.g. an event id) already appended to the channel within the bus's dedupe
        window is neither recorded nor published again: the first cursor is returned, so a
        retried or repeated publish reaches each subscriber once."""
        ...

    async def read_since(self, channel: str, cursor: str, *, limit: int) -> list[Replayed]:
        """Up to ``limit`` messages recorded after ``cursor``, oldest first; empty when there is
        nothing newer. Read again from the last cursor returned to continue."""
        ...

    async def latest(self, channel: str) -> str:
        """The cursor of the newest message on ``channel`` (of its empty history when there is
        none): where a subscriber that has seen nothing yet starts."""
        ...

    def subscribe_with_cursors(
        self, channel: str
    ) -> AbstractAsyncContextManager[AsyncIterator[Replayed]]:
        """Live messages as ``Bus.subscribe`` delivers them, each with its cursor. To resume
        without a gap: subscribe first, then ``read_since`` until caught up, then take the live
        messages, skipping those whose cursor the replay already returned."""
        ...


class ReplayBus(Bus, BusHistory, Protocol):
    """A live bus that also keeps a replayable history of every channel."""


class RelayLease(Protocol):
    """Which of several processes sharing one bus relays the event log onto it, and how far it
    got. At most one holder at a time; a holder that stops renewing loses the lease after its
    time to live and another process takes over from the last position it recorded."""

    async def acquire(self, holder: str, *, ttl_seconds: float) -> bool:
        """Take the lease when nobody holds it, or renew it when ``holder`` does; True when
        ``holder`` holds it now."""
        ...

    async def position(self) -> int | None:
        """The last position a holder recorded, None when none ever did."""
        ...

    async def advance(self, holder: str, position: int, *, ttl_seconds: float) -> bool:
        """Record ``position`` and renew the lease, atomically and only while ``holder`` still
        holds it; False (nothing recorded) when the lease has passed to another process."""
        ...

    async def release(self, holder: str) -> None:
        """Give the lease up now if ``holder`` holds it, so another process need not wait."""
        ...


class HealthCheck(Protocol):
    async def ping(self) -> None:
        """Return when the backing service answers; raise StoreUnavailableError otherwise."""
        ...


class Outbox(Protocol):
    """Events a store wrote in the same transaction as their state change, waiting to be
    published to the event log. A relay reads the pending ones oldest first, appends them to the
    log and then marks them; a crash in between publishes them again (consumers de-duplicate by
    event id), so nothing accepted is ever lost."""

    async def pending(self, *, limit: int) -> list[DomainEvent]: ...

    async def mark_published(self, event_ids: Sequence[str]) -> None: ...


class Cache(Protocol):
    """A TTL cache of opaque strings. A miss is ``None``; an unreachable cache behaves as a miss
    on read and is skipped on write, never failing the caller."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, *, ttl_seconds: float) -> None: ...

    async def delete(self, key: str) -> None: ...


class EventSink(Protocol):
    """A durable event log outside the store (a stream), fed from the store's outbox. ``append``
    returns once every event is stored; it raises EventTooLargeError (nothing appended) for
    events the log cannot hold and EventPublishError when some kept failing, naming which were
    appended. Appending an event twice stores it twice: readers de-duplicate by event id."""

    async def append(self, events: Sequence[DomainEvent]) -> None: ...


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Events read from a stream by one consumer, de-duplicated, in the order the stream holds
    them for each customer. ``source`` names where they came from (a shard) for logs; ``token``
    is the adapter's own and is handed back to ``EventStream.ack``. A batch may be empty (only
    duplicates, or the end of a shard) and still needs acknowledging."""

    events: tuple[DomainEvent, ...]
    source: str
    token: object


class EventStream(Protocol):
    """A durable event stream read by one named consumer. Batches of one source come in order;
    acknowledging a batch checkpoints it and everything before it from that source, so after a
    restart reading resumes after the last acknowledged batch. Unacknowledged batches are
    delivered again (at least once); events already acknowledged are not."""

    async def next_batch(self, *, timeout: float) -> EventBatch | None:
        """The next batch, or None when nothing arrived within ``timeout`` seconds."""
        ...

    async def ack(self, batch: EventBatch) -> None: ...


class PredictionStore(Protocol):
    """Fitted models by version and what they predicted per customer."""

    async def save_model(self, model: PredictionModel) -> None: ...

    async def current_model(self) -> PredictionModel | None:
        """The most recently fitted model, or None before the first recompute."""
        ...

    async def save(self, predictions: Sequence[CustomerPredictions]) -> None:
        """Replace everything held on each of these customers (patterns no longer predicted and
        a profile no longer allowed are removed), atomically per call."""
        ...

    async def get_many(self, customer_ids: Sequence[str]) -> dict[str, CustomerPredictions]:
        """Customers with nothing stored are absent from the result."""
        ...

    async def delete_profile(self, customer_id: str) -> None: ...


class RecommendationStore(Protocol):
    """Recommendation models by version, each with one profile per sku (its partners, the skus
    alike, its context lifts). Serving reads the profiles of a few skus, never the whole model."""

    async def save_model(self, model: RecommendationModel, items: Sequence[ItemProfile]) -> None:
        """Store the model's item profiles, then the model; it becomes current only once every
        profile is stored. Versions older than the last few are removed."""
        ...

    async def current_model(self) -> RecommendationModel | None:
        """The most recently fitted model, or None before the first fit."""
        ...

    async def items(self, version: str, skus: Sequence[str]) -> dict[str, ItemProfile]:
        """The profiles of these skus under ``version``; skus without one are absent."""
        ...


class Analyst(Protocol):
    """Reads one customer's analysis input (pseudonymous ids only) and answers the structured
    analysis. Raises AnalystError, with the reason and whatever the failed call consumed, when
    it cannot answer in time or answers something invalid."""

    @property
    def model(self) -> str: ...

    @property
    def prompt_version(self) -> str: ...

    async def analyse(self, given: AnalysisInput) -> AnalystAnswer: ...


class AiUsageStore(Protocol):
    """Every analyst call (and cache hit) with its tokens, cost and latency."""

    async def record(self, usage: AiUsage) -> None: ...

    async def totals(self, *, since: datetime | None, until: datetime | None) -> list[AiUsageGroup]:
        """Totals per (UTC day, model) of the calls with ``since <= occurred_at < until``."""
        ...


class SegmentStore(Protocol):
    """Segmentation models by version, each customer's segment with the behaviour it came from,
    the migrations between segments and the latest KPI summary."""

    async def save_model(self, model: SegmentModel) -> None: ...

    async def current_model(self) -> SegmentModel | None:
        """The most recently fitted model, or None before the first refit."""
        ...

    async def get_many(self, customer_ids: Sequence[str]) -> dict[str, CustomerSegment]:
        """Customers without a stored segment are absent from the result."""
        ...

    async def scan(self, *, after: str | None, limit: int) -> Page[CustomerSegment]:
        """Every stored segment, a page at a time, in an order of the store's choosing; a
        customer re-assigned during a scan may be seen twice or not at all."""
        ...

    async def apply(self, changes: Sequence[SegmentChange]) -> list[SegmentChange]:
        """Store each change whose customer's stored segment is still ``change.expected``
        (None: nothing stored), with its migration and event, each change atomically; returns
        those stored. The others lost a race with another writer and are left out."""
        ...

    async def migrations(
        self,
        *,
        first: int,
        after: str | None,
        from_segment: SegmentCode | None,
        to_segment: SegmentCode | None,
        since: datetime | None,
    ) -> Page[SegmentMigration]:
        """Migrations oldest first (by time, then id), optionally from or to one segment and
        at or after ``since``."""
        ...

    async def migration_counts(
        self, *, since: datetime | None, until: datetime | None
    ) -> dict[tuple[SegmentCode, SegmentCode], int]:
        """How many migrations went from each segment to each other with
        ``since <= at < until``; pairs without any are absent."""
        ...

    async def save_summary(self, summary: SegmentSummary) -> None: ...

    async def summary(self) -> SegmentSummary | None: ...


class SegmentWriter(Protocol):
    """Writes a named segment's description and strategy from its figures."""

    @property
    def name(self) -> str: ...

    async def write(self, segment: SegmentKpis, model: SegmentModel | None) -> SegmentText: ...


class AnomalyStore(Protocol):
    """Anomalies, one per ``dedup_key`` (enforced by the store), each with its AnomalyDetected
    event written in the same transaction (the outbox), in a total order of acceptance: the
    ``position``, the cursor of replays. Also the detectors' own state by name, written in the
    same transaction as the anomalies it produced."""

    async def record(
        self, anomalies: Sequence[Anomaly], *, state: tuple[str, str] | None = None
    ) -> list[Anomaly]:
        """Store each anomaly whose ``dedup_key`` is new, with its AnomalyDetected event, and
        ``state`` (name, body) when given, atomically; returns every anomaly as stored, in the
        given order (for a known key, the one stored first)."""
        ...

    async def get_many(self, anomaly_ids: Sequence[str]) -> dict[str, Anomaly]: ...

    async def recent(
        self,
        *,
        first: int,
        after: str | None,
        min_severity: Severity | None,
        since: datetime | None,
    ) -> Page[Anomaly]:
        """Newest first, at least ``min_severity`` and detected at or after ``since``."""
        ...

    async def after(
        self,
        position: int,
        *,
        limit: int,
        min_severity: Severity | None = None,
        customer_id: str | None = None,
    ) -> list[Anomaly]:
        """Oldest first from just after ``position`` (0: the beginning): what a subscriber
        that last saw ``position`` missed."""
        ...

    async def load_state(self, name: str) -> str | None: ...


class InsightStore(Protocol):
    """Insights, at most one per anomaly (enforced by the store), each with its
    InsightGenerated event in the same transaction, ordered by ``position``."""

    async def record(self, insights: Sequence[Insight]) -> list[Insight]:
        """Store each insight whose id and anomaly are new, with its event; returns every
        insight as stored (for a known anomaly, the one stored first)."""
        ...

    async def for_anomalies(self, anomaly_ids: Sequence[str]) -> dict[str, Insight]:
        """The stored insight of each anomaly that has one, by anomaly id."""
        ...

    async def for_customer(
        self, customer_id: str, *, first: int, after: str | None
    ) -> Page[Insight]:
        """A customer's insights, newest first."""
        ...

    async def after(
        self, position: int, *, limit: int, customer_id: str | None = None
    ) -> list[Insight]:
        """Oldest first from just after ``position`` (0: the beginning)."""
        ...


class JobStore(Protocol):
    """Jobs, each one row or item written whole. A job is only ever replaced by its next
    revision: ``save`` is conditional on the stored revision, so two writers never interleave."""

    async def add(self, job: Job, claim: IdempotencyClaim | None) -> None:
        """Insert a new job with its idempotency claim atomically. Raises DuplicateRequestError
        when the claim's (scope, key) is taken; nothing is written then."""
        ...

    async def save(self, job: Job) -> bool:
        """Replace the stored job by ``job`` if the stored one is revision ``job.revision - 1``;
        False (nothing written) when it is not, or when there is no such job."""
        ...

    async def get(self, job_id: str) -> Job | None: ...

    async def page(self, *, first: int, after: str | None, status: JobStatus | None) -> Page[Job]:
        """Jobs newest first, optionally of one status."""
        ...

    async def unfinished(self) -> list[Job]:
        """Every job QUEUED or RUNNING, oldest first."""
        ...
