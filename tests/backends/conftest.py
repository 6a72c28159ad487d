"""Fixtures for backend tests: the tiny self-written GGUF (see tests/tiny_models.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_models import write_tiny_gguf


@pytest.fixture(scope="session")
def tiny_gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``tiny-f32.gguf`` and ``tiny-f16.gguf`` (seed 0), written once per session."""
    d = tmp_path_factory.mktemp("tiny_gguf")
    write_tiny_gguf(d / "tiny-f32.gguf", seed=0, dtype="f32")
    write_tiny_gguf(d / "tiny-f16.gguf", seed=0, dtype="f16")
    return d


@pytest.fixture(scope="session")
def tiny_gguf(tiny_gguf_dir: Path) -> Path:
    """Path of the tiny F32 GGUF (seed 0)."""
    return tiny_gguf_dir / "tiny-f32.gguf"


@pytest.fixture(scope="session")
def tiny_gguf_f16(tiny_gguf_dir: Path) -> Path:
    """Path of the tiny F16 GGUF (seed 0, same weights rounded to F16)."""
    return tiny_gguf_dir / "tiny-f16.gguf"


@pytest.fixture
def agentsim_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model cache for one test (``AGENTSIM_HOME``), so tests never touch the user's."""
    home = tmp_path / "agentsim_home"
    monkeypatch.setenv("AGENTSIM_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hf_home")


@pytest.fixture
def home(hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One model cache shared by a module's tests (a GGUF converted once), never the user's."""
    monkeypatch.setenv("AGENTSIM_HOME", str(hf_home))
    return hf_home

