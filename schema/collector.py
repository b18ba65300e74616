"""Garbage-collector scheduling for the server process.

CPython's collector starts a young-generation pass every 700 container allocations. A request
that returns a page of baskets allocates thousands, so under load the collector runs several
times per request and each run walks every object that the requests in flight still hold:
measured, that was 30-40% of the server's CPU (docs/DECISIONS_LOG.md). Reference counting frees
almost everything a request allocates; the collector is only needed for reference cycles.

So the server freezes what start-up allocated (the schema, the plans, the adapters: never
garbage) and runs the collector on a clock instead of an allocation count: the young
generations every ``interval`` seconds, a full pass every ``full_every`` intervals. Cyclic
garbage then lives at most about a second, whatever the request rate."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

log = logging.getLogger("omnix.gc")


class CollectorSchedule:
    def __init__(self, *, interval: float = 1.0, full_every: int = 60) -> None:
        self._interval = interval
        self._full_every = full_every
        self._task: asyncio.Task[None] | None = None
        self._was_enabled = True
        self.collections = 0

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()
        self._task = asyncio.create_task(self._run(), name="gc-schedule")

    async def _run(self) -> None:
        tick = 0
        while True:
            await asyncio.sleep(self._interval)
            tick += 1
            generation = 2 if tick % self._full_every == 0 else 1
            gc.collect(generation)
            self.collections += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()
