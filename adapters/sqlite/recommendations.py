"""Recommendation models in SQLite (tables of migration 5): the model as one JSON row per version,
and one row per (version, sku) holding that sku's profile as JSON. Saving a model writes its
profiles and the model row in one transaction, so a reader never sees a current model whose
profiles are missing; only the newest :data:`KEEP_VERSIONS` versions are kept."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from adapters.sqlite.database import SqliteDatabase
from domain.ports import RecommendationStore
from domain.recommendations import ItemProfile, RecommendationModel

KEEP_VERSIONS = 3
"""A process holding an older model keeps reading its profiles until it re-reads the current
model (at most a minute later), so a few versions stay."""

_CURRENT = "SELECT body FROM recommendation_models ORDER BY fitted_at DESC, version DESC LIMIT 1"
_SAVE_MODEL = (
    "INSERT OR REPLACE INTO recommendation_models (version, fitted_at, body) VALUES (?, ?, ?)"
)
_SAVE_ITEM = (
    "INSERT OR REPLACE INTO item_associations (model_version, sku, neighbours) VALUES (?, ?, ?)"
)
_ITEMS = (
    "SELECT sku, neighbours FROM item_associations "
    "WHERE model_version = ? AND sku IN (SELECT value FROM json_each(?))"
)
_OLD_VERSIONS = (
    "SELECT version FROM recommendation_models ORDER BY fitted_at DESC, version DESC "
    f"LIMIT -1 OFFSET {KEEP_VERSIONS}"
)


class SqliteRecommendationStore(RecommendationStore):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def save_model(self, model: RecommendationModel, items: Sequence[ItemProfile]) -> None:
        rows = [(model.version, i.sku, i.to_json()) for i in items]
        header = (model.version, model.fitted_at.isoformat(), model.to_json())

        def save(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM item_associations WHERE model_version = ?", (model.version,))
            conn.executemany(_SAVE_ITEM, rows)
            conn.execute(_SAVE_MODEL, header)
            old = [r[0] for r in conn.execute(_OLD_VERSIONS).fetchall()]
            for version in old:
                conn.execute("DELETE FROM item_associations WHERE model_version = ?", (version,))
                conn.execute("DELETE FROM recommendation_models WHERE version = ?", (version,))

        await self._db.write(save)

    async def current_model(self) -> RecommendationModel | None:
        row = await self._db.fetch_one(_CURRENT)
        return RecommendationModel.from_json(row[0]) if row is not None else None

    async def items(self, version: str, skus: Sequence[str]) -> dict[str, ItemProfile]:
        if not skus:
            return {}
        rows = await self._db.fetch_all(_ITEMS, (version, json.dumps(list(skus))))
        return {row[0]: ItemProfile.from_json(row[0], row[1]) for row in rows}
