"""Running an event-log consumer: start it, then handle batches until cancelled, waiting on the
log when it has caught up. A failure is logged and retried with backoff, never skipped, so a
consumer's checkpoint only ever moves past events it has handled."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from domain.ports import EventLog

log = logging.getLogger(__name__)


class LogConsumer(Protocol):
    @property
    def position(self) -> int: ...

    async def start(self) -> None: ...

    async def process_once(self) -> int:
        """Handle the next batch; returns how many events were read."""
        ...


async def run_consumer(
    consumer: LogConsumer,
    events: EventLog,
    *,
    name: str,
    batch_size: int,
    poll_interval: float,
) -> None:
    backoff = 0.1
    while True:
        try:
            await consumer.start()
            break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s updater could not start; retrying", name)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
    backoff = 0.1
    while True:
        try:
            if await consumer.process_once() < batch_size:
                await events.wait(after=consumer.position, timeout=poll_interval)
            backoff = 0.1
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s update failed at position %s; retrying", name, consumer.position)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
