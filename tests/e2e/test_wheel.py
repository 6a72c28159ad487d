"""A built wheel installs agentsim, agentsim.backends, agentsim.tui and the bundled scenarios."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_contents_and_import(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=600,
    )
    wheel = next(tmp_path.glob("agentsim-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "agentsim/backends/base.py" in names
    assert "agentsim/tui/__init__.py" in names
    assert "agentsim/scenarios/chain-linear.yaml" in names
    assert not any(n.startswith(("backends/", "tui/", "tests/")) for n in names)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=600)
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "import agentsim, agentsim.backends, agentsim.tui\n"
        "assert agentsim.__file__.startswith(%r), agentsim.__file__\n"
        "from agentsim.scenario import bundled_scenarios, load_scenario\n"
        "b = bundled_scenarios(); assert 'chain-linear' in b, b\n"
        "load_scenario(b['fanin-dag'])\n"
        "print('ok')\n"
    ) % (str(site), str(site))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == "ok", out.stderr
