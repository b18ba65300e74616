import asyncio

import pytest

from adapters.memory.bus import MemoryBus
from subscriptions.hub import SlowSubscriberError, SubscriptionHub


async def next_message(listener: object) -> object:
    return await asyncio.wait_for(listener.__anext__(), 1)  # type: ignore[attr-defined]


async def test_one_bus_subscription_per_channel_whatever_the_listeners() -> None:
    bus = MemoryBus()
    hub = SubscriptionHub(bus)
    async with hub.listen("a") as first, hub.listen("a") as second, hub.listen("b") as other:
        assert hub.stats() == {"a": 2, "b": 1}
        assert bus.listener_counts().get("a", 0) == 1
        await bus.publish("a", "hello")
        assert await next_message(first) == "hello"
        assert await next_message(second) == "hello"
        await bus.publish("b", "world")
        assert await next_message(other) == "world"
    await bus.close()


async def test_leaving_cleans_up_pumps_and_bus_subscriptions() -> None:
    bus = MemoryBus()
    hub = SubscriptionHub(bus)
    tasks_before = len(asyncio.all_tasks())
    for _ in range(3):
        async with hub.listen("a"), hub.listen("a"):
            assert hub.pumps == 1
    assert hub.stats() == {}
    assert hub.pumps == 0
    assert bus.listener_counts().get("a", 0) == 0
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == tasks_before
    await bus.close()


async def test_a_cancelled_subscriber_leaves_nothing_behind() -> None:
    bus = MemoryBus()
    hub = SubscriptionHub(bus)
    entered = asyncio.Event()

    async def subscriber() -> None:
        async with hub.listen("a") as listener:
            entered.set()
            async for _ in listener:
                pass

    task = asyncio.create_task(subscriber())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hub.stats() == {}
    assert bus.listener_counts().get("a", 0) == 0
    await bus.close()


async def test_messages_are_decoded_once_for_all_listeners() -> None:
    bus = MemoryBus()
    decoded: list[str] = []

    def decode(raw: str) -> dict[str, str]:
        decoded.append(raw)
        return {"raw": raw}

    hub = SubscriptionHub(bus, decode=decode)
    async with hub.listen("a") as one, hub.listen("a") as two:
        await bus.publish("a", "x")
        first, second = await next_message(one), await next_message(two)
        assert first is second
    assert decoded == ["x"]
    await bus.close()


async def test_a_slow_subscriber_is_cut_off_without_stalling_the_others() -> None:
    bus = MemoryBus()
    hub = SubscriptionHub(bus, queue_size=3)
    async with hub.listen("a") as slow, hub.listen("a") as fast:
        received = []
        for i in range(10):
            await bus.publish("a", str(i))
            received.append(await next_message(fast))
        assert received == [str(i) for i in range(10)]

        async def drain() -> None:
            while True:
                await next_message(slow)

        with pytest.raises(SlowSubscriberError):
            await drain()
    await bus.close()


async def test_closing_the_hub_ends_every_stream() -> None:
    bus = MemoryBus()
    hub = SubscriptionHub(bus)
    async with hub.listen("a") as listener:
        await hub.close()
        with pytest.raises(StopAsyncIteration):
            await next_message(listener)
    await bus.close()


async def test_keyed_listeners_get_only_their_keys_messages() -> None:
    bus = MemoryBus()
    hub = SubscriptionHub(bus, key_of=lambda m: m.split(":")[0])
    async with (
        hub.listen("a", key="c1") as c1,
        hub.listen("a", key="c1") as c1_again,
        hub.listen("a", key="c2") as c2,
        hub.listen("a") as everyone,
    ):
        assert hub.stats() == {"a": 4}
        assert bus.listener_counts().get("a", 0) == 1
        for message in ("c2:1", "c3:2", "c1:3"):
            await bus.publish("a", message)
        assert await next_message(c1) == "c1:3"
        assert await next_message(c1_again) == "c1:3"
        assert await next_message(c2) == "c2:1"
        assert [await next_message(everyone) for _ in range(3)] == ["c2:1", "c3:2", "c1:3"]
        assert hub.delivered == 6
    assert hub.stats() == {}
    assert hub.pumps == 0
    await bus.close()


async def test_a_keyed_listener_needs_a_hub_that_knows_keys() -> None:
    bus = MemoryBus()
    hub = SubscriptionHub(bus)
    with pytest.raises(ValueError, match="key_of"):
        async with hub.listen("a", key="c1"):
            pass
    assert hub.stats() == {}
    await bus.close()


async def test_closing_the_hub_ends_keyed_streams_too() -> None:
    bus = MemoryBus()
    hub = SubscriptionHub(bus, key_of=lambda m: m)
    async with hub.listen("a", key="k") as listener:
        await hub.close()
        with pytest.raises(StopAsyncIteration):
            await next_message(listener)
    await bus.close()
