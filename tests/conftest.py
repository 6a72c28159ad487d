"""Test tiers: the default run is fast; ``--runslow`` adds real-model tests; ``gpu`` tests skip
(with the reason printed) where there is no CUDA GPU."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess

import pytest


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


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "runs.db"
