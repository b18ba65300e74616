"""Fixtures shared by every tier (unit, integration, e2e). Tier-specific ones live in the tier's
own conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OMNIX_* variable from the developer's shell leaks into the test; set what the test
    needs with the returned monkeypatch (``clean_environ.setenv("OMNIX_PORT", "9000")``)."""
    for name in list(os.environ):
        if name.startswith("OMNIX_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty, per-test directory to use as OMNIX_DATA_DIR."""
    path = tmp_path / "data"
    path.mkdir()
    return path
