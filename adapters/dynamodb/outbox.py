"""The outbox on DynamoDB: events the stores wrote in the same transaction as their change.

A pending event carries ``pending_shard``/``pending_key`` and so appears in the sparse
``pending`` index; marking it published removes those attributes (it leaves the index) and sets
``expires_at``, so DynamoDB's TTL deletes it after the retention period. An unpublished event
never expires. The index is eventually consistent, so ``pending`` re-reads what it finds there
consistently and drops what was published meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

from pynamodb.exceptions import UpdateError

from adapters.dynamodb.client import DynamoClient, error_code
from adapters.dynamodb.items import (
    OUTBOX_SHARDS,
    PUBLISHED_EVENT_RETENTION,
    event_from_item,
    iso,
)
from domain.events import DomainEvent
from domain.ports import Outbox


class DynamoOutbox(Outbox):
    def __init__(self, client: DynamoClient) -> None:
        self._client = client
        self._tables = client.tables

    async def pending(self, *, limit: int) -> list[DomainEvent]:
        """The oldest ``limit`` pending events (in the order the stores wrote them): the head of
        every shard of the ``pending`` index, merged, then read back consistently."""
        if limit < 1:
            return []
        index = self._tables.event.pending

        def head(shard: str) -> list[tuple[str, str]]:
            found = index.query(shard, limit=limit, page_size=limit)
            return [(item.pending_key, item.event_id) for item in found]

        heads = await asyncio.gather(
            *(
                self._client.run(partial(head, str(shard)), what="outbox read")
                for shard in range(OUTBOX_SHARDS)
            )
        )
        oldest = sorted(key for shard in heads for key in shard)[:limit]
        if not oldest:
            return []
        items = await self._client.batch_get(
            self._tables.event, [event_id for _, event_id in oldest], what="outbox read"
        )
        still_pending = {item.event_id: item for item in items if item.pending_shard is not None}
        return [
            event_from_item(still_pending[event_id])
            for _, event_id in oldest
            if event_id in still_pending
        ]

    async def mark_published(self, event_ids: Sequence[str]) -> None:
        """Take the events out of the pending index and start their retention clock. Unknown
        ids (never written, or long expired) are skipped."""
        if not event_ids:
            return
        model = self._tables.event
        now = datetime.now(UTC)
        expires = int((now + PUBLISHED_EVENT_RETENTION).timestamp())

        def mark(event_id: str) -> None:
            try:
                model(event_id).update(
                    actions=[
                        model.published_at.set(iso(now)),
                        model.expires_at.set(expires),
                        model.pending_shard.remove(),
                        model.pending_key.remove(),
                    ],
                    condition=model.event_id.exists(),
                )
            except UpdateError as e:
                if error_code(e) != "ConditionalCheckFailedException":
                    raise

        await asyncio.gather(
            *(
                self._client.run(partial(mark, event_id), what="outbox mark")
                for event_id in dict.fromkeys(event_ids)
            )
        )
