"""The ``agentsim`` command line: one module per command group; no other module imports it.

User errors (bad scenario files, unknown backends, missing models, ...) print one clear message
and exit 2; they never show a traceback. Each module in :data:`COMMANDS` adds its sub-commands
through ``add_cli(subparsers)`` and imports nothing heavy at module level.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Sequence

from agentsim.console import console
from agentsim.errors import AgentsimError

#: command modules, in the order ``agentsim --help`` lists their commands
COMMANDS: list[str] = [
    "agentsim.cli.run", "agentsim.cli.results", "agentsim.cli.report", "agentsim.cli.scenarios", "agentsim.cli.demo",
    "agentsim.tui.cli", "agentsim.cli.models", "agentsim.cli.casting", "agentsim.cli.tools",
    "agentsim.cli.sweep", "agentsim.cli.serve", "agentsim.cli.agent", "agentsim.cli.fidelity",
    "agentsim.cli.importer",
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="agentsim",
        description="What does 4-bit (or 8-bit, or FP4) do to a multi-step LLM agent workflow?",
    )
    p.add_argument("--version", action="version", version=f"agentsim {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for target in COMMANDS:
        importlib.import_module(target).add_cli(sub)
    return p


def _version() -> str:
    from agentsim import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except AgentsimError as exc:
        from rich.markup import escape

        console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}")
        return exc.exit_code
    except KeyboardInterrupt:
        console(stderr=True).print("[yellow]interrupted[/yellow]: what was recorded is kept; "
                                    "'agentsim runs --db DB' shows which runs are unfinished, and "
                                    "'agentsim run --resume ID --db DB' finishes one")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last resort: say it is a bug, keep it short
        if os.environ.get("AGENTSIM_DEBUG"):
            raise
        console(stderr=True).print(
            f"[red]internal error[/red] ({type(exc).__name__}: {exc}). This is a bug in agentsim; "
            "rerun with AGENTSIM_DEBUG=1 for the traceback and report it."
        )
        return 3



