"""Segments end to end: ``omnix serve`` segments the seeded customers on its first start, the API
lists segments with their KPIs and customers by segment, and a customer whose behaviour changes
over HTTP migrates: the migration is stored and a graphql-ws subscriber receives it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .harness import NodeRunner, RunningApp, eventually

pytestmark = pytest.mark.e2e


SEGMENTS = """
{ segments { code name description strategy { offer avoid } size
             kpis { size revenueShare averageClv averageFrequency shareActive measuredAt } } }
"""
SEGMENT_OF = (
    "query S($id: ID!) { customer(id: $id) { segment { segment recencyScore modelVersion } } }"
)
SEGMENT_CHANGED = """
subscription Moves($segment: SegmentCode) {
  segmentChanged(segment: $segment) { id customerId from to at reason modelVersion }
}
"""
MIGRATIONS = """
query M($from: SegmentCode, $since: DateTime) {
  segmentMigrations(first: 100, from: $from, since: $since) {
    nodes { id customerId from to reason } pageInfo { hasNextPage endCursor }
  }
  migrationMatrix(since: $since) { from to count }
}
"""


def segments_of(app: RunningApp) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = app.execute(SEGMENTS)["segments"]
    return found


def test_serve_segments_the_base_and_lists_customers_by_segment(seeded_app: RunningApp) -> None:
    segments = eventually(
        lambda: (s := segments_of(seeded_app)) and sum(x["size"] for x in s) > 0 and s,
        "the first refit did not measure any segment",
        seeded_app,
    )
    assert len(segments) == 11
    assert all(s["description"] and s["strategy"]["offer"] for s in segments)
    biggest = max(segments, key=lambda s: s["size"])
    page = seeded_app.execute(
        "query C($s: SegmentCode) { customers(first: 100, segment: $s) { nodes { id } } }",
        {"s": biggest["code"]},
    )["customers"]["nodes"]
    assert page
    member = seeded_app.execute(SEGMENT_OF, {"id": page[0]["id"]})["customer"]["segment"]
    assert member["segment"] == biggest["code"]
    assert 1 <= member["recencyScore"] <= 5


def test_bad_inputs_get_typed_errors(seeded_app: RunningApp) -> None:
    unknown = seeded_app.post("{ customers(first: 5, segment: GOLD) { nodes { id } } }").json()
    assert unknown["errors"]
    assert "GOLD" in unknown["errors"][0]["message"]
    too_many = seeded_app.post("{ segmentMigrations(first: 101) { nodes { id } } }").json()
    assert too_many["errors"][0]["extensions"]["code"] == "PAGE_SIZE_OUT_OF_RANGE"
    empty = seeded_app.post(
        '{ migrationMatrix(since: "2026-01-02T00:00:00Z", until: "2026-01-01T00:00:00Z") '
        "{ count } }"
    ).json()
    assert empty["errors"][0]["extensions"]["code"] == "EMPTY_INTERVAL"


def test_a_customer_whose_behaviour_changes_migrates_and_a_subscriber_receives_it(
    seeded_app: RunningApp, seeded_sku: str, node: NodeRunner
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=5)
    eventually(
        lambda: sum(s["size"] for s in segments_of(seeded_app)) > 0,
        "the first refit did not finish",
        seeded_app,
    )
    customer_id = seeded_app.new_customer()
    small = [{"sku": seeded_sku, "quantity": 1, "unitPrice": "0.50"}]
    assert seeded_app.record_purchase(customer_id, small)["__typename"] == "RecordPurchaseSuccess"
    first = eventually(
        lambda: seeded_app.execute(SEGMENT_OF, {"id": customer_id})["customer"]["segment"],
        "the new customer's first purchase was not segmented",
        seeded_app,
    )

    subscriber = node.spawn(
        "subscribe.mjs", seeded_app.ws_url, SEGMENT_CHANGED,
        "--variables", json.dumps({"segment": first["segment"]}),
        "--count", "1000", "--timeout", "90000",
    )  # fmt: skip
    assert subscriber.read(timeout=20) == {"ready": True}
    time.sleep(1.0)  # "ready" is the server accepting the operation; let it join the fan-out

    big = [{"sku": seeded_sku, "quantity": 40, "unitPrice": "60.00"}]
    now = datetime.now(UTC)
    for day in range(12):
        when = now - timedelta(days=day, minutes=5)
        result = seeded_app.record_purchase(customer_id, big, purchased_at=when)
        assert result["__typename"] == "RecordPurchaseSuccess", result

    moved = eventually(
        lambda: (
            (s := seeded_app.execute(SEGMENT_OF, {"id": customer_id})["customer"]["segment"])[
                "segment"
            ]
            != first["segment"]
            and s
        ),
        "the customer did not change segment",
        seeded_app,
    )
    stored = seeded_app.execute(
        MIGRATIONS, {"from": first["segment"], "since": started.isoformat()}
    )
    mine = [m for m in stored["segmentMigrations"]["nodes"] if m["customerId"] == customer_id]
    assert len(mine) == 1
    assert (mine[0]["from"], mine[0]["to"], mine[0]["reason"]) == (
        first["segment"], moved["segment"], "PURCHASE"
    )  # fmt: skip
    cell = [c for c in stored["migrationMatrix"]
            if (c["from"], c["to"]) == (first["segment"], moved["segment"])]  # fmt: skip
    assert cell
    assert cell[0]["count"] >= 1

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        message = subscriber.try_read(timeout=1.0)
        if message is None:
            continue
        assert "data" in message, message
        received = message["data"]["segmentChanged"]
        if received["customerId"] == customer_id:
            assert received["id"] == mine[0]["id"]
            assert (received["from"], received["to"]) == (first["segment"], moved["segment"])
            break
    else:
        pytest.fail(
            f"the subscriber did not receive the migration\n--- subscriber stderr ---\n"
            f"{subscriber.stderr}\n--- server log ---\n{seeded_app.log()}",
            pytrace=False,
        )
    subscriber.stop()
