"""The report's plots, drawn with matplotlib's SVG backend (no display, no browser): each
function takes the report document and returns an SVG string, or None when it has nothing to
draw. Every plot has a legend; intervals are the 95 % intervals of ``evaluate()``.

Output is deterministic (fixed hash salt, no date in the metadata) and self-contained: glyphs are
drawn as paths, so the SVG needs no font.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

from agentsim.analysis.results import Estimate, RunEvaluation, present
from agentsim.errors import MissingDependencyError

from .document import ERROR_KINDS, Report

__all__ = ["PLOTS", "render_plots", "svg_for_html"]

_ERROR_COLOURS = {"local": "#d62728", "propagated": "#ff7f0e", "recovered": "#2ca02c",
                  "parse": "#9467bd", "truncated": "#bcbd22", "backend": "#7f7f7f"}


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("the report's plots", "report", ["matplotlib"]) from None
    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "agentsim", "svg.fonttype": "path", "font.size": 9,
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _svg(fig: Any) -> str:
    plt = _plt()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue()


def _colours(n: int) -> list[Any]:
    plt = _plt()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def rung_key(b: RunEvaluation) -> str:
    """What a colour stands for: the precision (a simulation backend: its spec)."""
    return str(b.precision or b.backend)


def colour_of(doc: Report) -> Callable[[RunEvaluation], Any]:
    """One colour per precision across every plot of a report: precisions in the catalogue's order
    (agentsim.precision.PRECISIONS) first, then the other rungs in the order they appear."""
    from agentsim.precision import PRECISIONS

    keys = list(dict.fromkeys(rung_key(b) for b in doc.runs))
    order = [p for p in PRECISIONS if p in keys] + [k for k in keys if k not in PRECISIONS]
    palette = _colours(max(len(order), 1))
    table = {k: palette[i] for i, k in enumerate(order)}
    return lambda b: table[rung_key(b)]


def _short(b: RunEvaluation) -> str:
    """A series name: ``r3 q4_0`` (the run id keeps two runs of one precision apart)."""
    return f"r{b.run_id} {b.precision or b.backend}"


def _panels(doc: Report, pred: Callable[[RunEvaluation], bool]) -> list[tuple[str, list[RunEvaluation]]]:
    """Runs grouped by scenario label and mode (one panel each, at most 8), in first-seen order,
    each titled by both (the label tells two scenarios of one name apart)."""
    out: dict[tuple[str, str], list[RunEvaluation]] = {}
    for b in doc.runs:
        if pred(b):
            out.setdefault((_label(b), b.mode), []).append(b)
    return [(f"{label} — {mode} mode", blocks) for (label, mode), blocks in list(out.items())[:8]]


def _label(b: RunEvaluation) -> str:
    return str(b.scenario_label or b.scenario)


def _grid(n: int, *, w: float = 4.6, h: float = 3.2, max_cols: int = 2) -> tuple[Any, list[Any]]:
    plt = _plt()
    cols = min(n, max_cols)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False, layout="constrained")
    flat = [a for row in axes for a in row]
    for a in flat[n:]:
        a.set_visible(False)
    return fig, flat[:n]


def _wrap(title: str, width: int = 48) -> str:
    return title if len(title) <= width else title[: width - 1] + "…"


def accuracy_by_depth(doc: Report) -> str | None:
    """Model-hop accuracy by depth per run, one panel per scenario and mode, 95 % bands."""
    panels = _panels(doc, lambda b: bool(b.single.accuracy_by_depth))
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    colour = colour_of(doc)
    for ax, (name, blocks) in zip(axes, panels, strict=True):
        for b in blocks:
            bd = b.single.accuracy_by_depth
            xs = sorted(int(d) for d in bd)
            ys = [bd[str(d)].accuracy for d in xs]
            ax.plot(xs, ys, marker="o", color=colour(b), label=_short(b), lw=1.6)
            lo = [(bd[str(d)].ci95 or [bd[str(d)].accuracy] * 2)[0] for d in xs]
            hi = [(bd[str(d)].ci95 or [bd[str(d)].accuracy] * 2)[1] for d in xs]
            ax.fill_between(xs, lo, hi, color=colour(b), alpha=0.15, lw=0)
        ax.set_title(_wrap(name))
        ax.set_xlabel("hop depth")
        ax.set_ylabel("model-hop accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xticks(sorted({int(d) for b in blocks for d in b.single.accuracy_by_depth}))
        ax.legend(fontsize=7, loc="lower left", title="run (band: 95 % CI)", title_fontsize=7)
    fig.suptitle("Model-hop accuracy by depth")
    return _svg(fig)


def task_success_by_depth(doc: Report) -> str | None:
    """Task success through each depth (instances whose model hops up to that depth are all right),
    one line per run with its Wilson 95 % band, one panel per scenario and mode."""
    panels = _panels(doc, lambda b: bool(b.single.task_success_by_depth))
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    colour = colour_of(doc)
    for ax, (name, blocks) in zip(axes, panels, strict=True):
        for b in blocks:
            td = b.single.task_success_by_depth
            xs = sorted(int(d) for d in td)
            ys = [td[str(d)].value for d in xs]
            lo = [td[str(d)].ci95[0] for d in xs]
            hi = [td[str(d)].ci95[1] for d in xs]
            ax.plot(xs, ys, marker="o", color=colour(b), label=_short(b), lw=1.6)
            ax.fill_between(xs, lo, hi, color=colour(b), alpha=0.15, lw=0)
        ax.set_title(_wrap(name))
        ax.set_xticks(sorted({int(d) for b in blocks for d in b.single.task_success_by_depth}))
        ax.set_xlabel("depth (every model hop up to it right)")
        ax.set_ylabel("task success")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7, loc="lower left", title="run (band: 95 % CI)", title_fontsize=7)
    fig.suptitle("Task success by depth")
    return _svg(fig)


def cost_per_correct_task(doc: Report) -> str | None:
    """Energy and seconds per correct task per run, with bootstrap 95 % intervals; each
    energy point is labelled with its kind (measured / estimated) and kinds are never pooled."""
    metrics = [("energy_per_correct_task_j", "energy per correct task (J)"),
               ("seconds_per_correct_task", "seconds per correct task")]
    shown = [(k, t) for k, t in metrics if any(b.single.cost(k) for b in doc.runs)]
    if not shown:
        return None
    blocks = doc.runs
    fig, axes = _grid(len(shown), w=6.0, h=max(2.4, 0.26 * len(blocks) + 1.0), max_cols=1)
    for ax, (key, label) in zip(axes, shown, strict=True):
        kinds = sorted({_kind(f) for b in blocks if (f := b.single.cost(key))})
        markers = dict(zip(kinds, "osD^v", strict=False))
        ys = list(range(len(blocks)))
        for colour, y, b in ((colour_of(doc)(b), y, b) for y, b in zip(ys, blocks, strict=True)):
            f = b.single.cost(key)
            if not f or f.value is None:
                continue
            v = f.value
            ci = f.ci95 or [v, v]
            kind = _kind(f)
            name = f"{_short(b)} [{b.mode}]" + (f" ({kind})" if key.startswith("energy") else "")
            ax.errorbar([v], [y], xerr=[[v - ci[0]], [ci[1] - v]], fmt=markers.get(kind, "o"), color=colour,
                        capsize=3, label=name)
        ax.set_yticks(ys)
        ax.set_yticklabels([f"r{b.run_id}" for b in blocks])
        ax.invert_yaxis()
        ax.set_xlabel(label + (f" — {', '.join(kinds)}" if key.startswith("energy") else ""))
        ax.set_xlim(left=0)
        ax.legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.0, 0.5), title="run (bar: 95 % CI)",
                  title_fontsize=7)
    fig.suptitle("Cost per correct task")
    return _svg(fig)


def _kind(f: Estimate) -> str:
    """An energy figure's kind (measured / estimated); "time" for a figure in seconds."""
    return str(f.kind) if present(f.kind) else "time"


