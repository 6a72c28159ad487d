"""The report as one self-contained HTML file: inline CSS, the plots inlined as SVG, no font,
script or stylesheet from anywhere else (it opens with no network).

The only script is a few inline lines that write each plot's bounding box into the page
(``<pre id="plot-boxes">``), so a headless browser test can check that every plot was laid out
and drawn; the report reads the same without it.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

from .common import (
    METHODS_NOTE,
    figure_columns,
    figure_rows,
    floor_lines,
    header_items,
    scale_lines,
    verdict_items,
)
from .plots import render_plots, svg_for_html

if TYPE_CHECKING:
    from .document import Report

__all__ = ["render_html"]

_CSS = """
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bad: #b42318; --good: #1a7f37; --warn: #9a6700; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1180px; padding: 24px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); }
.sub { color: var(--muted); margin: 0 0 16px; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
table.facts th { width: 130px; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; } .ci { color: var(--muted); font-size: 11.5px; }
ul.verdicts { list-style: none; padding: 0; } ul.verdicts > li { margin: 0 0 10px; padding: 8px 10px; border-left: 4px solid var(--line); background: #fafbfc; }
li.red { border-left-color: var(--bad) !important; } li.green { border-left-color: var(--good) !important; }
li.yellow { border-left-color: var(--warn) !important; } li.dim { color: var(--muted); }
.tag { font-weight: 700; text-transform: uppercase; font-size: 11px; letter-spacing: .04em; margin-right: 6px; }
li.red .tag { color: var(--bad); } li.green .tag { color: var(--good); } li.yellow .tag { color: var(--warn); }
ul.details { margin: 4px 0 0 18px; padding: 0; color: var(--muted); font-size: 12.5px; }
ul.rungs li { margin-bottom: 6px; }
figure { margin: 18px 0; } figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; }
.note { color: var(--muted); font-size: 12.5px; }
pre#plot-boxes { display: none; }
"""

_SCRIPT = """
(function () {
  var boxes = {};
  document.querySelectorAll("svg[id^='plot-']").forEach(function (svg) {
    var r = svg.getBoundingClientRect();
    boxes[svg.id] = {x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height};
  });
  document.getElementById("plot-boxes").textContent = JSON.stringify(boxes);
})();
"""


def _e(v: Any) -> str:
    return escape(str(v), quote=True)


def _cell(text: str) -> str:
    """A figure with its interval on a second, smaller line."""
    head, sep, tail = text.partition(" [")
    if not sep:
        return _e(text)
    ci, _, rest = tail.partition("]")
    return f'{_e(head)}<br><span class="ci">[{_e(ci)}]{_e(rest)}</span>'


def render_html(doc: Report, *, plots: list[dict[str, str]] | None = None) -> str:
    """The HTML document (a string) for a report document from :func:`build_report`."""
    rep = doc.report
    plots = render_plots(doc) if plots is None else plots
    out: list[str] = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      '<meta name="viewport" content="width=device-width, initial-scale=1">',
                      f"<title>{_e(rep['title'])}</title><style>{_CSS}</style></head><body>",
                      f"<h1>{_e(rep['title'])}</h1>",
                      f'<p class="sub">Does lowering precision hurt this multi-step workflow, by how much, where does '
                      f"it start, and does it save energy once wrong answers are counted? agentsim "
                      f"{_e(rep['agentsim_version'])}, generated {_e(rep['generated_at'])}.</p>"]
    out.append('<h2 id="verdicts">Verdicts</h2><ul class="verdicts">')
    for v in verdict_items(doc):
        out.append(f'<li class="{_e(v["style"])}" data-run="{v["run_id"]}"><span class="tag">{_e(v["verdict"])}</span>'
                   f"{_e(v['line'])}")
        if v["details"]:
            out.append('<ul class="details">' + "".join(f"<li>{_e(d)}</li>" for d in v["details"]) + "</ul>")
        out.append("</li>")
    out.append("</ul>")
    out.append('<h2 id="facts">What was measured</h2><table class="facts">')
    for label, text in header_items(doc):
        out.append(f"<tr><th>{_e(label)}</th><td>{_e(text)}</td></tr>")
    out.append("</table>")
    if rep["rungs"]:
        out.append('<h2 id="rungs">What each rung is, relative to its source</h2><ul class="rungs">')
        for r in rep["rungs"]:
            out.append(f'<li data-kind="{_e(r["kind"])}">{_e(r["text"])} <span class="note">(runs '
                       f"{_e(', '.join(map(str, r['run_ids'])))})</span></li>")
        out.append("</ul>")
    cols = figure_columns()
    out.append('<h2 id="figures">Figures</h2><table class="figures"><thead><tr>'
               + "".join(f'<th title="{_e(what)}">{_e(c)}</th>' for c, what in cols) + "</tr></thead><tbody>")
    for row in figure_rows(doc):
        out.append("<tr>" + "".join(f'<td class="num">{_cell(row[c])}</td>' if c not in ("what", "verdict")
                                    else f"<td>{_e(row[c])}</td>" for c, _ in cols) + "</tr>")
    out.append("</tbody></table>")
    out.append('<p class="note">' + _e("; ".join(f"{c}: {w}" for c, w in cols))
               + ". * = FP4 emulated (no FP4 tensor cores). " + _e(METHODS_NOTE) + "</p>")
    for line in floor_lines(doc):
        out.append(f'<p class="note noise-floor">{_e(line)}</p>')
    sweeps = doc.evaluation.sweeps
    if sweeps:
        out.append('<h2 id="sweeps">Depth sweeps</h2><ul>')
        for sw in sweeps:
            fit = sw.fit
            r = "-" if fit.r is None else f"{fit.r:.3f}"
            ci = fit.ci95
            out.append(f"<li>{_e(sw.family)} {_e(sw.precision or sw.backend)}: task success(depth) = "
                       f"r^depth, r = {_e(r)}{_e(f' [{ci[0]:.3f}, {ci[1]:.3f}]' if ci else '')} over "
                       f"{len(fit.points or [])} depths</li>")
        out.append("</ul>")
    scale = scale_lines(doc)
    if scale:
        out.append('<h2 id="scale">The scale axis (N*)</h2><ul class="scale">')
        out += [f"<li>{_e(line)}</li>" for line in scale]
        out.append("</ul>")
    out.append('<h2 id="plots">Plots</h2>')
    if not plots:
        out.append('<p class="note">no plot has data for these runs</p>')
    for p in plots:
        out.append(f'<figure id="figure-{_e(p["id"])}">{svg_for_html(p["svg"], p["id"])}'
                   f"<figcaption><b>{_e(p['title'])}.</b> {_e(p['doc'])}</figcaption></figure>")
    out.append('<pre id="plot-boxes"></pre>')
    out.append(f'<p class="note">Machine-readable: agentsim report ... -o report.json (schema '
               f"{doc.evaluation.schema_version}/{rep['schema_version']}). Runs {_e(json.dumps(rep['run_ids']))} of "
               f"{_e(rep['db'])}.</p>")
    out.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(out) + "\n"
