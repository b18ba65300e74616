"""SqliteDatabase: schema migrations, connection settings, threading, errors and commit wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.event_log import SqliteEventLog
from adapters.sqlite.migrations import MIGRATIONS, Migration, SchemaVersionError, migrate
from adapters.sqlite.stores import SqliteCustomerStore
from domain.errors import StoreUnavailableError
from domain.events import customer_registered
from tests.contracts.builders import customer


@contextlib.contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def versions(path: Path) -> list[tuple[int, str]]:
    with connect(path) as conn:
        return conn.execute("SELECT version, applied_at FROM schema_version ORDER BY 1").fetchall()


async def test_open_creates_the_schema_at_the_newest_version(database_path: Path) -> None:
    async with SqliteDatabase(database_path):
        pass
    assert [v for v, _ in versions(database_path)] == [m.version for m in MIGRATIONS]
    with connect(database_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "customers",
        "products",
        "purchases",
        "purchase_lines",
        "events",
        "event_checkpoints",
        "idempotency",
        "schema_version",
    } <= tables


async def test_reopening_migrates_nothing_and_keeps_the_data(database_path: Path) -> None:
    async with SqliteDatabase(database_path) as db:
        ada = customer("cus_1", email="ada@example.com")
        await SqliteCustomerStore(db).add(ada, customer_registered(ada), None)
    applied = versions(database_path)

    async with SqliteDatabase(database_path) as db:
        assert await SqliteCustomerStore(db).get("cus_1") == ada

    assert versions(database_path) == applied


async def test_a_database_from_a_newer_build_is_refused(database_path: Path) -> None:
    async with SqliteDatabase(database_path):
        pass
    newer = len(MIGRATIONS) + 1
    with connect(database_path) as conn:
        conn.execute(
            "INSERT INTO schema_version VALUES (?, 'from the future', '2099-01-01')", (newer,)
        )

    db = SqliteDatabase(database_path)
    with pytest.raises(SchemaVersionError, match=rf"version {newer}, newer") as raised:
        await db.open()
    await db.close()
    assert str(database_path) in str(raised.value)


def test_migrate_applies_only_the_missing_steps_in_order(tmp_path: Path) -> None:
    one = Migration(1, "t", ("CREATE TABLE t (a INTEGER)",))
    two = Migration(2, "t.b", ("ALTER TABLE t ADD COLUMN b TEXT",))
    with connect(tmp_path / "m.db") as conn:
        assert migrate(conn, [one]) == 1
        assert migrate(conn, [one, two]) == 2
        assert migrate(conn, [one, two]) == 2
        columns = [r[1] for r in conn.execute("PRAGMA table_info(t)")]
        applied = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
    assert columns == ["a", "b"]
    assert applied == [1, 2]


def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    one = Migration(1, "t", ("CREATE TABLE t (a INTEGER)",))
    broken = Migration(2, "broken", ("CREATE TABLE u (a INTEGER)", "NOT SQL AT ALL"))
    with connect(tmp_path / "m.db") as conn:
        migrate(conn, [one])
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, [one, broken])
        applied = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert applied == [1]
    assert "u" not in tables


def test_migrations_must_be_numbered_consecutively(tmp_path: Path) -> None:
    with connect(tmp_path / "m.db") as conn, pytest.raises(ValueError, match="out of order"):
        migrate(conn, [Migration(2, "skips one", ())])


async def test_connections_use_wal_and_enforce_foreign_keys(database: SqliteDatabase) -> None:
    def writer_settings(conn: sqlite3.Connection) -> tuple[object, ...]:
        return tuple(
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        )

    def reader_settings(conn: sqlite3.Connection) -> tuple[object, ...]:
        return tuple(
            conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("foreign_keys", "query_only")
        )

    assert await database.write(writer_settings) == ("wal", 1, 1, 5000)
    assert await database.read(reader_settings) == (1, 1)


async def test_calls_run_off_the_event_loop_on_their_own_threads(database: SqliteDatabase) -> None:
    def thread_name(_: sqlite3.Connection) -> str:
        assert threading.current_thread() is not threading.main_thread()
        return threading.current_thread().name

    writes = await asyncio.gather(*(database.write(thread_name) for _ in range(20)))
    reads = await asyncio.gather(*(database.read(thread_name) for _ in range(20)))

    assert set(writes) == {"omnix-sqlite-writer-0"}
    assert all(name.startswith("omnix-sqlite-reader-") for name in reads)
    loop_thread = threading.current_thread().name
    assert loop_thread not in set(writes) | set(reads)


async def test_concurrent_writes_are_serialized(database: SqliteDatabase) -> None:
    store = SqliteCustomerStore(database)
    batch = [customer(f"cus_{i}", email=f"c{i}@example.com") for i in range(50)]

    await asyncio.gather(*(store.add(c, customer_registered(c), None) for c in batch))

    assert await store.count() == 50
    assert await SqliteEventLog(database).head() == 50


async def test_a_write_that_raises_is_rolled_back(database: SqliteDatabase) -> None:
    def insert_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO event_checkpoints VALUES ('c', 1)")
        raise LookupError("changed my mind")

    with pytest.raises(LookupError):
        await database.write(insert_then_fail)

    assert await database.fetch_one("SELECT count(*) FROM event_checkpoints") == (0,)


async def test_readers_cannot_write(database: SqliteDatabase) -> None:
    with pytest.raises(StoreUnavailableError) as raised:
        await database.read(lambda conn: conn.execute("DELETE FROM customers"))
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)


async def test_sqlite_failures_become_store_unavailable(database: SqliteDatabase) -> None:
    def locked(_: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(StoreUnavailableError, match="database is locked") as raised:
        await database.read(locked)
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)


async def test_a_slow_call_times_out_as_store_unavailable(database_path: Path) -> None:
    async with SqliteDatabase(database_path, timeout=0.1) as db:
        with pytest.raises(StoreUnavailableError, match=r"within 0\.1s"):
            await db.read(lambda _: time.sleep(0.5))
        await db.ping()


async def test_ping_answers_while_open_and_fails_once_closed(database_path: Path) -> None:
    db = SqliteDatabase(database_path)
    with pytest.raises(StoreUnavailableError, match="not open"):
        await db.ping()
    await db.open()
    await db.ping()
    await db.close()
    await db.close()
    with pytest.raises(StoreUnavailableError, match="not open"):
        await db.ping()


async def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database file, not even close" * 100)
    db = SqliteDatabase(path)
    with pytest.raises(StoreUnavailableError, match="cannot open"):
        await db.open()
    await db.close()


async def test_a_write_with_events_wakes_log_waiters(database: SqliteDatabase) -> None:
    store, log = SqliteCustomerStore(database), SqliteEventLog(database)
    head = await log.head()
    waiter = asyncio.create_task(log.wait(after=head, timeout=5.0))
    await asyncio.sleep(0.01)
    assert not waiter.done()

    started = time.monotonic()
    ada = customer("cus_1")
    await store.add(ada, customer_registered(ada), None)
    await waiter

    assert time.monotonic() - started < 1.0


async def test_a_write_without_events_does_not_wake_waiters(database: SqliteDatabase) -> None:
    log = SqliteEventLog(database)
    waiter = asyncio.create_task(log.wait(after=await log.head(), timeout=0.3))
    await log.save_checkpoint("relay", 5)
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await waiter


async def test_events_from_another_process_are_seen_by_polling(database_path: Path) -> None:
    async with (
        SqliteDatabase(database_path) as ours,
        SqliteDatabase(database_path) as theirs,
    ):
        log = SqliteEventLog(ours)
        head = await log.head()
        bob = customer("cus_2")
        await SqliteCustomerStore(theirs).add(bob, customer_registered(bob), None)

        started = time.monotonic()
        await log.wait(after=head, timeout=0.2)

        assert time.monotonic() - started >= 0.15
        assert [e.event.customer_id for e in await log.read(after=head, limit=5)] == ["cus_2"]


async def test_upgrading_from_version_1_backfills_each_purchases_lines(tmp_path: Path) -> None:
    from adapters.sqlite.stores import SqlitePurchaseStore
    from domain.purchases import PurchaseLine

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrate(conn, MIGRATIONS[:1])
        conn.execute(
            "INSERT INTO purchases (id, customer_id, purchased_at, recorded_at, store_id) "
            "VALUES ('pur_old', 'cus_1', '2025-01-02T10:00:00.000000+00:00', NULL, NULL)"
        )
        conn.executemany(
            "INSERT INTO purchase_lines VALUES ('pur_old', ?, ?, ?, ?, ?)",
            [(2, "BREAD-W", 1, 95, 0), (1, "MILK-1L", 2, 119, 10)],
        )
    finally:
        conn.close()

    db = SqliteDatabase(path)
    await db.open()
    try:
        purchase = await SqlitePurchaseStore(db).get("pur_old")
    finally:
        await db.close()
    assert purchase is not None
    assert purchase.lines == (
        PurchaseLine("MILK-1L", 2, 119, 10),
        PurchaseLine("BREAD-W", 1, 95, 0),
    )
