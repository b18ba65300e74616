import asyncio
import gc

from schema.collector import CollectorSchedule


async def test_the_schedule_collects_on_a_clock_and_restores_the_collector() -> None:
    assert gc.isenabled()
    schedule = CollectorSchedule(interval=0.01, full_every=3)
    schedule.start()
    try:
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        del a, b
        await asyncio.sleep(0.1)
        assert schedule.collections >= 3
    finally:
        await schedule.stop()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


async def test_a_request_leaves_no_cyclic_garbage(container: object) -> None:
    """Loaders must not form reference cycles: otherwise every customer and basket a request
    loaded lives on until the cyclic collector runs."""
    from domain.access import DEV_ADMIN
    from schema.context import Context, Services
    from schema.schema import build_schema
    from subscriptions.hub import SubscriptionHub

    c = container
    services = Services(c.customers, c.purchases, c.catalogue, SubscriptionHub(c.bus))  # type: ignore[attr-defined]
    schema = build_schema()
    query = "{ customers(first: 3) { nodes { id purchases { nodes { id lines { product { name } } } } } } }"
    prepared = schema.fast_path.prepare(query, None)
    await schema.fast_path.execute(prepared, None, Context(services, DEV_ADMIN, "warm-up"))
    gc.collect()
    gc.disable()
    try:
        gc.set_debug(gc.DEBUG_SAVEALL)
        for _ in range(5):
            await schema.fast_path.execute(prepared, None, Context(services, DEV_ADMIN, "r"))
        gc.collect()
        leaked = [type(o).__qualname__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert leaked == []
