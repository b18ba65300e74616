"""``omnix worker``: the stream processor as a long-running process.

It reads the external event log (Kinesis) as one named consumer and fans each event out on the
bus. SIGTERM or SIGINT stops it cleanly: the batch under way is handled and acknowledged (its
checkpoint saved), fetched batches that were not handled are left to the next start, and the
clients close. Progress is logged every ``report_every`` seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from domain.services.processing import BusFanOut, StreamProcessor
from schema.settings import Settings, SettingsError

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
            processor = StreamProcessor(stream, [BusFanOut(container.bus)])
            log.info(
                "worker %s: reading %s, publishing to %s", consumer, settings.events_url,
                settings.bus_url,
            )  # fmt: skip
            task = asyncio.create_task(processor.run(), name="stream-processor")
            reporter = asyncio.create_task(_report(processor, stream, report_every))
            waiter = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                log.info("worker %s: stopping after the batch under way", consumer)
                processor.stop()
                try:
                    await asyncio.wait_for(asyncio.shield(task), timeout=STOP_TIMEOUT)
                except TimeoutError:
                    log.warning("worker %s: no clean stop within %.0f s", consumer, STOP_TIMEOUT)
            finally:
                for pending in (task, reporter, waiter):
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
