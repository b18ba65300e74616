"""Stored predictions in the product: the incremental update of one customer after a purchase,
beside the full recompute it replaces (issue 3: "cost proportional to that customer's history,
not to the whole base").

The store is the embedded SQLite default with the demo data set (``--customers``, 500 by
default: ~42,000 purchases). The script runs ``recompute`` once (the peer), then records one
purchase for each of ``--updates`` customers and times ``update([customer])`` for each: store
reads, the models applied with the stored fit, and the write. It prints the median and p95 of
the update beside the recompute, the ratio, and how the update time grows with the customer's
history (purchases), which should be about linear and nowhere near the recompute.

    make bench BENCH=predictions
    .venv/bin/python tests/bench/bench_predictions.py --customers 2000 --updates 100
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from domain.clock import FixedClock
from domain.demo import seed
from domain.services.purchases import LineRequest
from schema.app import open_container
from schema.settings import Settings

UPDATE_BAR_RATIO = 0.05
"""One customer's update must cost under 5% of a recompute of the demo base (it is far less)."""


async def run(customers: int, updates: int) -> int:
    as_of = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    clock = FixedClock(as_of)
    with tempfile.TemporaryDirectory(prefix="omnix-bench-predictions-") as tmp:
        settings = Settings(data_dir=Path(tmp), env="test")
        async with open_container(settings, clock=clock) as c:
            assert c.predictions is not None
            seeded = await seed(
                c.customer_store, c.product_store, c.purchase_store, as_of=as_of,
                n_customers=customers,
            )  # fmt: skip
            print(
                f"store: {customers:,} demo customers, {seeded.purchases_added:,} purchases "
                "(embedded SQLite)"
            )
            started = time.perf_counter()
            report = await c.predictions.recompute()
            recompute = time.perf_counter() - started
            print(
                f"recompute (peer): {recompute:.2f} s — read {report.read_seconds:.2f} s, "
                f"models {report.compute_seconds:.2f} s, save {report.save_seconds:.2f} s; "
                f"{report.patterns:,} patterns, {report.profiles:,} profiles"
            )

            ids = [
                cust.id
                for cust in (await c.customer_store.list(first=100, after=None, search=None)).items
            ]
            sku = (await c.product_store.list(first=1, after=None, category=None)).items[0].sku
            clock.set(as_of + timedelta(minutes=30))
            timings: list[float] = []
            history: list[int] = []
            for cid in (ids * (updates // len(ids) + 1))[:updates]:
                await c.purchases.record(
                    customer_id=cid,
                    lines=[LineRequest(sku=sku, quantity=1)],
                    purchased_at=as_of + timedelta(minutes=5),
                )
                stored = await c.predictions.for_customer(cid)
                history.append(stored.forecast.frequency + 1 if stored and stored.forecast else 1)
                started = time.perf_counter()
                await c.predictions.update([cid])
                timings.append(time.perf_counter() - started)

    median = statistics.median(timings)
    p95 = float(np.percentile(timings, 95))
    ratio = median / recompute
    slope, intercept = np.polyfit(history, np.array(timings) * 1000, 1)
    print(
        f"incremental update of one customer: median {median * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms over {len(timings)} updates"
    )
    print(f"update / recompute: {ratio:.4f} (bar < {UPDATE_BAR_RATIO})")
    print(
        f"update time by history: {intercept:.1f} ms + {slope:.3f} ms per purchase day "
        f"(histories of {min(history)} to {max(history)} purchase days)"
    )
    if ratio >= UPDATE_BAR_RATIO:
        print("FAILED: the incremental update is not small beside the recompute")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--updates", type=int, default=60)
    args = parser.parse_args()
    return asyncio.run(run(args.customers, args.updates))


if __name__ == "__main__":
    raise SystemExit(main())
