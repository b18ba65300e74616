"""The SQLite event log read as an ``EventStream`` by one named consumer.

The consumer's checkpoint is its ``event_checkpoints`` row; a batch's token is the position of
its last event. The table's unique event id already keeps duplicates out, and one process-wide
writer keeps positions in commit order, so batches come in log order."""

from __future__ import annotations

from adapters.sqlite.event_log import SqliteEventLog
from domain.ports import EventBatch, EventStream

SOURCE = "sqlite"


class SqliteEventStream(EventStream):
    def __init__(self, log: SqliteEventLog, consumer: str, *, batch_size: int = 500) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._log = log
        self._consumer = consumer
        self._batch_size = batch_size
        self._position: int | None = None
        self._acked = 0

    async def next_batch(self, *, timeout: float) -> EventBatch | None:
        if self._position is None:
            self._position = self._acked = await self._log.checkpoint(self._consumer)
        logged = await self._log.read(after=self._position, limit=self._batch_size)
        if not logged:
            await self._log.wait(after=self._position, timeout=timeout)
            logged = await self._log.read(after=self._position, limit=self._batch_size)
        if not logged:
            return None
        self._position = logged[-1].position
        return EventBatch(
            events=tuple(entry.event for entry in logged), source=SOURCE, token=self._position
        )

    async def ack(self, batch: EventBatch) -> None:
        if not isinstance(batch.token, int) or batch.source != SOURCE:
            raise ValueError(f"not a batch of this stream: {batch.source}")
        if batch.token > self._acked:
            await self._log.save_checkpoint(self._consumer, batch.token)
            self._acked = batch.token
