"""The prediction engine end to end: ``omnix serve`` fits the models on its first start, the
API answers consumption cycles and forecasts, a purchase over HTTP updates its customer within
moments, and ``omnix recompute`` refits from the command line."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .harness import REPO_ROOT, RunningApp, app_environment, omnix_command, seed

pytestmark = pytest.mark.e2e

WAIT_SECONDS = 60.0

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


def eventually(check: Callable[[], Any], what: str, app: RunningApp) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"{what} within {WAIT_SECONDS:.0f} s\n--- server log ---\n{app.log()}")


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


def test_a_recorded_purchase_updates_its_customer(seeded_app: RunningApp) -> None:
    cid = first_customer(seeded_app)
    before = eventually(
        lambda: (c := seeded_app.execute(CUSTOMER, {"id": cid})["customer"])["forecast"] and c,
        "the first fit did not store a forecast",
        seeded_app,
    )
    staple = max(before["consumption"], key=lambda p: p["purchases"])
    bought_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    result = seeded_app.record_purchase(
        cid, [{"sku": staple["sku"], "quantity": 2}], purchased_at=bought_at
    )
    assert result["__typename"] == "RecordPurchaseSuccess", result

    def updated() -> dict[str, Any] | None:
        patterns = seeded_app.execute(CUSTOMER, {"id": cid})["customer"]["consumption"]
        return next(
            (
                p
                for p in patterns
                if p["sku"] == staple["sku"]
                and datetime.fromisoformat(p["lastPurchasedAt"]) == bought_at
            ),
            None,
        )

    pattern = eventually(updated, "the purchase did not update the customer's cycle", seeded_app)
    assert pattern["purchases"] == staple["purchases"] + 1
    assert pattern["modelVersion"] == staple["modelVersion"]  # applied, not refitted


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
