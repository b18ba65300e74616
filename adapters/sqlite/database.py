"""The SQLite database behind the embedded stores: one file, used off the event loop.

Writes run on one dedicated thread with its own connection, so they are serialized in-process and
each is a ``BEGIN IMMEDIATE`` transaction (taking the write lock up front, so a transaction never
fails half-way because another process started writing). Reads run on a pool of threads, each with
its own long-lived read-only connection; in WAL mode they never wait for the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from adapters.sqlite.migrations import migrate
from adapters.sqlite.rows import Row, event_row
from adapters.sqlite.workers import ConnectionWorkers
from domain.errors import StoreUnavailableError
from domain.events import DomainEvent
from domain.ports import HealthCheck

T = TypeVar("T")

_INSERT_EVENT = (
    "INSERT INTO events (id, type, customer_id, occurred_at, payload) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING"
)


class SqliteDatabase(HealthCheck):
    """One SQLite file in WAL mode with a writer thread and ``readers`` reader threads.

    Every call is bounded by ``timeout`` seconds (also SQLite's busy timeout). A call that times
    out raises StoreUnavailableError, but a write already under way still finishes and may commit;
    idempotency keys and ``add_many``'s skipping of known ids make retrying it safe.
    """

    def __init__(self, path: Path, *, readers: int = 4, timeout: float = 10.0) -> None:
        if readers < 1:
            raise ValueError(f"readers must be at least 1, got {readers}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.path = Path(path)
        self._reader_count = readers
        self._timeout = timeout
        self._writer: ConnectionWorkers | None = None
        self._readers: ConnectionWorkers | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Touched only on the writer thread:
        self._events_inserted = False
        # Touched only on the event loop:
        self._committed_position = 0
        self._commit_signal: asyncio.Future[None] | None = None

    async def __aenter__(self) -> SqliteDatabase:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the connections and migrate the schema. Raises SchemaVersionError for a file
        written by a newer build, StoreUnavailableError when the file cannot be used."""
        if self._writer is not None:
            raise RuntimeError(f"{self.path} is already open")
        self._loop = asyncio.get_running_loop()
        writer = ConnectionWorkers("omnix-sqlite-writer", 1, self._open_writer, _close_writer)
        readers = ConnectionWorkers(
            "omnix-sqlite-reader", self._reader_count, self._open_reader, _close_reader
        )
        try:
            # No call timeout: migrating a large file may legitimately take a while.
            await asyncio.to_thread(writer.start)
            try:
                await asyncio.to_thread(readers.start)
            except BaseException:
                await asyncio.to_thread(writer.stop)
                raise
        except sqlite3.DatabaseError as e:
            raise StoreUnavailableError(f"cannot open {self.path}: {e}") from e
        self._writer, self._readers = writer, readers

    async def close(self) -> None:
        """Let the calls already queued finish, then close every connection. Safe to repeat."""
        writer, readers = self._writer, self._readers
        self._writer = self._readers = None
        if readers is not None:
            await asyncio.to_thread(readers.stop)
        if writer is not None:
            await asyncio.to_thread(writer.stop)

    async def ping(self) -> None:
        await self.read(_read_schema_version)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in a ``BEGIN IMMEDIATE`` transaction on the writer thread;
        commit if it returns, roll back if it raises."""
        return await self._call(self._writer, partial(self._transaction, fn))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on a reader thread's read-only connection (autocommit: each
        statement sees the latest committed state)."""
        return await self._call(self._readers, fn)

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await self.read(lambda conn: conn.execute(sql, params).fetchone())

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self.read(lambda conn: conn.execute(sql, params).fetchall())

    def insert_events(self, conn: sqlite3.Connection, events: Sequence[DomainEvent]) -> None:
        """Append events to the log inside a ``write`` callback (the outbox); waiters in
        ``wait_for_events`` wake once the transaction commits. Re-appending an event id is a
        no-op, so a redelivered event is not logged twice."""
        if events:
            conn.executemany(_INSERT_EVENT, [event_row(event) for event in events])
            self._events_inserted = True

    async def wait_for_events(self, *, after: int, timeout: float) -> None:
        """Return once this process has committed an event beyond position ``after``, or after
        ``timeout`` seconds; events appended by other processes are noticed only by polling."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._committed_position <= after:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            if self._commit_signal is None:
                self._commit_signal = loop.create_future()
            await asyncio.wait({self._commit_signal}, timeout=remaining)

    async def _call(
        self, workers: ConnectionWorkers | None, fn: Callable[[sqlite3.Connection], T]
    ) -> T:
        if workers is None:
            raise StoreUnavailableError(f"the SQLite database {self.path} is not open")
        try:
            async with asyncio.timeout(self._timeout):
                return await workers.submit(fn)
        except TimeoutError as e:
            raise StoreUnavailableError(f"SQLite did not answer within {self._timeout}s") from e
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
            raise  # a bug in a query, not an outage: let it surface as one
        except sqlite3.DatabaseError as e:
            raise StoreUnavailableError(f"SQLite failed: {e}") from e

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, cached_statements=256
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA temp_store = MEMORY")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn, label=str(self.path))
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_reader(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute("PRAGMA query_only = ON")
        return conn

    def _transaction(self, fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            position = _newest_event(conn) if self._events_inserted else None
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise
        finally:
            self._events_inserted = False
        if position is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
                self._loop.call_soon_threadsafe(self._events_committed, position)
        return result

    def _events_committed(self, position: int) -> None:
        self._committed_position = max(self._committed_position, position)
        signal, self._commit_signal = self._commit_signal, None
        if signal is not None and not signal.done():
            signal.set_result(None)


def _newest_event(conn: sqlite3.Connection) -> int:
    position: int = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
    return position


def _read_schema_version(conn: sqlite3.Connection) -> None:
    # Reads a page of the file, which "SELECT 1" would not: a vanished disk fails the ping.
    conn.execute("SELECT max(version) FROM schema_version").fetchone()


def _close_reader(conn: sqlite3.Connection) -> None:
    conn.close()


def _close_writer(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):  # only a planner hint; closing matters more
        conn.execute("PRAGMA optimize")
    conn.close()
