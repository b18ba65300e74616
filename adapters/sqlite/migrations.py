"""Versioned schema migrations for the SQLite store.

Each migration runs once, in order, inside the transaction that records it in ``schema_version``,
so a crash half-way leaves the database at the previous version. Add new steps at the end;
never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


class SchemaVersionError(RuntimeError):
    """The database was written by a newer build than this one; opening it could corrupt it."""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "customers, catalogue, purchases, event log, checkpoints and idempotency claims",
        (
            # search_key holds the Python-lowercased name and email: SQLite's own lower() and
            # LIKE fold ASCII only, which would make "élodie" miss "Élodie".
            """
            CREATE TABLE customers (
                id TEXT PRIMARY KEY,
                name TEXT,
                email TEXT UNIQUE COLLATE NOCASE,
                created_at TEXT NOT NULL,
                consent_analytics INTEGER NOT NULL DEFAULT 0,
                consent_ai_profiling INTEGER NOT NULL DEFAULT 0,
                consent_marketing INTEGER NOT NULL DEFAULT 0,
                household_size INTEGER,
                search_key TEXT NOT NULL DEFAULT ''
            )
            """,
            """
            CREATE TABLE products (
                sku TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                category TEXT NOT NULL,
                brand TEXT NOT NULL,
                price_tier TEXT NOT NULL,
                pack_size REAL NOT NULL,
                unit TEXT NOT NULL,
                price_cents INTEGER NOT NULL,
                tags TEXT NOT NULL DEFAULT '[]'
            ) WITHOUT ROWID
            """,
            "CREATE INDEX products_by_category ON products (category, sku)",
            # No foreign keys to customers or products: bulk imports load them in any order.
            """
            CREATE TABLE purchases (
                id TEXT PRIMARY KEY,
                customer_id TEXT NOT NULL,
                purchased_at TEXT NOT NULL,
                recorded_at TEXT,
                store_id TEXT
            )
            """,
            """
            CREATE INDEX purchases_by_customer
                ON purchases (customer_id, purchased_at DESC, id DESC)
            """,
            """
            CREATE TABLE purchase_lines (
                purchase_id TEXT NOT NULL REFERENCES purchases (id) ON DELETE CASCADE,
                line_no INTEGER NOT NULL,
                sku TEXT NOT NULL,
                quantity INTEGER NOT NULL,
                unit_price_cents INTEGER NOT NULL,
                discount_cents INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (purchase_id, line_no)
            ) WITHOUT ROWID
            """,
            # AUTOINCREMENT: positions are never reused, even after the newest events are deleted,
            # so a consumer's checkpoint can never point at a different event later.
            """
            CREATE TABLE events (
                position INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                type TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                occurred_at TEXT NOT NULL,
                payload TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE event_checkpoints (
                consumer TEXT PRIMARY KEY,
                position INTEGER NOT NULL
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE idempotency (
                scope TEXT NOT NULL,
                key TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                result_id TEXT NOT NULL,
                created_at TEXT NOT NULL,
                PRIMARY KEY (scope, key)
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        2,
        "each purchase keeps its lines as a JSON array: baskets never change once accepted, and a "
        "page of them is then read as one row per basket, without a join",
        (
            "ALTER TABLE purchases ADD COLUMN lines TEXT NOT NULL DEFAULT '[]'",
            """
            UPDATE purchases SET lines = (
                SELECT json_group_array(
                    json_array(l.sku, l.quantity, l.unit_price_cents, l.discount_cents)
                )
                FROM purchase_lines AS l WHERE l.purchase_id = purchases.id
            )
            """,
        ),
    ),
    Migration(
        3,
        "stored predictions: fitted models by version, consumption patterns per (customer, sku), "
        "customer forecasts and socioeconomic profiles",
        (
            """
            CREATE TABLE prediction_models (
                version TEXT PRIMARY KEY,
                fitted_at TEXT NOT NULL,
                body TEXT NOT NULL
            ) WITHOUT ROWID
            """,
            "CREATE INDEX prediction_models_by_time ON prediction_models (fitted_at)",
            """
            CREATE TABLE consumption_patterns (
                customer_id TEXT NOT NULL,
                sku TEXT NOT NULL,
                purchases INTEGER NOT NULL,
                mean_interval_days REAL NOT NULL,
                units_per_day REAL NOT NULL,
                last_purchased_at TEXT NOT NULL,
                last_quantity INTEGER NOT NULL,
                next_expected_at TEXT NOT NULL,
                window_low TEXT NOT NULL,
                window_high TEXT NOT NULL,
                status TEXT NOT NULL,
                confidence REAL NOT NULL,
                log_days_per_unit REAL NOT NULL,
                log_spread REAL NOT NULL,
                computed_at TEXT NOT NULL,
                model_version TEXT NOT NULL,
                PRIMARY KEY (customer_id, sku)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE customer_forecasts (
                customer_id TEXT PRIMARY KEY,
                frequency INTEGER NOT NULL,
                recency_days REAL NOT NULL,
                age_days REAL NOT NULL,
                p_alive REAL NOT NULL,
                expected_transactions REAL NOT NULL,
                horizon_days REAL NOT NULL,
                expected_spend_cents REAL NOT NULL,
                clv_cents REAL NOT NULL,
                churn_risk TEXT NOT NULL,
                overdue_staples INTEGER NOT NULL,
                monetary_cents REAL NOT NULL,
                computed_at TEXT NOT NULL,
                model_version TEXT NOT NULL
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE customer_profiles (
                customer_id TEXT PRIMARY KEY,
                affluence TEXT NOT NULL,
                confidence REAL NOT NULL,
                computed_at TEXT NOT NULL,
                model_version TEXT NOT NULL,
                body TEXT NOT NULL
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        4,
        "AI usage: one row per analyst call or cache hit, with tokens, cost (integer "
        "nano-dollars, so sums are exact), latency and outcome",
        (
            # occurred_at is UTC ISO-8601 with microseconds: fixed width, so text order is time
            # order; day is its date, the grouping key of the per-day report.
            """
            CREATE TABLE ai_usage (
                id TEXT PRIMARY KEY,
                occurred_at TEXT NOT NULL,
                day TEXT NOT NULL,
                customer_id TEXT,
                model TEXT NOT NULL,
                prompt_version TEXT NOT NULL,
                input_tokens INTEGER NOT NULL,
                output_tokens INTEGER NOT NULL,
                cost_nanousd INTEGER NOT NULL,
                latency_ms REAL NOT NULL,
                success INTEGER NOT NULL,
                cached INTEGER NOT NULL,
                fallback INTEGER NOT NULL,
                error TEXT
            ) WITHOUT ROWID
            """,
            "CREATE INDEX ai_usage_by_time ON ai_usage (occurred_at)",
        ),
    ),
    Migration(
        5,
        "recommendation models by version and, per model and sku, the skus most often bought "
        "with it (lift, support, confidence) as one JSON row",
        (
            """
            CREATE TABLE recommendation_models (
                version TEXT PRIMARY KEY,
                fitted_at TEXT NOT NULL,
                body TEXT NOT NULL
            ) WITHOUT ROWID
            """,
            "CREATE INDEX recommendation_models_by_time ON recommendation_models (fitted_at)",
            """
            CREATE TABLE item_associations (
                model_version TEXT NOT NULL,
                sku TEXT NOT NULL,
                neighbours TEXT NOT NULL,
                PRIMARY KEY (model_version, sku)
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        6,
        "anomalies (one per cause and window: dedup_key is unique) and insights (one per "
        "anomaly), each ordered by an AUTOINCREMENT position, the cursor of replays; the "
        "detectors' own state (the sales-rate baselines) by name",
        (
            """
            CREATE TABLE anomalies (
                position INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                dedup_key TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL,
                severity INTEGER NOT NULL,
                score REAL NOT NULL,
                customer_id TEXT,
                subject TEXT,
                explanation TEXT NOT NULL,
                evidence TEXT NOT NULL,
                detected_at TEXT NOT NULL,
                source_event_id TEXT
            )
            """,
            "CREATE INDEX anomalies_by_customer ON anomalies (customer_id, position)",
            "CREATE INDEX anomalies_by_time ON anomalies (detected_at, position)",
            """
            CREATE TABLE insights (
                position INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                customer_id TEXT NOT NULL,
                anomaly_id TEXT UNIQUE,
                text TEXT NOT NULL,
                created_at TEXT NOT NULL,
                model TEXT NOT NULL
            )
            """,
            "CREATE INDEX insights_by_customer ON insights (customer_id, position)",
            """
            CREATE TABLE detector_state (
                name TEXT PRIMARY KEY,
                body TEXT NOT NULL,
                updated_at TEXT NOT NULL
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        7,
        "segmentation: models by version, each customer's segment (indexed by segment for "
        "customers(segment:)) with the behaviour it came from, migrations between segments in "
        "time order, and the latest KPI summary",
        (
            """
            CREATE TABLE segment_models (
                version TEXT PRIMARY KEY,
                fitted_at TEXT NOT NULL,
                body TEXT NOT NULL
            ) WITHOUT ROWID
            """,
            "CREATE INDEX segment_models_by_time ON segment_models (fitted_at)",
            """
            CREATE TABLE customer_segments (
                customer_id TEXT PRIMARY KEY,
                segment TEXT NOT NULL,
                assigned_at TEXT NOT NULL,
                body TEXT NOT NULL
            ) WITHOUT ROWID
            """,
            "CREATE INDEX customer_segments_by_segment ON customer_segments (segment, customer_id)",
            # at is UTC ISO-8601 with microseconds: fixed width, so text order is time order.
            """
            CREATE TABLE segment_migrations (
                id TEXT PRIMARY KEY,
                customer_id TEXT NOT NULL,
                from_segment TEXT NOT NULL,
                to_segment TEXT NOT NULL,
                at TEXT NOT NULL,
                reason TEXT NOT NULL,
                model_version TEXT NOT NULL
            ) WITHOUT ROWID
            """,
            "CREATE INDEX segment_migrations_by_time ON segment_migrations (at, id)",
            """
            CREATE TABLE segment_summary (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                measured_at TEXT NOT NULL,
                body TEXT NOT NULL
            )
            """,
        ),
    ),
    Migration(
        8,
        "jobs: one row per job, its whole state as JSON beside the columns it is listed and "
        "guarded by (status, revision)",
        (
            """
            CREATE TABLE jobs (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                status TEXT NOT NULL,
                revision INTEGER NOT NULL,
                updated_at TEXT NOT NULL,
                body TEXT NOT NULL
            ) WITHOUT ROWID
            """,
            "CREATE INDEX jobs_by_status ON jobs (status, id)",
        ),
    ),
)


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return len(migrations)


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    label: str = "database",
) -> int:
    """Bring the schema up to the newest version; returns it. ``conn`` must be in autocommit
    mode (``isolation_level=None``). Raises SchemaVersionError for a database from the future."""
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ValueError(f"migration {migration.version} is out of order; expected {expected}")
    latest = latest_version(migrations)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        if current > latest:
            raise SchemaVersionError(
                f"{label} has schema version {current}, newer than the newest this build knows "
                f"({latest}); run a newer OMNIX or point OMNIX_STORE at another file"
            )
        for migration in migrations[current:]:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, datetime.now(UTC).isoformat()),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.rollback()
        raise
    return latest
