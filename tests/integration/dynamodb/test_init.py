"""``omnix init``: creates the tables on the first run, changes nothing on the second."""

from __future__ import annotations

from pathlib import Path

import pytest

from schema.cli import main
from tests.integration.dynamodb.conftest import store_url


def _init(capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["init"]) == 0
    return [line.strip() for line in capsys.readouterr().out.splitlines()[1:]]


def test_init_creates_the_tables_then_is_a_no_op(
    aws_env: dict[str, str],
    table_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OMNIX_STORE", store_url(table_prefix))
    names = [f"{table_prefix}{t}" for t in ("main", "idempotency", "events")]

    first = _init(capsys)

    assert (
        f"{names[0]}: created (on-demand billing; indexes: by_category, by_listing, by_segment)"
        in first
    )
    assert f"{names[1]}: TTL enabled on expires_at" in first
    assert f"{names[2]}: TTL enabled on expires_at" in first
    assert all(f"{name}: point-in-time recovery enabled" in first for name in names)
    assert _init(capsys) == [f"{name}: up to date" for name in names]


def test_init_on_sqlite_runs_the_migrations(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OMNIX_STORE", f"sqlite:///{tmp_path}/omnix.db")
    for _ in range(2):
        assert main(["init"]) == 0
        out = capsys.readouterr().out
        assert "SQLite store migrated to schema version" in out
    assert (tmp_path / "omnix.db").exists()


def test_init_with_a_bad_store_url_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OMNIX_STORE", "dynamodb://?region=eu-west-1&colour=red")
    assert main(["init"]) == 2
    assert "colour" in capsys.readouterr().err
