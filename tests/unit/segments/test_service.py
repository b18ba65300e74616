"""SegmentService on the embedded store: refit, a customer whose behaviour changes migrates
(stored, with its SegmentChanged event), the sweep moves an idle customer, bad inputs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.clock import FixedClock
from domain.customers import Consent, Customer
from domain.errors import ValidationError
from domain.events import SEGMENT_CHANGED, customer_registered, purchase_recorded
from domain.purchases import Purchase, PurchaseLine
from domain.segments import MigrationReason, SegmentCode
from domain.services.segments import SegmentService
from schema.app import Container
from tests.unit.conftest import NOW

LINES = (PurchaseLine("MILK-1L", 2, 119, 0), PurchaseLine("BREAD-W", 1, 95, 0))
BIG = (*LINES, PurchaseLine("COFFEE-P", 2, 899, 0))


def _purchases(
    customer_id: str, days_ago: list[float], lines: tuple[PurchaseLine, ...]
) -> list[Purchase]:
    return [
        Purchase(f"p_{customer_id}_{i}", customer_id, NOW - timedelta(days=d), lines, "s1")
        for i, d in enumerate(days_ago)
    ]


async def _record(container: Container, purchases: list[Purchase]) -> None:
    await container.purchase_store.add_many(purchases, [purchase_recorded(p) for p in purchases])


async def _base(container: Container) -> None:
    customers = [
        Customer(f"c{i:02d}", NOW - timedelta(days=400), consent=Consent(analytics=True))
        for i in range(30)
    ] + [
        Customer("loyal", NOW - timedelta(days=400)),
        Customer("sleeper", NOW - timedelta(days=400)),
    ]
    await container.customer_store.add_many(customers, [customer_registered(c) for c in customers])
    purchases: list[Purchase] = []
    for i in range(30):
        last = float((i * 7) % 200)
        purchases += _purchases(f"c{i:02d}", [last + 9 * k for k in range(i % 8 + 1)], LINES)
    purchases += _purchases("loyal", [1 + 3 * k for k in range(25)], BIG)
    purchases += _purchases("sleeper", [300.0], LINES[:1])
    await _record(container, purchases)


def _service(container: Container) -> SegmentService:
    assert container.segments is not None
    return container.segments


async def test_refit_assigns_everyone_who_bought(container: Container) -> None:
    await _base(container)
    service = _service(container)
    report = await service.refit()
    assert report.assigned == 32
    assert report.k >= 2
    found = await service.assignments(["loyal", "sleeper", "cus_1"])
    assert set(found) == {"loyal", "sleeper"}  # cus_1 never bought
    assert found["loyal"].segment is SegmentCode.CHAMPIONS
    assert found["sleeper"].segment in {SegmentCode.LOST, SegmentCode.HIBERNATING}
    assert found["loyal"].model_version == report.model_version
    segments = await service.segments()
    assert [s.code for s in segments] == list(SegmentCode)
    assert sum(s.kpis.size for s in segments) == 32
    assert abs(sum(s.kpis.revenue_share for s in segments) - 1.0) < 1e-9
    champions = next(s for s in segments if s.code is SegmentCode.CHAMPIONS)
    assert champions.text.description.startswith("Champions:")
    assert champions.text.strategy.offer


async def test_a_customer_whose_behaviour_changes_migrates(container: Container) -> None:
    await _base(container)
    service = _service(container)
    await service.refit()
    before = (await service.assignments(["sleeper"]))["sleeper"].segment

    await _record(container, _purchases("sleeper", [0.5 + 2 * k for k in range(15)], BIG)[1:])
    assert await service.update(["sleeper"]) == 1

    after = (await service.assignments(["sleeper"]))["sleeper"]
    assert after.segment is not before
    page = await service.migrations(
        first=10, after=None, from_segment=None, to_segment=None, since=None
    )
    mine = [m for m in page.items if m.customer_id == "sleeper"]
    assert len(mine) == 1
    assert (mine[0].from_segment, mine[0].to_segment) == (before, after.segment)
    assert mine[0].reason is MigrationReason.PURCHASE
    assert container.events is not None
    logged = await container.events.read(after=0, limit=10_000)
    changed = [e.event for e in logged if e.event.type == SEGMENT_CHANGED]
    assert [e.id for e in changed] == [mine[0].id]

    # Scoring the same history again moves nobody.
    assert await service.update(["sleeper"]) == 0


async def test_the_sweep_moves_an_idle_customer(container: Container, clock: FixedClock) -> None:
    await _base(container)
    service = _service(container)
    await service.refit()
    assert (await service.assignments(["loyal"]))["loyal"].segment is SegmentCode.CHAMPIONS

    quiet = await service.sweep()
    assert quiet.migrations == 0

    clock.set(NOW + timedelta(days=150))
    report = await service.sweep()
    assert report.customers == 32
    assert report.migrations >= 1
    loyal = (await service.assignments(["loyal"]))["loyal"]
    assert loyal.segment in {SegmentCode.CANT_LOSE, SegmentCode.AT_RISK}
    assert loyal.recency_score <= 2
    moved = await service.migrations(
        first=100, after=None, from_segment=SegmentCode.CHAMPIONS, to_segment=None, since=None
    )
    assert "loyal" in [m.customer_id for m in moved.items]
    assert {m.reason for m in moved.items} == {MigrationReason.SWEEP}
    matrix = await service.migration_matrix(since=NOW, until=None)
    assert sum(matrix.values()) == report.migrations
    summary = await service.segments()
    assert sum(s.kpis.size for s in summary) == 32


async def test_bad_inputs_get_typed_errors(container: Container) -> None:
    service = _service(container)
    with pytest.raises(ValidationError) as raised:
        await service.migrations(
            first=0, after=None, from_segment=None, to_segment=None, since=None
        )
    assert raised.value.code == "PAGE_SIZE_OUT_OF_RANGE"
    with pytest.raises(ValidationError) as raised:
        await service.migrations(
            first=101, after=None, from_segment=None, to_segment=None, since=None
        )
    assert raised.value.code == "PAGE_SIZE_OUT_OF_RANGE"
    with pytest.raises(ValidationError) as raised:
        await service.migration_matrix(since=NOW, until=NOW - timedelta(days=1))
    assert raised.value.code == "EMPTY_INTERVAL"


async def test_refit_without_purchases_is_skipped(container: Container) -> None:
    report = await _service(container).refit()
    assert report.model_version is None
    assert report.skipped_reason == "no purchases to learn from"
    assert (await _service(container).sweep()).skipped_reason == "no segmentation model yet"
