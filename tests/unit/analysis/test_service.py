import asyncio
import logging
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from domain.analysis import AnalystError, ModelUsage
from domain.errors import NotFoundError, ValidationError
from domain.events import purchase_recorded
from domain.services.analyst import FALLBACK_TTL_SECONDS
from domain.services.local_analyst import LOCAL_MODEL
from tests.unit.analysis.fakes import NOW, purchases
from tests.unit.analysis.world import World


async def test_first_read_asks_the_model_then_the_cache_answers(world: World) -> None:
    first = await world.service.analyse("cus_1")
    assert first.model == "test-model"
    assert not first.cached
    assert first.fallback_reason is None
    assert first.usage == ModelUsage(1000, 200, Decimal("0.0005"))
    assert set(first.body.consumption.due) == {"MILK", "BREAD"}
    second = await world.service.analyse("cus_1")
    assert second.cached
    assert second.body == first.body
    assert second.input_hash == first.input_hash
    assert len(world.analyst.calls) == 1
    assert [(r.cached, r.success, r.input_tokens) for r in world.usage.records] == [
        (False, True, 1000),
        (True, True, 0),
    ]
    world.ticks[0] = 3599
    assert (await world.service.analyse("cus_1")).cached
    world.ticks[0] = 3601
    assert not (await world.service.analyse("cus_1")).cached


async def test_refresh_and_a_new_purchase_ask_again(world: World) -> None:
    await world.service.analyse("cus_1")
    await world.service.analyse("cus_1", refresh=True)
    assert len(world.analyst.calls) == 2
    newer = replace(purchases("cus_1", n=1)[0], id="pur_new", purchased_at=NOW - timedelta(hours=1))
    await world.purchases.add_many([newer], [purchase_recorded(newer)])
    fresh = await world.service.analyse("cus_1")
    assert not fresh.cached
    assert len(world.analyst.calls) == 3
    assert world.analyst.calls[-1].purchases[0].days_ago == 0.0


async def test_the_model_never_sees_a_name_or_an_email(world: World) -> None:
    await world.service.analyse("cus_2")
    text = world.analyst.calls[0].to_json()
    assert "Ada" not in text
    assert "example.com" not in text
    assert world.analyst.calls[0].profile is not None


@pytest.mark.parametrize("reason", ["THROTTLED", "TIMEOUT", "INVALID_OUTPUT", "TRUNCATED"])
async def test_a_failing_model_falls_back_to_the_local_analyst(
    world: World, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    spent = ModelUsage(900, 50, Decimal("0.000288"))
    world.analyst.failures.append(AnalystError(reason, "boom", usage=spent))
    with caplog.at_level(logging.WARNING, logger="omnix.analyst"):
        result = await world.service.analyse("cus_1")
    assert result.model == LOCAL_MODEL
    assert result.fallback_reason == reason
    assert set(result.body.consumption.due) == {"MILK", "BREAD"}
    assert world.service.fallbacks[reason] == 1
    assert reason in caplog.text
    failed, answered = world.usage.records
    assert (failed.success, failed.model, failed.error, failed.cost_usd) == (
        False, "test-model", reason, Decimal("0.000288"),
    )  # fmt: skip
    assert (answered.success, answered.fallback, answered.model) == (True, True, LOCAL_MODEL)
    again = await world.service.analyse("cus_1")
    assert again.cached
    assert again.fallback_reason == reason
    world.ticks[0] = FALLBACK_TTL_SECONDS + 1
    retried = await world.service.analyse("cus_1")
    assert retried.model == "test-model"
    assert retried.fallback_reason is None


async def test_a_usage_store_outage_costs_the_record_not_the_analysis(world: World) -> None:
    world.usage.down = True
    result = await world.service.analyse("cus_1")
    assert result.model == "test-model"
    assert world.service.usage_write_failures == 1


async def test_concurrent_reads_share_one_model_call(world: World) -> None:
    world.analyst.delay = 0.05
    results = await asyncio.gather(*(world.service.analyse("cus_1") for _ in range(5)))
    assert len(world.analyst.calls) == 1
    assert len({r.input_hash for r in results}) == 1


async def test_unknown_or_malformed_customer_is_not_found(world: World) -> None:
    for bad in ("cus_404", "not an id!"):
        with pytest.raises(NotFoundError):
            await world.service.analyse(bad)
    assert world.analyst.calls == []
    assert world.usage.records == []


async def test_customer_without_predictions_still_gets_an_analysis(world: World) -> None:
    result = await world.service.analyse("cus_3")
    assert result.body.churn.reasons
    assert world.analyst.calls[0].forecast is None


async def test_an_unreadable_cache_entry_is_a_miss(world: World) -> None:
    first = await world.service.analyse("cus_1")
    key = world.service.cache_key(await world.service.input_for("cus_1"))
    await world.cache.set(key, "{not json", ttl_seconds=60)
    again = await world.service.analyse("cus_1")
    assert not again.cached
    assert again.input_hash == first.input_hash


async def test_usage_summary_per_model_and_day(world: World) -> None:
    await world.service.analyse("cus_1")
    world.clock.set(NOW + timedelta(days=1))
    world.analyst.failures.append(AnalystError("TIMEOUT", "slow"))
    await world.service.analyse("cus_2")
    summary = await world.service.usage_summary()
    assert summary.total.calls == 3
    assert summary.total.failures == 1
    assert summary.total.fallbacks == 1
    assert summary.total.cost_usd == Decimal("0.0005")
    assert [m for m, _ in summary.by_model] == [LOCAL_MODEL, "test-model"]
    assert [d.isoformat() for d, _ in summary.by_day] == ["2026-11-22", "2026-11-23"]
    day_two = await world.service.usage_summary(since=NOW + timedelta(hours=13))
    assert day_two.total.calls == 2
    with pytest.raises(ValidationError):
        await world.service.usage_summary(since=NOW, until=NOW)
    with pytest.raises(ValidationError):
        await world.service.usage_summary(since=NOW.replace(tzinfo=None))
