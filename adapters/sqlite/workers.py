"""Threads that each own one SQLite connection and run jobs on it for the event loop.

A plain queue and ``call_soon_threadsafe`` rather than ThreadPoolExecutor + run_in_executor,
because this is on every request's path: without the concurrent.futures Future and its callback
chain a round trip measured ~35 instead of ~55 µs alone, and a third of the cost under concurrent
load. Each connection is opened, used and closed by the one thread that owns it, so sqlite3's
same-thread check stays on.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[sqlite3.Connection], Any]]


def _settle(future: asyncio.Future[Any], failed: bool, value: Any) -> None:
    if future.done():
        return  # the caller timed out or was cancelled; nobody wants the answer
    if failed:
        future.set_exception(value)
    else:
        future.set_result(value)


class ConnectionWorkers:
    """``count`` threads named ``name-i``; each opens its connection with ``connect`` when it
    starts and closes it with ``close`` when stopped. Jobs are taken in submission order."""

    def __init__(
        self,
        name: str,
        count: int,
        connect: Callable[[], sqlite3.Connection],
        close: Callable[[sqlite3.Connection], None],
    ) -> None:
        self._name = name
        self._count = count
        self._connect = connect
        self._close = close
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the threads and wait until each has its connection; if any cannot connect,
        stop the others and raise its error. Blocks: call it off the event loop."""
        ready: list[tuple[threading.Event, list[BaseException]]] = []
        for i in range(self._count):
            started = threading.Event()
            failure: list[BaseException] = []
            thread = threading.Thread(
                target=self._serve,
                args=(started, failure),
                name=f"{self._name}-{i}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
            ready.append((started, failure))
        errors = []
        for started, failure in ready:
            started.wait()
            errors.extend(failure)
        if errors:
            self.stop()
            raise errors[0]

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue ``fn(connection)``; the returned future (of the running loop) gets its outcome.
        A job whose future is already done when a thread takes it is skipped."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, fn))
        return future

    def stop(self) -> None:
        """Let the threads finish the jobs already queued, then close their connections and end.
        Blocks: call it off the event loop."""
        threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join()

    def _serve(self, started: threading.Event, failure: list[BaseException]) -> None:
        try:
            conn = self._connect()
        except BaseException as e:
            failure.append(e)
            started.set()
            return
        started.set()
        try:
            jobs = self._jobs
            while (job := jobs.get()) is not None:
                loop, future, fn = job
                # Read off the loop's thread, done() may be stale; at worst a job whose caller
                # has given up still runs, and its outcome is dropped by _settle.
                if future.done():
                    continue
                try:
                    outcome, failed = fn(conn), False
                except BaseException as e:
                    outcome, failed = e, True
                with contextlib.suppress(RuntimeError):  # the loop has closed
                    loop.call_soon_threadsafe(_settle, future, failed, outcome)
        finally:
            self._close(conn)
