"""The prediction engine end to end: ``omnix serve`` fits the models on its first start, the
API answers consumption cycles and forecasts, a purchase over HTTP updates its customer within
moments, and ``omnix recompute`` refits from the command line."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .harness import REPO_ROOT, RunningApp, app_environment, eventually, omnix_command, seed

pytestmark = pytest.mark.e2e


CUSTOMER = """
query Predictions($id: ID!) {
  customer(id: $id) {
    consumption(first: 100) {
      sku purchases meanIntervalDays lastPurchasedAt nextExpectedAt windowLow windowHigh
      status confidence probabilityWithin(days: 7) daysOverdue modelVersion
      product { name }
    }
    forecast { pAlive churnRisk expectedPurchases(days: 30) expectedSpend(days: 30) clv modelVersion }
  }
}
"""


def first_customer(app: RunningApp) -> str:
    nodes = app.execute("{ customers(first: 1) { nodes { id } } }")["customers"]["nodes"]
    return str(nodes[0]["id"])


def test_serve_fits_on_start_and_answers_cycles_and_forecasts(seeded_app: RunningApp) -> None:
    cid = first_customer(seeded_app)
    customer = eventually(
        lambda: (c := seeded_app.execute(CUSTOMER, {"id": cid})["customer"])["forecast"] and c,
        "the first fit did not store a forecast",
        seeded_app,
    )
    assert customer["consumption"]
    assert 0.0 <= customer["forecast"]["pAlive"] <= 1.0
    now = datetime.now(UTC) - timedelta(minutes=1)
    for pattern in customer["consumption"]:
        assert datetime.fromisoformat(pattern["nextExpectedAt"]) >= now
        assert pattern["windowLow"] <= pattern["nextExpectedAt"] <= pattern["windowHigh"]
        assert pattern["product"]["name"]


def test_recorded_purchases_update_their_customer(seeded_app: RunningApp, seeded_sku: str) -> None:
    first_customer(seeded_app)
    eventually(
        lambda: seeded_app.execute(CUSTOMER, {"id": first_customer(seeded_app)})["customer"][
            "forecast"
        ],
        "the first fit did not store a forecast",
        seeded_app,
    )
    cid = seeded_app.new_customer()
    now = datetime.now(UTC).replace(microsecond=0)
    for days in (30, 20, 10):
        result = seeded_app.record_purchase(
            cid, [{"sku": seeded_sku, "quantity": 1}], purchased_at=now - timedelta(days=days)
        )
        assert result["__typename"] == "RecordPurchaseSuccess", result

    def pattern(purchases: int) -> dict[str, Any] | None:
        customer = seeded_app.execute(CUSTOMER, {"id": cid})["customer"]
        return next(
            (
                p
                for p in customer["consumption"]
                if p["sku"] == seeded_sku and p["purchases"] == purchases
            ),
            None,
        )

    three = eventually(lambda: pattern(3), "three purchases did not reach the cycle", seeded_app)
    # Two intervals are a usable but low-confidence estimate, shrunk toward the product's
    # population.
    assert three["meanIntervalDays"] > 0
    assert three["confidence"] < 0.6
    forecast = seeded_app.execute(CUSTOMER, {"id": cid})["customer"]["forecast"]
    assert forecast is not None
    assert forecast["modelVersion"] == three["modelVersion"]  # applied, not refitted

    bought_at = now - timedelta(minutes=1)
    seeded_app.record_purchase(cid, [{"sku": seeded_sku, "quantity": 2}], purchased_at=bought_at)
    four = eventually(lambda: pattern(4), "the fourth purchase did not reach the cycle", seeded_app)
    assert datetime.fromisoformat(four["lastPurchasedAt"]) == bought_at
    assert datetime.fromisoformat(four["nextExpectedAt"]) > bought_at


def _omnix(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        omnix_command(*args),
        cwd=REPO_ROOT,
        env=app_environment(data_dir),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_omnix_recompute_refits_the_store(tmp_path: Path) -> None:
    empty = _omnix(tmp_path / "empty", "recompute")
    assert empty.returncode == 1
    assert "nothing recomputed" in empty.stderr
    assert "Traceback" not in empty.stderr

    seed(tmp_path / "data", 12)
    done = _omnix(tmp_path / "data", "recompute")
    assert done.returncode == 0, done.stderr
    assert "Recomputed 12 of 12 customers" in done.stdout
    assert "model cycles1-bgnbd1-gg1-profile1@" in done.stdout
