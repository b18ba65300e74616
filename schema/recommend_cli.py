"""``omnix evaluate-recommendations``: the recommendations replayed on a history cut at a date,
against what was bought in the following days, beside a popularity baseline in the same run.

The history is the store's (the seeded demo data, or what was imported), or with
``--demo-customers N`` a demo year generated in memory that ends ``--days`` after ``--as-of``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from schema.cli import UsageError
from schema.settings import Settings

if TYPE_CHECKING:
    from domain.services.recommendations import Base, RecommendationEvaluation

RECALL_BAR = 1.5


async def _from_store(settings: Settings) -> Base:
    from domain.services.recommendations import read_base
    from schema.app import open_container

    async with open_container(settings) as c:
        return await read_base(c.customer_store, c.product_store, c.purchase_store)


def _from_demo(args: argparse.Namespace) -> Base:
    from domain.demo import generate
    from domain.services.recommendations import Base

    demo = generate(
        as_of=args.as_of + timedelta(days=args.days), n_customers=args.demo_customers, seed=42
    )
    return Base(list(demo.products), list(demo.customers), list(demo.purchases))


def _as_json(r: RecommendationEvaluation, source: str, seconds: float) -> dict[str, Any]:
    return {
        "source": source,
        "asOf": r.as_of.isoformat(),
        "days": r.days,
        "k": r.k,
        "customers": r.customers,
        "customersWithNewItems": r.customers_with_new_items,
        "model": {
            "precision": r.model.precision,
            "recall": r.model.recall,
            "newItemRecall": r.model.new_recall,
        },
        "popularity": {
            "precision": r.popularity.precision,
            "recall": r.popularity.recall,
            "newItemRecall": r.popularity.new_recall,
        },
        "recallRatio": r.recall_ratio,
        "bar": RECALL_BAR,
        "meetsBar": r.recall_ratio >= RECALL_BAR,
        "reasons": dict(r.reasons),
        "seconds": round(seconds, 2),
    }


def _as_text(r: RecommendationEvaluation, source: str, seconds: float) -> str:
    k = r.k
    rows = [
        ("", "recommendations", "popularity"),
        (f"precision@{k}", f"{r.model.precision:.3f}", f"{r.popularity.precision:.3f}"),
        (f"recall@{k}", f"{r.model.recall:.3f}", f"{r.popularity.recall:.3f}"),
        (
            f"recall@{k}, new-to-customer items",
            f"{r.model.new_recall:.3f}",
            f"{r.popularity.new_recall:.3f}",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    table = "\n".join(
        "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows
    )
    verdict = "meets" if r.recall_ratio >= RECALL_BAR else "MISSES"
    reasons = ", ".join(f"{name} {n:,}" for name, n in sorted(r.reasons.items()))
    return "\n".join(
        [
            f"Recommendations made at {r.as_of:%Y-%m-%d %H:%M} UTC against the next {r.days} "
            f"days' purchases ({source}); {r.customers:,} customers "
            f"({r.customers_with_new_items:,} bought something new to them)",
            table,
            f"recall@{k} is {r.recall_ratio:.2f} x the popularity baseline's: {verdict} the "
            f"{RECALL_BAR:g} x bar",
            f"top-{k} reasons: {reasons}",
            "A repurchase counts as a hit (a due staple is a real recommendation); the last row "
            "counts only items the customer had never bought before.",
            f"{seconds:.1f} s",
        ]
    )


def evaluate_recommendations(args: argparse.Namespace, settings: Settings) -> int:
    from domain.services.recommendations import evaluate

    if args.demo_customers is not None:
        source = f"a generated demo year of {args.demo_customers:,} customers"
        base = _from_demo(args)
    else:
        source = f"the store {settings.store_url or settings.sqlite_path}"
        base = asyncio.run(_from_store(settings))
    if not base.purchases:
        raise UsageError(f"{source} holds no purchases to evaluate on")
    started = time.perf_counter()
    result = evaluate(
        base.products, base.customers, base.purchases, args.as_of, days=args.days, k=args.k
    )
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps(_as_json(result, source, seconds), indent=2))
    else:
        print(_as_text(result, source, seconds))
    return 0 if result.recall_ratio >= RECALL_BAR or not args.check else 1
