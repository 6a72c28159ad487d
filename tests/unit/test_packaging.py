"""Packaging facts a wheel depends on, checked fast (the wheel build itself is in the slow tier)."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # requires-python is >= 3.10; tomllib is 3.11's (the dev extra installs tomli on 3.10)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_in_the_wheel():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(("agentsim", *p.parent.relative_to(ROOT / "agentsim").parts)).rstrip(".")
             for p in (ROOT / "agentsim").rglob("__init__.py") if "__pycache__" not in p.parts}
    missing = sorted(found - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_builtin_backends_are_declared_as_entry_points():
    """agentsim's own backends register as a third party's would: one table, in pyproject."""
    declared = PYPROJECT["project"]["entry-points"]["agentsim.backends"]
    assert {"oracle", "noisy", "llama", "hf", "openai"} <= set(declared)
    installed = {ep.name: ep.value for ep in entry_points(group="agentsim.backends")}
    assert installed == declared, "reinstall (make install): the installed metadata is stale"

    from agentsim.backends.base import BACKENDS, available_backends

    assert set(declared) <= set(available_backends())
    for name in declared:
        assert BACKENDS.entry(name).origin == "entry point (agentsim.backends)"


def test_tomllib_is_never_needed_on_the_oldest_python_we_support():
    """requires-python says 3.10, whose standard library has no tomllib: every test and module
    that reads TOML falls back to tomli, which the dev extra installs there."""
    import re

    assert PYPROJECT["project"]["requires-python"] == ">=3.10"
    assert any(d.startswith("tomli") and "python_version < '3.11'" in d
               for d in PYPROJECT["project"]["optional-dependencies"]["dev"])
    for folder in ("agentsim", "backends", "tui", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if re.search(r"^\s*import tomllib", text, re.M):
                assert "import tomli as tomllib" in text, f"{path}: import tomllib without the 3.10 fallback"
