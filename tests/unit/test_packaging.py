"""Packaging facts a wheel depends on, checked fast (the wheel build itself is in the slow tier)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import tomllib

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
