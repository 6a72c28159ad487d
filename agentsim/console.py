"""The one rich Console factory, JSON printing, the run progress view and the shared labels
(presentation only).

Every piece of text that comes from data (scenario names, backend specs, prompts, completions,
error messages) goes through :func:`esc` before it meets rich markup: ``[free]`` or a JSON list
in a completion would otherwise be read as a style tag and vanish.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentsim.analysis.summary_results import EnergySummary

__all__ = [
    "console",
    "print_json",
    "progress_printer",
    "esc",
    "ENERGY_SHORT",
    "energy_short",
    "energy_text",
    "energy_off",
    "params_text",
    "compact_table",
]

#: the one abbreviation of every energy kind, in every table (CLI, report, demo, TUI)
ENERGY_SHORT: dict[str, str] = {
    "measured": "meas.",
    "estimated": "est.",
    "mixed": "mixed",
    "unavailable": "n/a",
    "off": "off",
}


def console(stderr: bool = False, width: int | None = None) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def compact_table(*, title: str | None = None, caption: str | None = None, **kwargs: Any) -> Any:
    """A rich Table that fits 80 columns: a rule under the header, one space between columns,
    title and caption (already escaped) left-aligned. Print it with ``soft_wrap=False`` so the
    caption wraps."""
    from rich import box
    from rich.table import Table

    return Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 0),
                 title_justify="left", caption_justify="left", **kwargs)


def name_column(table: Any, header: str, names: Any, **kwargs: Any) -> None:
    """A column of names a user types back (scenario, model, backend, tool names): never cut or
    wrapped at any width (``no_wrap`` and as wide as the longest), so the other columns (a
    description) wrap instead."""
    width = max([len(header), *(len(str(n)) for n in names)])
    table.add_column(header, no_wrap=True, min_width=width, **kwargs)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def pct(v: float | None, digits: int = 1, sign: bool = True) -> str:
    """``97.9%`` (``-`` for None): the one way a share is printed."""
    return "-" if v is None else f"{100 * v:.{digits}f}" + ("%" if sign else "")


def clip(text: str, n: int) -> str:
    """``text`` cut to ``n`` characters with an ellipsis."""
    return text if len(text) <= n else text[: n - 1] + "…"


def esc(value: Any) -> str:
    """``value`` as text that rich prints literally (``[free]`` stays ``[free]``)."""
    from rich.markup import escape

    return escape("" if value is None else str(value))


def energy_short(kind: str | None) -> str:
    """The one short label of an energy kind (``est.``, ``meas.``, ...)."""
    return ENERGY_SHORT.get(kind or "unavailable", kind or "n/a")


def energy_off(meter: Mapping[str, Any] | None) -> bool:
    """Whether the run was recorded with metering turned off (``--energy off``)."""
    return bool(meter) and meter.get("name") == "off"  # type: ignore[union-attr]


def energy_text(e: EnergySummary, meter: Mapping[str, Any] | None = None) -> str:
    """A run's energy (a run summary's ``energy``) for ``show``: figure, kind and source, or why
    there is none.

    ``meter`` is the run's stored ``energy_meter`` (``Run.energy_meter``): it tells metering
    turned off (``--energy off``) from a machine without a meter.
    """
    if e.kind == "unavailable":
        if energy_off(meter):
            return "not recorded (metering turned off: --energy off)"
        return "unavailable (no meter on this machine)"
    if e.kind == "mixed":
        parts = [f"{energy_short(k)} {v.joules:.3f} J" for k, v in e.by_kind.items() if v.joules is not None]
        return "mixed (not summed): " + ", ".join(parts)
    return f"{e.joules:.3f} J {energy_short(e.kind)} ({e.kind}, {e.source})"


def params_text(params: Mapping[str, Any] | None) -> str:
    """``depth=3 distractors=4``: a run's parameters, sorted, in one short string."""
    if not params:
        return ""
    return " ".join(f"{k}={params[k]}" for k in sorted(params))


def progress_printer(console: Any) -> tuple[Any, Any]:
    """A progress bar per run; the counts, accuracy and time stay whole at 80 columns (the
    run's description is shortened with an ellipsis first)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Column

    # what follows the description: bar 12, "600/600" 7, "acc 0.44" 8, "0:00:00" 7, "eta" 3,
    # "0:00:00" 7, and one space between the columns
    rest = 12 + 7 + 8 + 7 + 3 + 7 + 6
    width = max(12, int(getattr(console, "width", 80) or 80) - rest - 1)
    bar = Progress(
        TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", max_width=width)),
        BarColumn(bar_width=12),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
        TextColumn("acc {task.fields[acc]}", table_column=Column(no_wrap=True)),
        TimeElapsedColumn(table_column=Column(no_wrap=True)),
        TextColumn("eta", table_column=Column(no_wrap=True)),
        TimeRemainingColumn(table_column=Column(no_wrap=True)),
        console=console,
        transient=False,
        expand=False,
    )

    tasks: dict[int, Any] = {}

    def on_progress(p: Any) -> None:
        if p.run_id not in tasks:
            tasks[p.run_id] = bar.add_task(
                esc(f"run {p.run_id} {p.scenario} [{p.mode}] {p.backend}"), total=p.hops_total, acc="-"
            )
        acc = f"{p.accuracy:.2f}" if p.accuracy is not None else "-"
        bar.update(tasks[p.run_id], completed=p.hops_done, acc=acc)

    return bar, on_progress
