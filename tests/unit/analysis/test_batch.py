import asyncio

import pytest

from domain.analysis import AnalystError
from domain.services.batch_analysis import BatchProgress, run_batch
from tests.unit.analysis.world import World


async def test_batch_survives_a_failing_customer_and_skips_cached_on_rerun(world: World) -> None:
    seen: list[BatchProgress] = []

    async def progress(p: BatchProgress) -> None:
        seen.append(p)

    ids = ["cus_1", "cus_404", "cus_2", "cus_3", "cus_1"]
    first = await run_batch(world.service.analyse, ids, concurrency=2, on_progress=progress)
    assert (first.total, first.analysed, first.skipped, first.failed) == (4, 3, 0, 1)
    assert first.finished
    assert first.failures[0].customer_id == "cus_404"
    assert first.failures[0].code == "NOT_FOUND"
    assert [p.done for p in seen] == [1, 2, 3, 4]

    world.analyst.failures.append(AnalystError("THROTTLED", "slow down"))
    again = await run_batch(world.service.analyse, ids, concurrency=2)
    assert (again.analysed, again.skipped, again.failed, again.fallbacks) == (0, 3, 1, 0)
    assert len(world.analyst.calls) == 3


async def test_batch_concurrency_is_bounded(world: World) -> None:
    running = peak = 0

    async def analyse(customer_id: str):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return await world.service.analyse("cus_1")

    done = await run_batch(analyse, [f"c{i}" for i in range(12)], concurrency=3)
    assert peak == 3
    assert done.done == 12


async def test_batch_counts_fallbacks_and_rejects_bad_concurrency(world: World) -> None:
    world.analyst.failures.append(AnalystError("TIMEOUT", "slow"))
    done = await run_batch(world.service.analyse, ["cus_1"], concurrency=4)
    assert (done.analysed, done.fallbacks) == (1, 1)
    with pytest.raises(ValueError, match="concurrency"):
        await run_batch(world.service.analyse, ["cus_1"], concurrency=0)
    empty = await run_batch(world.service.analyse, [], concurrency=2)
    assert empty.finished
    assert empty.total == 0
