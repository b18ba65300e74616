"""The Bus contract. Fixtures: ``bus``, and ``listener_count``, an async callable returning how
many subscriptions on a channel the adapter still holds (to prove unsubscribing cleans up)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from domain.ports import Bus

ListenerCount = Callable[[str], Awaitable[int]]


async def _next(messages: AsyncIterator[str]) -> str:
    async with asyncio.timeout(2):
        return await anext(messages)


async def test_every_listener_receives_every_message_in_order(bus: Bus) -> None:
    async with bus.subscribe("orders") as first, bus.subscribe("orders") as second:
        for n in range(3):
            await bus.publish("orders", f"m{n}")

        assert [await _next(first) for _ in range(3)] == ["m0", "m1", "m2"]
        assert [await _next(second) for _ in range(3)] == ["m0", "m1", "m2"]


async def test_listeners_hear_only_their_channel(bus: Bus) -> None:
    async with bus.subscribe("a") as on_a, bus.subscribe("b") as on_b:
        await bus.publish("a", "for a")
        await bus.publish("b", "for b")

        assert await _next(on_a) == "for a"
        assert await _next(on_b) == "for b"


async def test_messages_published_before_subscribing_are_not_delivered(bus: Bus) -> None:
    await bus.publish("late", "missed")
    async with bus.subscribe("late") as messages:
        await bus.publish("late", "heard")
        assert await _next(messages) == "heard"


async def test_publishing_to_nobody_is_fine(bus: Bus) -> None:
    await bus.publish("empty", "into the void")


async def test_leaving_the_subscription_removes_the_listener(
    bus: Bus, listener_count: ListenerCount
) -> None:
    async with bus.subscribe("c") as kept:
        async with bus.subscribe("c"):
            assert await listener_count("c") == 2
        assert await listener_count("c") == 1
        await bus.publish("c", "still here")
        assert await _next(kept) == "still here"
    assert await listener_count("c") == 0


async def test_a_failing_consumer_still_unsubscribes(
    bus: Bus, listener_count: ListenerCount
) -> None:
    with pytest.raises(RuntimeError, match="consumer failed"):
        async with bus.subscribe("d"):
            raise RuntimeError("consumer failed")
    assert await listener_count("d") == 0


async def test_a_cancelled_consumer_still_unsubscribes(
    bus: Bus, listener_count: ListenerCount
) -> None:
    subscribed = asyncio.Event()

    async def consume() -> None:
        async with bus.subscribe("e") as messages:
            subscribed.set()
            async for _ in messages:
                pass

    task = asyncio.create_task(consume())
    await subscribed.wait()
    assert await listener_count("e") == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await listener_count("e") == 0
