"""``agentsim tui [--db PATH] [--scenarios DIR]``: the sub-command, without importing Textual.

Textual is imported only when the command runs, so ``agentsim --help`` and every other
sub-command stay light; a missing Textual is a clear message naming the extra to install.
"""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from agentsim.errors import AgentsimError

__all__ = ["add_cli", "cmd_tui"]


def add_cli(subparsers: Any) -> None:
    sp = subparsers.add_parser(
        "tui",
        help="terminal UI: browse scenarios, launch runs, compare precisions, inspect traces",
        description="Open the terminal UI. Keys: 1 scenarios, 2 launch, 3 runs, 4 trace, ? help, q quit.",
    )
    sp.add_argument("--db", default=None,
                    help="database path (default: $AGENTSIM_DB or ./agentsim.db); created on the first launch")
    sp.add_argument("--scenarios", action="append", default=[], metavar="DIR",
                    help="also list the scenario files in this folder (repeatable)")
    sp.set_defaults(func=cmd_tui)


def cmd_tui(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("textual") is None:
        raise AgentsimError("the terminal UI needs textual, which is not installed",
                            hint="pip install 'agentsim[tui]'")
    from agentsim.store import default_db

    from .app import make_app

    app = make_app(db=args.db or default_db(), scenario_dirs=list(args.scenarios))
    app.run()
    return int(app.return_code or 0)
