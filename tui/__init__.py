"""agentsim's terminal UI (Textual): browse scenarios, launch and watch runs, compare precisions,
inspect per-hop failure traces.

This package's ``__init__`` imports nothing heavy so that ``agentsim.tui.cli`` can add the
``agentsim tui`` sub-command without importing Textual; the app lives in :mod:`agentsim.tui.app`
(``make_app`` is the factory shared by the CLI and the tests).
"""

from __future__ import annotations

__all__ = ["make_app"]


def make_app(*args: object, **kwargs: object) -> object:
    """Build the app (see :func:`agentsim.tui.app.make_app`); imports Textual on first use."""
    from .app import make_app as _make_app

    return _make_app(*args, **kwargs)  # type: ignore[arg-type]
