"""Where agentsim keeps things on disk: the one reader of ``AGENTSIM_HOME`` and ``AGENTSIM_DB``.

- ``$AGENTSIM_HOME`` (default: the platform's user data dir, e.g. ``~/.local/share/agentsim``)
  holds the model cache, ``models/<name>/`` (sources, ladder rungs, ``manifest.json``).
- derived files that can always be rebuilt (the hf backend's dequantized safetensors, the sha256
  memo) live in ``$AGENTSIM_HOME/cache``, or the platform's user cache dir when
  ``AGENTSIM_HOME`` is not set (e.g. ``~/.cache/agentsim``).
- ``$AGENTSIM_DB`` is the default database (a path or an SQLAlchemy URL; else ``./agentsim.db``).

This module is a leaf: it imports nothing of agentsim's. Every path is computed when asked, so a
test (or a user) that changes the environment is seen at once.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "HOME_ENV",
    "DB_ENV",
    "DEFAULT_DB",
    "agentsim_home",
    "models_dir",
    "cache_dir",
    "hf_cache_dir",
    "default_db",
]

#: the environment variable naming agentsim's data folder
HOME_ENV = "AGENTSIM_HOME"
#: the environment variable naming the default database
DB_ENV = "AGENTSIM_DB"
#: the database used when neither ``--db`` nor ``$AGENTSIM_DB`` says otherwise
DEFAULT_DB = "agentsim.db"


def _home_env() -> Path | None:
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else None


def agentsim_home() -> Path:
    """``$AGENTSIM_HOME`` or the platform's user data dir (XDG on Linux)."""
    home = _home_env()
    if home is not None:
        return home
    import platformdirs

    return Path(platformdirs.user_data_dir("agentsim"))


def models_dir() -> Path:
    """The model cache: one folder per model (``<name>/manifest.json``, ``source.gguf``, rungs)."""
    return agentsim_home() / "models"


def cache_dir() -> Path:
    """Derived, rebuildable files: ``$AGENTSIM_HOME/cache``, else the platform's user cache dir."""
    home = _home_env()
    if home is not None:
        return home / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir("agentsim"))


def hf_cache_dir() -> Path:
    """The hf backend's converted models (a GGUF dequantized to safetensors, by sha256)."""
    return cache_dir() / "hf"


def default_db() -> str:
    """The database when none is given: ``$AGENTSIM_DB`` or ``agentsim.db`` (current folder)."""
    return os.environ.get(DB_ENV) or DEFAULT_DB
