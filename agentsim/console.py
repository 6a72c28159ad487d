"""The one rich Console factory, JSON printing and the run progress view (presentation only)."""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["console", "print_json", "progress_printer"]


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def progress_printer(console: Any) -> tuple[Any, Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("acc {task.fields[acc]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    from rich.markup import escape

    tasks: dict[int, Any] = {}

    def on_progress(p: Any) -> None:
        if p.run_id not in tasks:
            tasks[p.run_id] = bar.add_task(
                escape(f"run {p.run_id} {p.scenario} [{p.mode}] {p.backend}"), total=p.hops_total, acc="-"
            )
        acc = f"{p.accuracy:.2f}" if p.accuracy is not None else "-"
        bar.update(tasks[p.run_id], completed=p.hops_done, acc=acc)

    return bar, on_progress

