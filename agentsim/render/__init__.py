"""Renderings of the analysis: the report in the terminal (rich), as one self-contained HTML
file, as Markdown for a pull request, and as JSON for scripts.

``build_report(store, run_ids, baseline)`` is :func:`agentsim.analysis.evaluate`'s dict plus a
``"report"`` block; :func:`write_report` writes it in the format its file name asks for.
matplotlib (the ``report`` extra) is imported only when a plot is drawn.
"""

from __future__ import annotations

import json
from pathlib import Path

from agentsim.errors import AgentsimError

from .document import Report, build_report, select_run_ids
from .html import render_html
from .markdown import render_markdown
from .terminal import recommendation_texts, render_terminal, summary_table, verdict_lines

__all__ = ["Report", "build_report", "select_run_ids", "render_html", "render_markdown", "render_terminal",
           "render_json", "verdict_lines", "summary_table", "recommendation_texts", "write_report", "output_format",
           "FORMATS"]

#: output suffixes and their format
FORMATS = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown", ".json": "json"}


def render_json(doc: Report) -> str:
    """The report document as JSON (strict: no NaN or Infinity)."""
    return json.dumps(doc.to_json(), indent=2, allow_nan=False, default=str) + "\n"


def output_format(path: str | Path) -> str:
    """``html``, ``markdown`` or ``json`` from the file name; an AgentsimError for anything else."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise AgentsimError(f"cannot tell the report format from {p.name!r}",
                            hint="name the file report.html, report.md or report.json")
    if not p.parent.is_dir():
        raise AgentsimError(f"folder {p.parent} does not exist", hint="create it, or write the report elsewhere")
    return fmt


def write_report(doc: Report, path: str | Path) -> list[Path]:
    """Write the report to ``path`` (format from its suffix); returns every file written."""
    p = Path(path)
    fmt = output_format(p)
    if fmt == "html":
        p.write_text(render_html(doc), encoding="utf-8")
        return [p]
    if fmt == "markdown":
        text, svgs = render_markdown(doc, plot_dir=p.parent, stem=p.stem)
        p.write_text(text, encoding="utf-8")
        return [p, *svgs]
    p.write_text(render_json(doc), encoding="utf-8")
    return [p]