def error_kinds(doc: Report) -> str | None:
    """Wrong hops by error kind, stacked, per run."""
    counts = doc.report["error_kinds"]
    blocks = doc.runs
    if not any(sum(counts.get(str(b.run_id), {}).values()) for b in blocks):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.5, 0.55 * len(blocks) + 2.5), 3.4))
    xs = list(range(len(blocks)))
    bottom = [0] * len(blocks)
    for kind in ERROR_KINDS:
        vals = [counts.get(str(b.run_id), {}).get(kind, 0) for b in blocks]
        if not any(vals):
            continue
        ax.bar(xs, vals, bottom=bottom, color=_ERROR_COLOURS[kind], label=kind, width=0.7)
        bottom = [a + v for a, v in zip(bottom, vals, strict=True)]
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{_short(b)}\n{b.mode}" for b in blocks], fontsize=7, rotation=45, ha="right")
    ax.set_ylabel("wrong hops")
    ax.legend(fontsize=7, title="error kind", title_fontsize=7)
    ax.set_title("Error kinds by run (local: wrong on its own; propagated: a parent was wrong)")
    return _svg(fig)


def root_causes(doc: Report) -> str | None:
    """Where failure chains start: root-cause counts by hop id, per free-mode run."""
    blocks = [b for b in doc.runs if b.mode == "free" and b.propagation.root_causes.by_hop]
    if not blocks:
        return None
    plt = _plt()
    hops = sorted({h for b in blocks for h in b.propagation.root_causes.by_hop},
                  key=lambda h: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", h)])[:24]
    fig, ax = plt.subplots(figsize=(max(4.8, 0.5 * len(hops) * max(1, len(blocks)) ** 0.5 + 2.5), 3.4))
    width = 0.8 / len(blocks)
    for i, (colour, b) in enumerate((colour_of(doc)(b), b) for b in blocks):
        by = b.propagation.root_causes.by_hop
        ax.bar([j + i * width - 0.4 + width / 2 for j in range(len(hops))], [by.get(h, 0) for h in hops],
               width=width, color=colour, label=f"{_short(b)} ({_label(b)})")
    ax.set_xticks(list(range(len(hops))))
    ax.set_xticklabels(hops, fontsize=7, rotation=45 if len(hops) > 8 else 0)
    ax.set_xlabel("hop where the failure chain started")
    ax.set_ylabel("failed instances")
    ax.legend(fontsize=7, title="run (free mode)", title_fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Root causes by hop")
    return _svg(fig)


def relative_loss_by_depth(doc: Report) -> str | None:
    """The trap picture: relative loss 1 − acc(d)/acc_baseline(d) per run against its baseline,
    with paired bootstrap 95 % bands; the quantization trap is loss growing with depth."""
    panels = _panels(doc, lambda b: not b.is_baseline and bool(b.depth and b.depth.by_depth))
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    for ax, (name, blocks) in zip(axes, panels, strict=True):
        ax.axhline(0, color="#444", lw=0.8, label="no loss (baseline)")
        for colour, b in ((colour_of(doc)(b), b) for b in blocks):
            bd = b.depth.by_depth  # type: ignore[union-attr]
            xs = sorted(int(d) for d in bd if bd[d].relative_loss is not None)
            if not xs:
                continue
            ys = [bd[str(d)].relative_loss for d in xs]
            lo = [(bd[str(d)].ci95 or [y, y])[0] for d, y in zip(xs, ys, strict=True)]
            hi = [(bd[str(d)].ci95 or [y, y])[1] for d, y in zip(xs, ys, strict=True)]
            ax.plot(xs, ys, marker="o", color=colour, lw=1.6,
                    label=f"{_short(b)} vs r{b.baseline_run_id}: {b.verdict_name}")
            ax.fill_between(xs, lo, hi, color=colour, alpha=0.15, lw=0)
        ax.set_title(_wrap(name))
        ax.set_xticks(sorted({int(d) for b in blocks for d in b.depth.by_depth}))  # type: ignore[union-attr]
        ax.set_xlabel("hop depth")
        ax.set_ylabel("relative loss vs baseline")
        ax.legend(fontsize=6.5, loc="best", title="run vs baseline: verdict", title_fontsize=7)
    fig.suptitle("Relative loss by depth (the trap: loss growing with depth)")
    return _svg(fig)


def scale_axis(doc: Report) -> str | None:
    """The scale axis: each low rung's ratio to its model's top rung against parameter count,
    with 95 % intervals, and N* where a ratio crosses its threshold (agentsim.analysis.scale)."""
    sc = doc.scale
    if not sc or not sc.curves:
        return None
    from agentsim.analysis.scale import scale_figure

    return scale_figure(sc)


def fidelity_kld(doc: Report) -> str | None:
    """Fidelity beside accuracy: each run's mean KL(baseline || run) per completion token
    (teacher-forced, log scale, 95 % bootstrap bars over instances; hollow: its noise floor, the
    same rung at batch 1) next to its model-hop accuracy with its 95 % CI. KLD measures drift of
    the token distributions, not task success (docs/statistics.md)."""
    fid = doc.fidelity or {}
    kld = {b.run_id: d.kld_mean for b in doc.runs
           if (f := fid.get(str(b.run_id))) is not None and (d := f.fidelity) is not None and d.kld_mean}
    blocks = [b for b in doc.runs if b.run_id in kld]
    if not blocks:
        return None
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.4, max(2.4, 0.3 * len(blocks) + 1.2)), sharey=True,
                                  gridspec_kw={"width_ratios": [3, 2]})
    ys = list(range(len(blocks)))
    for colour, y, b in ((colour_of(doc)(b), y, b) for y, b in zip(ys, blocks, strict=True)):
        f = fid[str(b.run_id)]
        v = kld[b.run_id]
        ci = (f.fidelity.kld_ci95 if f.fidelity else None) or [v, v]
        ax.errorbar([v], [y], xerr=[[max(v - ci[0], 0)], [max(ci[1] - v, 0)]], fmt="o", color=colour, capsize=3)
        fl = f.own_floor_kld
        if fl:
            ax.plot([fl], [y], "o", mfc="none", color=colour)
        acc = b.single.model_hop_accuracy
        if acc is not None and acc.value is not None:
            a = acc.value
            aci = acc.ci95 or [a, a]
            ax2.errorbar([a], [y], xerr=[[a - aci[0]], [aci[1] - a]], fmt="s", color=colour, capsize=3)
    floors = doc.noise_floors
    if floors:  # the largest measured floor: drift left of it cannot be told from batching
        ax.axvline(floors[0].kld_mean, color="grey", linestyle=":", linewidth=1,
                   label=f"noise floor (run {floors[0].run_id}, batch {floors[0].batch} vs "
                         f"{floors[0].against_batch})")
        ax.legend(fontsize=6, loc="lower right")
    ax.set_xscale("log")
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{_short(b)} [{b.mode}]" for b in blocks], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("mean KLD vs baseline (nats/token, log)")
    ax2.set_xlabel("model-hop accuracy")
    ax2.set_xlim(0, 1)
    fig.suptitle("Fidelity (KLD) beside accuracy")
    return _svg(fig)


