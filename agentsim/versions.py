"""Installed package versions, looked up in one place (recorded with runs and model recipes).

Distribution names, not import names: ``llama-cpp-python``, not ``llama_cpp``. Looking a version
up never imports the package. This module is a leaf: it imports nothing of agentsim's.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

__all__ = ["dist_version", "dist_versions"]


@lru_cache(maxsize=None)
def dist_version(dist: str) -> str | None:
    """The installed version of distribution ``dist`` (e.g. ``"llama-cpp-python"``), or None."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def dist_versions(dists: Iterable[str]) -> dict[str, str | None]:
    """``{dist: version or None}`` for each name, in the order given."""
    return {d: dist_version(d) for d in dists}
