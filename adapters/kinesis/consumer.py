"""The Kinesis consumer: an ``EventStream`` over every shard of a stream.

One reader task per shard fetches records with GetRecords in sequence order and hands them on as
batches through one bounded queue, so a shard's batches stay in order (and with them each
customer's events: a customer's records share a shard). A shard is read only once its parents'
ends have been acknowledged, so after a reshard no child overtakes its parent. The shard list is
refreshed periodically and as soon as a shard's end is acknowledged.

Acknowledging a batch writes the shard's checkpoint to DynamoDB: the last sequence number and the
ids of the most recent events. On restart each shard is read after its checkpoint, and those
ids (a parent's, for a child) seed the de-duplication window that drops events published twice
(the outbox relay is at least once). Each batch carries the window as of its own last record, so
a checkpoint never claims ids of events that were fetched but not yet acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from adapters.kinesis.checkpoints import Checkpoint, CheckpointTable, merge_recent
from adapters.kinesis.errors import error_code
from domain.events import DomainEvent
from domain.ports import EventBatch, EventStream

log = logging.getLogger(__name__)

MAX_BACKOFF = 10.0


class KinesisReadClient(Protocol):
    async def list_shards(self, **kwargs: Any) -> dict[str, Any]: ...
    async def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]: ...
    async def get_records(self, **kwargs: Any) -> dict[str, Any]: ...


class RecentIds:
    """The last ``size`` event ids seen, oldest first, with constant-time membership."""

    def __init__(self, size: int, initial: Iterable[str] = ()) -> None:
        self._size = size
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        for event_id in initial:
            self.add(event_id)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        if self._size < 1 or event_id in self._ids:
            return
        self._order.append(event_id)
        self._ids.add(event_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())

    def snapshot(self) -> tuple[str, ...]:
        return tuple(self._order)


@dataclass(frozen=True, slots=True)
class _Position:
    shard: str
    sequence: str | None
    recent_ids: tuple[str, ...]
    end: bool


@dataclass
class ConsumerStats:
    shards_reading: int = 0
    shards_finished: int = 0
    records: int = 0
    duplicates: int = 0
    undecodable: int = 0
    millis_behind: int = 0
    errors: int = 0
    last_error: str | None = None


class KinesisEventStream(EventStream):
    def __init__(
        self,
        kinesis: KinesisReadClient,
        checkpoints: CheckpointTable,
        stream: str,
        consumer: str,
        *,
        batch_limit: int = 1000,
        poll_interval: float = 0.25,
        refresh_interval: float = 10.0,
        window: int = 1000,
        prefetch: int = 16,
    ) -> None:
        self._kinesis = kinesis
        self._checkpoints = checkpoints
        self._stream = stream
        self._consumer = consumer
        self._batch_limit = batch_limit
        self._poll_interval = poll_interval
        self._refresh_interval = refresh_interval
        self._window = window
        self._queue: asyncio.Queue[EventBatch] = asyncio.Queue(maxsize=prefetch)
        self._saved: dict[str, Checkpoint] = {}
        self._finished: set[str] = set()
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._behind: dict[str, int] = {}
        self._ending: dict[str, int] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.stats = ConsumerStats()

    async def next_batch(self, *, timeout: float) -> EventBatch | None:
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(
                self._supervise(), name=f"kinesis-shards-{self._stream}"
            )
        try:
            return await asyncio.wait_for(self._queue.get(), timeout=timeout)
        except TimeoutError:
            return None

    async def ack(self, batch: EventBatch) -> None:
        position = batch.token
        if not isinstance(position, _Position):
            raise ValueError(f"not a batch of this stream: {batch.source}")
        previous = self._saved.get(position.shard)
        checkpoint = Checkpoint(
            shard=position.shard,
            sequence=position.sequence or (previous.sequence if previous else None),
            finished=position.end,
            recent_ids=position.recent_ids,
        )
        await self._checkpoints.save(self._consumer, checkpoint)
        self._saved[position.shard] = checkpoint
        if position.end:
            self._finished.add(position.shard)
            self.stats.shards_finished = len(self._finished)
            self._wake.set()
            log.info("shard %s of %s fully processed", position.shard, self._stream)

    async def close(self) -> None:
        """Stop reading. Batches fetched but not acknowledged are read again next time."""
        tasks = [t for t in (self._supervisor, *self._readers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._supervisor = None
        self._readers.clear()

    # --- shards ---------------------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._checkpoints.ensure()
                saved = await self._checkpoints.load(self._consumer)
                break
            except Exception as e:
                self._failed("loading checkpoints", e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        self._saved.update(saved)
        self._finished.update(s for s, c in saved.items() if c.finished)
        self.stats.shards_finished = len(self._finished)
        backoff = 0.5
        while True:
            self._wake.clear()
            try:
                self._start_readers(await self._list_shards())
                backoff = 0.5
                delay = self._refresh_interval
            except Exception as e:
                self._failed("listing shards", e)
                delay = backoff
                backoff = min(backoff * 2, MAX_BACKOFF)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _list_shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamName": self._stream}
        while True:
            page = await self._kinesis.list_shards(**kwargs)
            shards.extend(page.get("Shards", []))
            token = page.get("NextToken")
            if not token:
                return shards
            kwargs = {"NextToken": token}

    def _start_readers(self, shards: list[dict[str, Any]]) -> None:
        listed = {shard["ShardId"] for shard in shards}
        for shard in shards:
            ending = shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber")
            if ending is not None:
                self._ending[shard["ShardId"]] = int(ending)
        for shard in shards:
            shard_id: str = shard["ShardId"]
            if shard_id in self._readers or shard_id in self._finished:
                continue
            parents = [
                p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p
            ]
            if any(p in listed and p not in self._finished for p in parents):
                continue  # a parent still has records to hand on first
            saved = self._saved.get(shard_id)
            if saved is None:
                seed = merge_recent(
                    [self._saved[p].recent_ids for p in parents if p in self._saved],
                    self._window,
                )
                saved = Checkpoint(shard=shard_id, recent_ids=seed)
            self._readers[shard_id] = asyncio.create_task(
                self._read_shard(saved), name=f"kinesis-{shard_id}"
            )
            log.info(
                "reading shard %s of %s for %s from %s",
                shard_id,
                self._stream,
                self._consumer,
                f"after {saved.sequence}" if saved.sequence else "its start",
            )
        self.stats.shards_reading = sum(1 for t in self._readers.values() if not t.done())

    # --- one shard ------------------------------------------------------------------------

    async def _iterator(self, shard_id: str, after: str | None) -> str:
        kwargs: dict[str, Any] = {"StreamName": self._stream, "ShardId": shard_id}
        if after is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            kwargs["StartingSequenceNumber"] = after
        response = await self._kinesis.get_shard_iterator(**kwargs)
        return str(response["ShardIterator"])

    async def _read_shard(self, start: Checkpoint) -> None:
        shard_id = start.shard
        window = RecentIds(self._window, start.recent_ids)
        last = start.sequence
        iterator: str | None = None
        backoff = 0.5
        while True:
            try:
                if iterator is None:
                    iterator = await self._iterator(shard_id, last)
                response = await self._kinesis.get_records(
                    ShardIterator=iterator, Limit=self._batch_limit
                )
            except ClientError as e:
                if error_code(e) != "ExpiredIteratorException":
                    self._failed(f"reading shard {shard_id}", e)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                iterator = None
                continue
            except Exception as e:  # a connection error, or a response this code did not expect
                self._failed(f"reading shard {shard_id}", e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                iterator = None
                continue
            backoff = 0.5
            records = response.get("Records", [])
            events: list[DomainEvent] = []
            for record in records:
                last = str(record["SequenceNumber"])
                self.stats.records += 1
                try:
                    event = DomainEvent.from_json(record["Data"])
                except (ValueError, KeyError, TypeError) as e:
                    self.stats.undecodable += 1
                    log.error(
                        "skipping record %s on shard %s: not an event (%s)", last, shard_id, e
                    )
                    continue
                if event.id in window:
                    self.stats.duplicates += 1
                    continue
                window.add(event.id)
                events.append(event)
            iterator = response.get("NextShardIterator")
            behind = int(response.get("MillisBehindLatest", 0) or 0)
            self._behind[shard_id] = behind
            self.stats.millis_behind = max(self._behind.values())
            # A closed shard ends with a null iterator; its last sequence number also ends it
            # (for servers that keep handing out iterators on a closed shard).
            ending = self._ending.get(shard_id)
            end = iterator is None or (
                ending is not None and last is not None and int(last) >= ending
            )
            if records or end:
                position = _Position(shard_id, last, window.snapshot(), end)
                await self._queue.put(EventBatch(tuple(events), shard_id, position))
            if end:
                self._behind.pop(shard_id, None)
                return
            if not records or behind == 0:
                await asyncio.sleep(self._poll_interval)

    def _failed(self, what: str, error: BaseException) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"{what}: {error_code(error)}"
        log.warning("Kinesis consumer %s: %s failed (%s)", self._consumer, what, error)
