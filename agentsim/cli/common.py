"""What every command module shares: the store from ``--db``, number formatting."""

from __future__ import annotations

import argparse
from typing import Any

from agentsim.console import console, print_json

__all__ = ["console", "print_json", "open_store", "db_arg", "fmt", "fmt_ci"]


def open_store(args: argparse.Namespace, readonly: bool = False) -> Any:
    from agentsim.store import Store

    return Store(args.db, readonly=readonly)


def failures_exit_code(failures: Any) -> int:
    """The exit status of a launch whose backends ``failures`` (``(spec, AgentsimError)``) could
    not run: 2 when they are user errors (an unknown or unfetched model, a missing rung), as
    for every user error, else that error's own code; 0 when none failed."""
    return max((int(getattr(exc, "exit_code", 1)) for _, exc in failures), default=0)


def db_arg(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--db", default=None, help="database path or SQLAlchemy URL (default: $AGENTSIM_DB or ./agentsim.db)")


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def fmt_ci(v: Any, ci: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" + (f"  [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")



#: the engine's modes (``--mode``); a scenario family's own knob (gsm8k's ``form``) is a --param
RUN_MODES = ("free", "oracle", "both")


def run_mode(value: str) -> str:
    """``--mode``'s type: free, oracle or both; a family form (whole, worked, decomposed) is
    pointed to its ``--param``, not refused bare."""
    if value in RUN_MODES:
        return value
    if value in ("whole", "worked", "decomposed"):
        raise argparse.ArgumentTypeError(
            f"{value!r} is a form of the gsm8k family, not a run mode: use --param form={value} "
            f"(--mode is {', '.join(RUN_MODES)}: whether hops see their parents' actual or expected answers)")
    raise argparse.ArgumentTypeError(f"invalid choice {value!r} (choose from {', '.join(RUN_MODES)})")
