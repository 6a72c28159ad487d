"""The real default model for slow tests: the user's own fetched cache when it holds the rungs
(quick), else fetched and prepared into a temporary home as tests/backends/test_llama_slow.py does."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsim import models


def default_model_home(tmp_path_factory: pytest.TempPathFactory, rungs: tuple[str, ...] = ("f16", "q4_0")) -> Path:
    from platformdirs import user_data_dir

    own = Path(user_data_dir("agentsim"))
    folder = own / "models" / models.DEFAULT_MODEL
    if all((folder / f"{r}.gguf").exists() for r in rungs):
        return own
    home = tmp_path_factory.mktemp("agentsim_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("AGENTSIM_HOME", str(home))
    try:
        models.prepare(models.DEFAULT_MODEL, list(rungs))
    finally:
        mp.undo()
    return home
