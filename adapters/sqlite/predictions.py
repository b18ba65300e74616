"""Stored predictions in SQLite: fitted models by version, and per customer the consumption
patterns, the forecast and the profile (tables of migration 3). ``save`` replaces a customer's
rows in one transaction, so a reader sees either the old predictions or the new ones."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from adapters.sqlite.database import SqliteDatabase
from domain.ports import PredictionStore
from domain.predictions import (
    Affluence,
    ChurnRiskBand,
    ConsumptionPattern,
    ConsumptionStatus,
    CustomerForecast,
    CustomerPredictions,
    PredictionModel,
    SocioeconomicProfile,
)

_IDS = "SELECT value FROM json_each(?)"

_PATTERN_COLUMNS = (
    "customer_id, sku, purchases, mean_interval_days, units_per_day, last_purchased_at, "
    "last_quantity, next_expected_at, window_low, window_high, status, confidence, "
    "log_days_per_unit, log_spread, computed_at, model_version"
)
_FORECAST_COLUMNS = (
    "customer_id, frequency, recency_days, age_days, p_alive, expected_transactions, "
    "horizon_days, expected_spend_cents, clv_cents, monetary_cents, churn_risk, "
    "overdue_staples, computed_at, model_version"
)
_PROFILE_COLUMNS = "customer_id, affluence, confidence, computed_at, model_version, body"

_INSERT_PATTERN = (
    f"INSERT INTO consumption_patterns ({_PATTERN_COLUMNS}) VALUES ({', '.join('?' * 16)})"
)
_INSERT_FORECAST = (
    f"INSERT OR REPLACE INTO customer_forecasts ({_FORECAST_COLUMNS}) "
    f"VALUES ({', '.join('?' * 14)})"
)
_INSERT_PROFILE = (
    f"INSERT OR REPLACE INTO customer_profiles ({_PROFILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
)
_SELECT_PATTERNS = (
    f"SELECT {_PATTERN_COLUMNS} FROM consumption_patterns WHERE customer_id IN ({_IDS}) "
    "ORDER BY customer_id, next_expected_at"
)
_SELECT_FORECASTS = (
    f"SELECT {_FORECAST_COLUMNS} FROM customer_forecasts WHERE customer_id IN ({_IDS})"
)
_SELECT_PROFILES = f"SELECT {_PROFILE_COLUMNS} FROM customer_profiles WHERE customer_id IN ({_IDS})"
_CURRENT_MODEL = "SELECT body FROM prediction_models ORDER BY fitted_at DESC, version DESC LIMIT 1"
_SAVE_MODEL = "INSERT OR REPLACE INTO prediction_models (version, fitted_at, body) VALUES (?, ?, ?)"


def _pattern_row(p: ConsumptionPattern) -> tuple[Any, ...]:
    return (
        p.customer_id, p.sku, p.purchases, p.mean_interval_days, p.units_per_day,
        p.last_purchased_at.isoformat(), p.last_quantity, p.next_expected_at.isoformat(),
        p.window_low.isoformat(), p.window_high.isoformat(), p.status.value, p.confidence,
        p.log_days_per_unit, p.log_spread, p.computed_at.isoformat(), p.model_version,
    )  # fmt: skip


def _pattern(row: sqlite3.Row | tuple[Any, ...]) -> ConsumptionPattern:
    return ConsumptionPattern(
        customer_id=row[0],
        sku=row[1],
        purchases=row[2],
        mean_interval_days=row[3],
        units_per_day=row[4],
        last_purchased_at=datetime.fromisoformat(row[5]),
        last_quantity=row[6],
        next_expected_at=datetime.fromisoformat(row[7]),
        window_low=datetime.fromisoformat(row[8]),
        window_high=datetime.fromisoformat(row[9]),
        status=ConsumptionStatus(row[10]),
        confidence=row[11],
        log_days_per_unit=row[12],
        log_spread=row[13],
        computed_at=datetime.fromisoformat(row[14]),
        model_version=row[15],
    )


def _forecast_row(f: CustomerForecast) -> tuple[Any, ...]:
    return (
        f.customer_id, f.frequency, f.recency_days, f.age_days, f.p_alive,
        f.expected_transactions, f.horizon_days, f.expected_spend_cents, f.clv_cents,
        f.monetary_cents, f.churn_risk.value, f.overdue_staples, f.computed_at.isoformat(),
        f.model_version,
    )  # fmt: skip


def _forecast(row: sqlite3.Row | tuple[Any, ...]) -> CustomerForecast:
    return CustomerForecast(
        customer_id=row[0],
        frequency=row[1],
        recency_days=row[2],
        age_days=row[3],
        p_alive=row[4],
        expected_transactions=row[5],
        horizon_days=row[6],
        expected_spend_cents=row[7],
        clv_cents=row[8],
        monetary_cents=row[9],
        churn_risk=ChurnRiskBand(row[10]),
        overdue_staples=row[11],
        computed_at=datetime.fromisoformat(row[12]),
        model_version=row[13],
    )


_PROFILE_HEADER = {"customer_id", "affluence", "confidence", "computed_at", "model_version"}


def _profile_row(p: SocioeconomicProfile) -> tuple[Any, ...]:
    body = {k: v for k, v in asdict(p).items() if k not in _PROFILE_HEADER}
    body["drivers"] = list(p.drivers)
    return (
        p.customer_id,
        p.affluence.value,
        p.confidence,
        p.computed_at.isoformat(),
        p.model_version,
        json.dumps(body, separators=(",", ":")),
    )


def _profile(row: sqlite3.Row | tuple[Any, ...]) -> SocioeconomicProfile:
    body = json.loads(row[5])
    body["drivers"] = tuple(body["drivers"])
    return SocioeconomicProfile(
        customer_id=row[0],
        affluence=Affluence(row[1]),
        confidence=row[2],
        computed_at=datetime.fromisoformat(row[3]),
        model_version=row[4],
        **body,
    )


class SqlitePredictionStore(PredictionStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def save_model(self, model: PredictionModel) -> None:
        row = (model.version, model.fitted_at.isoformat(), model.to_json())
        await self._db.write(lambda conn: conn.execute(_SAVE_MODEL, row))

    async def current_model(self) -> PredictionModel | None:
        row = await self._db.fetch_one(_CURRENT_MODEL)
        return PredictionModel.from_json(row[0]) if row is not None else None

    async def save(self, predictions: Sequence[CustomerPredictions]) -> None:
        if not predictions:
            return
        ids = json.dumps([p.customer_id for p in predictions])
        patterns = [_pattern_row(c) for p in predictions for c in p.consumption]
        forecasts = [_forecast_row(p.forecast) for p in predictions if p.forecast is not None]
        profiles = [_profile_row(p.profile) for p in predictions if p.profile is not None]

        def replace_all(conn: sqlite3.Connection) -> None:
            for table in ("consumption_patterns", "customer_forecasts", "customer_profiles"):
                conn.execute(f"DELETE FROM {table} WHERE customer_id IN ({_IDS})", (ids,))
            conn.executemany(_INSERT_PATTERN, patterns)
            conn.executemany(_INSERT_FORECAST, forecasts)
            conn.executemany(_INSERT_PROFILE, profiles)

        await self._db.write(replace_all)

    async def get_many(self, customer_ids: Sequence[str]) -> dict[str, CustomerPredictions]:
        if not customer_ids:
            return {}
        ids = json.dumps(list(customer_ids))

        def read(conn: sqlite3.Connection) -> tuple[list[Any], list[Any], list[Any]]:
            return (
                conn.execute(_SELECT_PATTERNS, (ids,)).fetchall(),
                conn.execute(_SELECT_FORECASTS, (ids,)).fetchall(),
                conn.execute(_SELECT_PROFILES, (ids,)).fetchall(),
            )

        pattern_rows, forecast_rows, profile_rows = await self._db.read(read)
        patterns: dict[str, list[ConsumptionPattern]] = {}
        for row in pattern_rows:
            patterns.setdefault(row[0], []).append(_pattern(row))
        forecasts = {row[0]: _forecast(row) for row in forecast_rows}
        profiles = {row[0]: _profile(row) for row in profile_rows}
        found = set(patterns) | set(forecasts) | set(profiles)
        return {
            cid: CustomerPredictions(
                customer_id=cid,
                consumption=tuple(patterns.get(cid, ())),
                forecast=forecasts.get(cid),
                profile=profiles.get(cid),
            )
            for cid in customer_ids
            if cid in found
        }

    async def delete_profile(self, customer_id: str) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "DELETE FROM customer_profiles WHERE customer_id = ?", (customer_id,)
            )
        )