#: (id, title, function): the plots of a report, in order
PLOTS: list[tuple[str, str, Callable[[Report], str | None]]] = [
    ("accuracy-by-depth", "Model-hop accuracy by depth", accuracy_by_depth),
    ("task-success-by-depth", "Task success by depth", task_success_by_depth),
    ("relative-loss-by-depth", "Relative loss by depth (the trap picture)", relative_loss_by_depth),
    ("cost-per-correct-task", "Energy and seconds per correct task", cost_per_correct_task),
    ("error-kinds", "Error kinds by run", error_kinds),
    ("root-causes", "Root causes by hop", root_causes),
    ("scale-axis", "The scale axis: ratios to the top rung by model size, and N*", scale_axis),
    ("fidelity-kld", "Fidelity: KLD per rung beside accuracy", fidelity_kld),
]


def render_plots(doc: Report) -> list[dict[str, str]]:
    """``[{"id", "title", "svg", "doc"}]`` for every plot that has data."""
    out = []
    for pid, title, fn in PLOTS:
        svg = fn(doc)
        if svg:
            out.append({"id": pid, "title": title, "svg": svg, "doc": " ".join((fn.__doc__ or "").split())})
    return out


def svg_for_html(svg: str, plot_id: str) -> str:
    """The SVG without its XML prolog and doctype, with ``id="plot-<id>"``, and its inner ids
    (glyphs, markers, clip paths) prefixed by the plot's id, so that several plots inlined in one
    page have no id in common."""
    body = svg[svg.index("<svg"):]
    body = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{plot_id}-{m.group(1)}"', body)
    body = re.sub(r'(xlink:href|href)="#([^"]+)"', lambda m: f'{m.group(1)}="#{plot_id}-{m.group(2)}"', body)
    body = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{plot_id}-{m.group(1)})", body)
    return body.replace("<svg", f'<svg id="plot-{plot_id}" role="img" aria-label="{plot_id}"', 1)
