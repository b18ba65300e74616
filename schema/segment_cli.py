"""``omnix segment``: refit the segmentation (RFM boundaries and K-means clusters) on every
customer with a progress bar, or re-score everyone at the current moment (the sweep)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from domain.segments import SEGMENT_NAMES
from schema.progress import ProgressBar
from schema.settings import Settings

if TYPE_CHECKING:  # the service imports the numeric stack: only when the command runs
    from domain.services.segments import RefitReport, SweepReport


def add_segment_parser(commands: Any) -> None:
    segment = commands.add_parser(
        "segment",
        help="refit or sweep the customer segments",
        description="--refit fits the RFM quantile boundaries (over the active base) and the "
        "K-means behaviour clusters (k by silhouette) on every customer, stores the new model "
        "version and re-assigns everyone, recording each change of segment as a migration. "
        "--sweep re-scores everyone against the stored model at the current moment (what "
        "omnix serve does every OMNIX_SEGMENT_SWEEP_SECONDS).",
    )
    mode = segment.add_mutually_exclusive_group(required=True)
    mode.add_argument("--refit", action="store_true", help="refit boundaries and clusters")
    mode.add_argument("--sweep", action="store_true", help="re-score everyone now")
    segment.set_defaults(run=run_segment)


def run_segment(args: argparse.Namespace, settings: Settings) -> int:
    bars: dict[str, ProgressBar] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars[stage] = ProgressBar(sys.stderr, total=total or None, label=stage,
                                      unit="customers")  # fmt: skip
        bars[stage].update(done, total or None)

    try:
        outcome = asyncio.run(_run(settings, refit=args.refit, progress=progress))
    finally:
        for bar in bars.values():
            bar.close()
    if outcome is None:
        print(f"omnix: the store at {settings.store_url or settings.sqlite_path} keeps no "
              "segments", file=sys.stderr)  # fmt: skip
        return 1
    refit, sweep, sizes = outcome
    report = refit or sweep
    if report is None or report.skipped_reason is not None:
        reason = report.skipped_reason if report is not None else "no report"
        print(f"omnix: nothing done: {reason}", file=sys.stderr)
        return 1
    if refit is not None:
        print(
            f"Segmented {refit.assigned:,} of {refit.customers:,} customers; "
            f"{refit.migrations:,} changed segment; model {refit.model_version} "
            f"(k = {refit.k}, silhouette {refit.silhouette:.3f})"
        )
        print(
            f"read {refit.read_seconds:.1f} s, computed {refit.compute_seconds:.1f} s, "
            f"saved {refit.save_seconds:.1f} s"
        )
    elif sweep is not None:
        print(
            f"Swept {sweep.customers:,} customers: {sweep.rescored:,} re-scored, "
            f"{sweep.migrations:,} changed segment in {sweep.seconds:.1f} s"
        )
    for name, size in sizes:
        print(f"  {name:<20} {size:>9,}")
    return 0


async def _run(
    settings: Settings, *, refit: bool, progress: Any
) -> tuple[RefitReport | None, SweepReport | None, list[tuple[str, int]]] | None:
    from schema.app import open_container

    async with open_container(settings) as container:
        service = container.segments
        if service is None:
            return None
        refitted = swept = None
        if refit and container.segment_updater is not None:
            refitted = await container.segment_updater.refit(progress=progress)
        elif refit:
            refitted = await service.refit(progress=progress)
        else:
            swept = await service.sweep()
        sizes = [(SEGMENT_NAMES[s.code], s.kpis.size) for s in await service.segments()]
        return refitted, swept, sizes
