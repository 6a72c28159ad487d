"""Fixtures the unit tests share: an empty model cache per test, and a tiny GGUF per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_models import write_tiny_gguf


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``$AGENTSIM_HOME`` of this test's own (the path; nothing is created)."""
    h = tmp_path / "home"
    monkeypatch.setenv("AGENTSIM_HOME", str(h))
    return h


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny F16 GGUF (written by the tests, loads in llama.cpp), one per module."""
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny-f16.gguf", seed=0, dtype="f16")
