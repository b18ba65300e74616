"""What MemoryBus promises beyond the Bus contract: bounded queues and a clean shutdown."""

from __future__ import annotations

import asyncio

import pytest

from adapters.memory.bus import ListenerOverflowError, MemoryBus
from domain.errors import StoreUnavailableError, ValidationError
from domain.ports import ReplayWindowExceededError


async def test_a_listener_that_falls_behind_is_cut_off_without_slowing_the_others() -> None:
    bus = MemoryBus(queue_size=3)
    async with bus.subscribe("c") as slow, bus.subscribe("c") as fast:
        received = []
        for n in range(5):
            await bus.publish("c", f"m{n}")
            received.append(await anext(fast))

        assert received == ["m0", "m1", "m2", "m3", "m4"]
        with pytest.raises(ListenerOverflowError, match="fell 3 messages behind"):
            await anext(slow)
        with pytest.raises(StoreUnavailableError):
            await anext(slow)
    await bus.close()


async def test_publishing_never_waits_for_listeners() -> None:
    bus = MemoryBus(queue_size=10)
    async with bus.subscribe("c"):
        async with asyncio.timeout(1):
            for n in range(10_000):
                await bus.publish("c", str(n))
    await bus.close()


async def test_close_ends_every_iterator_after_what_it_holds() -> None:
    bus = MemoryBus()
    async with bus.subscribe("a") as on_a, bus.subscribe("b") as on_b:

        async def next_on_b() -> str:
            return await anext(on_b)

        waiting = asyncio.create_task(next_on_b())
        await asyncio.sleep(0)
        await bus.publish("a", "last words")

        await bus.close()

        assert [m async for m in on_a] == ["last words"]
        with pytest.raises(StopAsyncIteration):
            await waiting
    assert bus.listener_counts() == {}


async def test_subscribing_to_a_closed_bus_yields_nothing() -> None:
    bus = MemoryBus()
    await bus.close()
    async with bus.subscribe("c") as messages:
        await bus.publish("c", "nobody hears this")
        assert [m async for m in messages] == []
    assert bus.listener_counts() == {}


async def test_listener_counts_report_channels_with_listeners() -> None:
    bus = MemoryBus()
    async with bus.subscribe("a"), bus.subscribe("a"), bus.subscribe("b"):
        assert bus.listener_counts() == {"a": 2, "b": 1}
    assert bus.listener_counts() == {}
    await bus.close()


def test_queue_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="queue_size"):
        MemoryBus(queue_size=0)


async def test_a_cursor_from_another_bus_is_outside_the_replay_window() -> None:
    earlier, current = MemoryBus(), MemoryBus()
    cursor = await earlier.append("c", "from an earlier run")
    await current.append("c", "now")
    with pytest.raises(ReplayWindowExceededError):
        await current.read_since("c", cursor, limit=10)


async def test_a_cursor_beyond_the_newest_message_is_no_cursor() -> None:
    bus = MemoryBus()
    cursor = await bus.append("c", "m")
    forged = cursor.rsplit("-", 1)[0] + "-99"
    with pytest.raises(ValidationError):
        await bus.read_since("c", forged, limit=10)


async def test_the_history_is_bounded_and_forgets_keys_with_their_messages() -> None:
    bus = MemoryBus(history_size=2)
    start = await bus.latest("c")
    first = await bus.append("c", "a", key="k1")
    await bus.append("c", "b", key="k2")
    await bus.append("c", "c", key="k3")
    again = await bus.append("c", "a", key="k1")  # k1 left the history: a new message
    assert again != first
    with pytest.raises(ReplayWindowExceededError):
        await bus.read_since("c", start, limit=10)


def test_history_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="history_size"):
        MemoryBus(history_size=0)
