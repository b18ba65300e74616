"""``omnix worker``: the stream processor as a long-running process.

It reads the external event log (Kinesis) as one named consumer and hands each batch, in order,
to its handlers: the bus fan-out (what live subscriptions receive), then the prediction update
of the batch's customers bracketed by the anomaly detectors, then their segment update. The
batch is acknowledged only after all three, so a crash replays it, and each handler tolerates
the repeat (the bus drops event ids it has published, updates recompute from the stored
history, anomalies are stored once per cause and window). The worker also runs the periodic
sweeps (OVERDUE staples and P(alive) decay; segment recency), which is why a deployment runs
one worker per consumer name. SIGTERM or SIGINT stops it cleanly: the batch under way is
handled and acknowledged (its checkpoint saved), fetched batches that were not handled are left
to the next start, and the clients close. Progress is logged every ``report_every`` seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from domain.events import CONSENT_CHANGED, PURCHASE_RECORDED
from domain.services.anomalies import AnomalyHandler
from domain.services.processing import BusFanOut, CustomerUpdate, EventHandler, StreamProcessor
from schema.settings import Settings, SettingsError

if TYPE_CHECKING:
    from schema.app import Container

log = logging.getLogger("omnix.worker")

DEFAULT_CONSUMER = "bus-fanout"
STOP_TIMEOUT = 30.0


async def run_worker(
    settings: Settings,
    *,
    consumer: str = DEFAULT_CONSUMER,
    report_every: float = 30.0,
    stop: asyncio.Event | None = None,
) -> int:
    """Process until SIGTERM/SIGINT (or ``stop`` is set); returns the exit code."""
    from schema.app import open_container

    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with open_container(settings) as container:
            if container.event_stream is None:
                raise SettingsError(
                    f"omnix worker reads an external event log (OMNIX_EVENTS=kinesis://...); "
                    f"{settings.events_url!r} is processed inside omnix serve"
                )
            stream = container.event_stream(consumer)
            handlers = stream_handlers(container)
            processor = StreamProcessor(stream, handlers)
            sweeps = sweep_tasks(container)
            log.info(
                "worker %s: reading %s; handlers: %s; sweeps: %s", consumer, settings.events_url,
                ", ".join(_name(h) for h in handlers), ", ".join(sweeps) or "none",
            )  # fmt: skip
            task = asyncio.create_task(processor.run(), name="stream-processor")
            reporter = asyncio.create_task(_report(processor, stream, report_every))
            waiter = asyncio.create_task(stop.wait())
            sweepers = [asyncio.create_task(c, name=n) for n, c in sweeps.items()]
            try:
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                log.info("worker %s: stopping after the batch under way", consumer)
                processor.stop()
                try:
                    await asyncio.wait_for(asyncio.shield(task), timeout=STOP_TIMEOUT)
                except TimeoutError:
                    log.warning("worker %s: no clean stop within %.0f s", consumer, STOP_TIMEOUT)
            finally:
                for pending in (task, reporter, waiter, *sweepers):
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending
            stats = processor.stats
            log.info(
                "worker %s stopped: %d events in %d batches, %d handler failures",
                consumer,
                stats.events,
                stats.batches,
                stats.failures,
            )
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return 0


def stream_handlers(container: Container) -> list[EventHandler]:
    """What the worker does with each batch, in this order: publish it on the bus, update the
    predictions of its customers with the anomaly detectors around the update, update their
    segments (which read the new predictions)."""
    handlers: list[EventHandler] = [BusFanOut(container.bus)]
    predictions, anomalies = container.predictions, container.anomalies
    if predictions is not None and anomalies is not None:
        handlers.append(AnomalyHandler(anomalies, predictions.update))
    elif predictions is not None:
        updates = (PURCHASE_RECORDED, CONSENT_CHANGED)
        handlers.append(CustomerUpdate("predictions", updates, predictions.update))
    else:
        log.warning("the store keeps no predictions: the worker only fans events out")
    if container.segments is not None:
        handlers.append(CustomerUpdate("segments", (PURCHASE_RECORDED,), container.segments.update))
    return handlers


def sweep_tasks(container: Container) -> dict[str, Coroutine[Any, Any, None]]:
    """The periodic sweeps, by name: what only the passing of time reveals (OVERDUE staples,
    P(alive) decaying, closed sales-rate hours; customers ageing out of their segment)."""
    settings = container.settings
    sweeps: dict[str, Coroutine[Any, Any, None]] = {}
    if container.anomalies is not None and settings.anomaly_sweep_seconds > 0:
        every = settings.anomaly_sweep_seconds
        sweeps[f"anomaly sweep every {every:g} s"] = container.anomalies.run_sweeps(every)
    if container.segment_sweeper is not None:
        every = settings.segment_sweep_seconds
        sweeps[f"segment sweep every {every:g} s"] = container.segment_sweeper.run()
    return sweeps


def _name(handler: EventHandler) -> str:
    name = getattr(handler, "name", None)
    return name if isinstance(name, str) else type(handler).__name__


async def _report(processor: StreamProcessor, stream: object, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        stats = processor.stats
        consumer_stats = getattr(stream, "stats", None)
        log.info(
            "worker: %d events in %d batches, %d failures%s",
            stats.events,
            stats.batches,
            stats.failures,
            f"; stream {consumer_stats}" if consumer_stats is not None else "",
        )
