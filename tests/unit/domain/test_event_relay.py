"""The live relay over the SQLite event log and the in-process bus: each event goes out once,
and with a shared bus only the lease holder publishes, a standby taking over where it stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.memory.bus import MemoryBus
from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.event_log import SqliteEventLog
from domain.events import DomainEvent, channel_for
from domain.services.relay import EventRelay

CHANNEL = channel_for("Tested")


def _events(first: int, count: int) -> list[DomainEvent]:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    return [
        DomainEvent(type="Tested", customer_id="cus_1", occurred_at=at, payload={"n": n})
        for n in range(first, first + count)
    ]


class MemoryLease:
    """The RelayLease contract in a dict; ``expire`` plays a holder that stopped renewing."""

    def __init__(self) -> None:
        self.holder: str | None = None
        self.recorded: int | None = None

    async def acquire(self, holder: str, *, ttl_seconds: float) -> bool:
        if self.holder in (None, holder):
            self.holder = holder
        return self.holder == holder

    async def position(self) -> int | None:
        return self.recorded

    async def advance(self, holder: str, position: int, *, ttl_seconds: float) -> bool:
        if self.holder != holder:
            return False
        self.recorded = position
        return True

    async def release(self, holder: str) -> None:
        if self.holder == holder:
            self.holder = None

    def expire(self) -> None:
        self.holder = None


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SqliteEventLog]:
    async with SqliteDatabase(tmp_path / "omnix.db", readers=2, timeout=5.0) as db:
        yield SqliteEventLog(db)


async def _published(bus: MemoryBus, start: str) -> list[int]:
    history = await bus.read_since(CHANNEL, start, limit=10_000)
    return [DomainEvent.from_json(item.message).payload["n"] for item in history]


async def _two_relays(
    log: SqliteEventLog,
) -> tuple[MemoryBus, MemoryLease, str, EventRelay, EventRelay]:
    """Relays "a" and "b" over one log and one bus (standing in for a shared one), one lease."""
    bus, lease = MemoryBus(), MemoryLease()
    relays = (
        EventRelay(log, bus, lease=lease, holder="a"),
        EventRelay(log, bus, lease=lease, holder="b"),
    )
    for relay in relays:
        await relay.start()
    return bus, lease, await bus.latest(CHANNEL), *relays


async def test_without_a_lease_the_relay_publishes_from_the_head_each_event_once(
    log: SqliteEventLog,
) -> None:
    await log.append(_events(0, 2))  # before the process started: not relayed
    bus = MemoryBus()
    start = await bus.latest(CHANNEL)
    relay = EventRelay(log, bus)
    await relay.start()
    await log.append(_events(2, 3))
    assert await relay.relay_once() == 3
    assert await relay.relay_once() == 0
    assert await _published(bus, start) == [2, 3, 4]


async def test_only_the_lease_holder_publishes_to_a_shared_bus(log: SqliteEventLog) -> None:
    bus, lease, start, first, second = await _two_relays(log)
    await log.append(_events(0, 4))

    assert await first.relay_once() == 4
    assert await second.relay_once() == 0
    assert (first.leading, second.leading) == (True, False)
    assert second.position == 4  # a standby follows the head
    assert lease.recorded == 4
    assert await _published(bus, start) == [0, 1, 2, 3]


async def test_a_standby_takes_over_from_the_recorded_position_without_loss_or_repeat(
    log: SqliteEventLog,
) -> None:
    bus, lease, start, first, second = await _two_relays(log)
    await log.append(_events(0, 2))
    await first.relay_once()
    await second.relay_once()

    # The holder publishes two more, then dies before recording them; two more arrive.
    await log.append(_events(2, 2))
    for logged in await log.read(after=2, limit=10):
        await bus.append(CHANNEL, logged.event.to_json(), key=logged.event.id)
    lease.expire()
    await log.append(_events(4, 2))

    assert await second.relay_once() == 4  # from the recorded position 2
    assert second.takeovers == 1
    assert await _published(bus, start) == [0, 1, 2, 3, 4, 5]


async def test_a_holder_that_lost_the_lease_stops_publishing(log: SqliteEventLog) -> None:
    bus, lease = MemoryBus(), MemoryLease()
    start = await bus.latest(CHANNEL)
    first = EventRelay(log, bus, lease=lease, holder="a")
    await first.start()
    await log.append(_events(0, 1))
    await first.relay_once()
    lease.holder = "someone else"
    await log.append(_events(1, 1))
    await first.relay_once()  # published (deduplicated downstream), then learns it lost
    assert not first.leading
    await log.append(_events(2, 1))
    assert await first.relay_once() == 0
    assert await _published(bus, start) == [0, 1]


async def test_stopping_hands_the_lease_over_at_once(log: SqliteEventLog) -> None:
    _, lease, _, first, second = await _two_relays(log)
    await first.relay_once()
    await first.stop()
    await log.append(_events(0, 1))
    assert await second.relay_once() == 1
    assert lease.holder == "b"
