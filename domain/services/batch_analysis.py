"""Analyse many customers with bounded concurrency, reporting progress as it goes.

A fixed number of workers take customers from one queue, so at most ``concurrency`` analyses
run at once however many customers there are. A customer whose analysis fails is counted and
named in the progress, and the batch goes on. Analyses already cached for the customer's current
inputs are served from the cache and counted as skipped, so re-running a batch costs nothing for
the customers already done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace

from domain.analysis import CustomerAnalysis
from domain.errors import DomainError

log = logging.getLogger("omnix.analyst.batch")

MAX_REPORTED_FAILURES = 100


@dataclass(frozen=True, slots=True)
class BatchFailure:
    customer_id: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """Where a batch stands; ``failures`` names at most :data:`MAX_REPORTED_FAILURES`."""

    total: int
    analysed: int = 0
    skipped: int = 0
    fallbacks: int = 0
    failed: int = 0
    failures: tuple[BatchFailure, ...] = field(default=())

    @property
    def done(self) -> int:
        return self.analysed + self.skipped + self.failed

    @property
    def finished(self) -> bool:
        return self.done == self.total


Analyse = Callable[[str], Awaitable[CustomerAnalysis]]
ProgressCallback = Callable[[BatchProgress], Awaitable[None]]


async def run_batch(
    analyse: Analyse,
    customer_ids: Iterable[str],
    *,
    concurrency: int,
    on_progress: ProgressCallback | None = None,
) -> BatchProgress:
    """Analyse each customer once (duplicates dropped) with at most ``concurrency`` at a time;
    ``on_progress`` is awaited after every customer with the running totals. Returns the final
    progress. Cancelling the batch cancels the analyses under way."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    ids = list(dict.fromkeys(customer_ids))
    queue: asyncio.Queue[str] = asyncio.Queue()
    for customer_id in ids:
        queue.put_nowait(customer_id)
    state = BatchProgress(total=len(ids))
    lock = asyncio.Lock()

    async def report(result: CustomerAnalysis | None, failure: BatchFailure | None) -> None:
        nonlocal state
        async with lock:
            if failure is not None:
                failures = (*state.failures, failure)[:MAX_REPORTED_FAILURES]
                state = replace(state, failed=state.failed + 1, failures=failures)
            elif result is not None and result.cached:
                state = replace(state, skipped=state.skipped + 1)
            elif result is not None:
                fell_back = int(result.fallback_reason is not None)
                state = replace(
                    state, analysed=state.analysed + 1, fallbacks=state.fallbacks + fell_back
                )
            if on_progress is not None:
                await on_progress(state)

    async def worker() -> None:
        while True:
            try:
                customer_id = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                result = await analyse(customer_id)
            except Exception as e:
                code = e.code if isinstance(e, DomainError) else type(e).__name__
                log.warning("batch analysis of %s failed: %s", customer_id, e)
                await report(None, BatchFailure(customer_id, code, str(e)))
            else:
                await report(result, None)

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(ids)))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
    return state
