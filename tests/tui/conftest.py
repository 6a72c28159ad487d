"""Fixtures of the TUI tests (all marked ``tui``: skipped when Textual is not installed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .helpers import build_fixed_db


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/tui/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.tui)


@pytest.fixture(scope="session")
def _fixed_db_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fixed_db(tmp_path_factory.mktemp("fixed") / "runs.db")


@pytest.fixture
def fixed_db(_fixed_db_master: Path, tmp_path: Path) -> Path:
    """A private copy of the deterministic database (tests may write to it)."""
    dst = tmp_path / "runs.db"
    shutil.copy(_fixed_db_master, dst)
    return dst

