"""The BusHistory contract (replay). Fixtures: ``replay_bus``, a ReplayBus whose channels are
unique to the test, and ``overflow``, how many messages on one channel are sure to push the
first one out of its history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from domain.errors import ValidationError
from domain.ports import ReplayBus, Replayed, ReplayWindowExceededError


async def _next(items: AsyncIterator[Replayed]) -> Replayed:
    async with asyncio.timeout(2):
        return await anext(items)


async def test_a_cursor_replays_what_came_after_it_in_order(replay_bus: ReplayBus) -> None:
    cursors = [await replay_bus.append("r", f"m{n}") for n in range(4)]
    assert len(set(cursors)) == 4

    replayed = await replay_bus.read_since("r", cursors[0], limit=10)

    assert replayed == [Replayed(cursors[n], f"m{n}") for n in (1, 2, 3)]
    assert await replay_bus.read_since("r", cursors[-1], limit=10) == []


async def test_reading_in_pages_continues_from_the_last_cursor(replay_bus: ReplayBus) -> None:
    start = await replay_bus.latest("p")
    for n in range(5):
        await replay_bus.append("p", f"m{n}")
    seen: list[str] = []
    cursor = start
    while page := await replay_bus.read_since("p", cursor, limit=2):
        assert len(page) <= 2
        seen += [item.message for item in page]
        cursor = page[-1].cursor
    assert seen == ["m0", "m1", "m2", "m3", "m4"]


async def test_latest_is_where_a_new_subscriber_starts(replay_bus: ReplayBus) -> None:
    empty = await replay_bus.latest("fresh")
    assert await replay_bus.read_since("fresh", empty, limit=10) == []
    cursor = await replay_bus.append("fresh", "first")
    assert await replay_bus.latest("fresh") == cursor
    assert await replay_bus.read_since("fresh", empty, limit=10) == [Replayed(cursor, "first")]


async def test_channels_have_separate_histories(replay_bus: ReplayBus) -> None:
    start_a, start_b = await replay_bus.latest("ha"), await replay_bus.latest("hb")
    await replay_bus.append("ha", "on a")
    await replay_bus.append("hb", "on b")
    assert [r.message for r in await replay_bus.read_since("ha", start_a, limit=10)] == ["on a"]
    assert [r.message for r in await replay_bus.read_since("hb", start_b, limit=10)] == ["on b"]


async def test_live_messages_carry_the_cursor_append_returned(replay_bus: ReplayBus) -> None:
    async with replay_bus.subscribe_with_cursors("live") as items:
        cursor = await replay_bus.append("live", "hello")
        assert await _next(items) == Replayed(cursor, "hello")
    async with replay_bus.subscribe("live") as messages:
        await replay_bus.publish("live", "plain")
        async with asyncio.timeout(2):
            assert await anext(messages) == "plain"


async def test_a_repeated_key_is_recorded_and_delivered_once(replay_bus: ReplayBus) -> None:
    start = await replay_bus.latest("k")
    async with replay_bus.subscribe_with_cursors("k") as items:
        first = await replay_bus.append("k", "event-1", key="evt_1")
        again = await replay_bus.append("k", "event-1", key="evt_1")
        other = await replay_bus.append("k", "event-2", key="evt_2")
        assert again == first
        assert await _next(items) == Replayed(first, "event-1")
        assert await _next(items) == Replayed(other, "event-2")
    assert [r.message for r in await replay_bus.read_since("k", start, limit=10)] == [
        "event-1",
        "event-2",
    ]


async def test_a_trimmed_cursor_is_an_explicit_error_never_a_silent_gap(
    replay_bus: ReplayBus, overflow: int
) -> None:
    first = await replay_bus.append("t", "m0")
    for n in range(1, overflow):
        await replay_bus.append("t", f"m{n}")
    with pytest.raises(ReplayWindowExceededError) as raised:
        await replay_bus.read_since("t", first, limit=10)
    assert raised.value.code == "REPLAY_WINDOW_EXCEEDED"
    recent = await replay_bus.append("t", "recent")
    await replay_bus.append("t", "newest")
    assert [r.message for r in await replay_bus.read_since("t", recent, limit=10)] == ["newest"]


@pytest.mark.parametrize("cursor", ["", "not-a-cursor", "0", "x:y:z", "💥"])
async def test_a_string_that_is_no_cursor_is_a_validation_error(
    replay_bus: ReplayBus, cursor: str
) -> None:
    await replay_bus.append("v", "m")
    with pytest.raises(ValidationError):
        await replay_bus.read_since("v", cursor, limit=10)


async def test_resuming_after_a_gap_loses_and_repeats_nothing(replay_bus: ReplayBus) -> None:
    """The recipe from BusHistory.subscribe_with_cursors: subscribe, replay, then go live."""
    seen = await replay_bus.append("g", "before")
    await replay_bus.append("g", "missed-1")
    await replay_bus.append("g", "missed-2")
    async with replay_bus.subscribe_with_cursors("g") as live:
        await replay_bus.append("g", "during-replay")
        replayed = await replay_bus.read_since("g", seen, limit=100)
        await replay_bus.append("g", "after-replay")
        replayed_cursors = {item.cursor for item in replayed}
        received = [item.message for item in replayed]
        while len(received) < 4:
            item = await _next(live)
            if item.cursor not in replayed_cursors:
                received.append(item.message)
    assert received == ["missed-1", "missed-2", "during-replay", "after-replay"]
