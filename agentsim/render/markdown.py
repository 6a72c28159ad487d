"""The report as Markdown, for pasting into a pull request or an issue.

Plots are written as separate SVG files beside the Markdown file (``<stem>-<plot>.svg``) and
linked; with ``plots=False`` (or when no folder is given) they are left out, with a note saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .common import (
    METHODS_NOTE,
    figure_columns,
    figure_rows,
    floor_lines,
    header_items,
    scale_lines,
    verdict_items,
)

if TYPE_CHECKING:
    from .document import Report

__all__ = ["render_markdown"]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: Report, *, plot_dir: Path | None = None, stem: str = "report",
                    plots: list[dict[str, str]] | None = None) -> tuple[str, list[Path]]:
    """(Markdown text, SVG files written). Plots go to ``plot_dir`` when it is given."""
    rep = doc.report
    lines = [f"# {rep['title']}", ""]
    lines += ["## Verdicts", ""]
    for v in verdict_items(doc):
        mark = {"red": "**", "green": "", "yellow": "_"}.get(v["style"], "")
        lines.append(f"- {mark}{v['verdict']}{mark}: {v['line']}")
        lines += [f"  - {d}" for d in v["details"]]
    lines += ["", "## What was measured", "", "| | |", "|---|---|"]
    lines += [f"| {label} | {_cell(text)} |" for label, text in header_items(doc)]
    if rep["rungs"]:
        lines += ["", "## What each rung is, relative to its source", ""]
        lines += [f"- {r['text']} (runs {', '.join(map(str, r['run_ids']))})" for r in rep["rungs"]]
    if scale_lines(doc):
        lines += ["", "## The scale axis (N*)", ""] + [f"- {x}" for x in scale_lines(doc)]
    cols = figure_columns()
    lines += ["", "## Figures", "", "| " + " | ".join(c for c, _ in cols) + " |",
              "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_cell(row[c]) for c, _ in cols) + " |" for row in figure_rows(doc)]
    lines += ["", "; ".join(f"{c}: {w}" for c, w in cols) + ". * = FP4 emulated.", "", METHODS_NOTE, ""]
    lines += [x for fl in floor_lines(doc) for x in (fl, "")]
    written: list[Path] = []
    lines += ["## Plots", ""]
    if plot_dir is None:
        lines.append("_Plots are omitted from the Markdown; `agentsim report ... -o report.html` draws them._")
    else:
        from .plots import render_plots

        plots = render_plots(doc) if plots is None else plots
        if not plots:
            lines.append("_No plot has data for these runs._")
        for p in plots:
            path = Path(plot_dir) / f"{stem}-{p['id']}.svg"
            path.write_text(p["svg"], encoding="utf-8")
            written.append(path)
            lines += [f"![{p['title']}]({path.name})", "", f"_{p['doc']}_", ""]
    lines += ["", f"_agentsim {rep['agentsim_version']}, generated {rep['generated_at']} from runs "
              f"{', '.join(map(str, rep['run_ids']))} of `{rep['db']}`._", ""]
    return "\n".join(lines), written
