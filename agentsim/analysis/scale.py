"""The model-scale axis: does a low-precision rung stop costing more per correct task as models grow?

:func:`scale_analysis` takes runs that span model sizes (and batch sizes) and, for every
low-precision rung against its own model's top rung (the rung with the most bits; f16 on the
llama ladder), computes three ratios as a function of the model's parameter count:

- energy per correct task (low / top): above 1 the low rung costs more energy per success
  (the efficiency trap); below 1 it saves;
- seconds per correct task (low / top): the same in wall time;
- task success (low / top): below 1 - tolerance the low rung loses more than the tolerance.

The crossing scale **N*** is where a ratio crosses its threshold (1 for the cost ratios,
1 - tolerance for task success), found by linear interpolation in log(parameters) between the
two measured sizes around the first sign change; it is "not crossed in the measured range" when
no adjacent pair of sizes brackets the threshold.

Intervals: a cluster bootstrap over instances (:mod:`.bootstrap`). Runs of one workload cell
(scenario, params, mode, seed, instance count, batch size) see the same instances at every size
and precision, so one weight matrix per cell is drawn and applied to every run of that cell:
each resample is a consistent what-if for the whole curve, and N* is recomputed in each one.
Its interval is the percentile interval over the resamples that cross; ``crossing_share`` says
how many did (below 0.95 the interval is open on the side the others fall).

Curves pool the cells that every size of the curve has (cells only some sizes have are listed
in ``cells_dropped``: pooling them would confound scale with workload). Sizes come from one
model *family* (catalog ``family``; a model outside the catalog is its own family), since sizes
from different families confound scale with training.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentsim.errors import AgentsimError
from agentsim.store import Store, batch_size_of

from .bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, percentile_ci, weights
from .data import RunData, load_run, top_rung
from .figures import SCALE_FIGURES
from .paired import paired_tables
from .results import ABSENT, NStar, ScaleAnalysis, ScaleCurve, ScalePoint, ScaleRatio

__all__ = ["scale_analysis", "scale_axis", "crossing", "scale_figure", "DEFAULT_TOLERANCE", "METRICS"]

#: the task-success loss (1 - ratio) that counts as an accuracy loss for N*
DEFAULT_TOLERANCE = 0.05
#: the ratios drawn, in order (their definitions: :data:`.figures.SCALE_FIGURES`)
METRICS = ("energy_per_correct_task", "seconds_per_correct_task", "task_success")
assert set(METRICS) == set(SCALE_FIGURES)
SCHEMA_VERSION = 1


@dataclass
class _Pair:
    """One low-rung run and its model's top-rung run, in one cell, aligned instance by instance."""

    cell: str
    low: RunData
    top: RunData
    keys: list[Any]
    num: dict[str, tuple[np.ndarray, np.ndarray]]  # metric -> (low per-instance num, den)
    den: dict[str, tuple[np.ndarray, np.ndarray]]  # metric -> (top per-instance num, den)
    energy_kind: str


def _cell(rd: RunData) -> str:
    r = rd.run
    return json.dumps([r.scenario, r.scenario_fingerprint, r.params, r.mode, r.seed, r.n_instances,
                       batch_size_of(r)], sort_keys=True, default=str)


def _twin_label(family: str) -> Any:
    """The cost-twin label when ``family`` is the catalog's twins (random weights: their per-correct-task
    figures and task success mean nothing; benchmarks/llama_twins.py gives their cost side), else ABSENT."""
    from agentsim.models import CATALOG
    from agentsim.models.catalog import TWIN_LABEL

    return TWIN_LABEL if any(m.twin and m.family == family for m in CATALOG.values()) else ABSENT


def _family(model: str | None) -> str:
    from agentsim.models import CATALOG

    cm = CATALOG.get(model or "")
    return (cm.family if cm and cm.family else None) or (model or "?")




def _columns(t: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per metric, the per-instance numerator and denominator of its figure (where defined)."""
    return {name: c for name, fig in SCALE_FIGURES.items() if (c := fig.columns(t)) is not None}


def _subset(p: _Pair, keys: list[Any]) -> _Pair:
    """``p`` restricted to ``keys`` (instances every size of the cell finished)."""
    if keys == p.keys:
        return p
    idx = np.array([p.keys.index(k) for k in keys], dtype=int)
    pick = lambda cols: {k: (a[idx], b[idx]) for k, (a, b) in cols.items()}  # noqa: E731
    return _Pair(cell=p.cell, low=p.low, top=p.top, keys=list(keys), num=pick(p.num), den=pick(p.den),
                 energy_kind=p.energy_kind)


#: values this close to a threshold count as on it (57/60 is 0.95 to a float's last bit)
_EPS = 1e-9


def _bad(v: float, threshold: float, bad_above: bool) -> bool:
    """On the threshold's costly side: above it for a cost ratio, below it for task success."""
    return v > threshold + _EPS if bad_above else v < threshold - _EPS


def crossing(sizes: list[float], values: list[float | None], threshold: float, *,
             bad_above: bool = True) -> dict[str, Any]:
    """Where ``values`` (one per size, ascending sizes) first crosses ``threshold``, in log(size).

    A crossing is a change between the costly side (``bad_above``: values above the threshold,
    a low rung costing more; otherwise values below it, an accuracy loss beyond the tolerance)
    and the other side (the threshold itself included) between two adjacent sizes; the scale is
    interpolated linearly in log(size). Returns ``{"crossed", "value", "between", "direction"}``;
    sizes with an undefined value are skipped.
    """
    pts = [(n, math.log(n), v) for n, v in zip(sizes, values, strict=True) if v is not None and math.isfinite(v) and n > 0]
    for (n0, x0, v0), (n1, x1, v1) in zip(pts, pts[1:], strict=False):
        if _bad(v0, threshold, bad_above) == _bad(v1, threshold, bad_above):
            continue
        x = x0 if v1 == v0 else x0 + (threshold - v0) * (x1 - x0) / (v1 - v0)
        x = min(max(x, x0), x1)
        return {"crossed": True, "value": math.exp(x), "between": [n0, n1],
                "direction": "falls below" if v1 < v0 else "rises above"}
    return {"crossed": False, "value": None, "between": None, "direction": None}


def _ratio_reps(ws: dict[str, np.ndarray], pairs: list[_Pair], metric: str) -> tuple[float | None, np.ndarray | None]:
    """Pooled (Σ low num / Σ low den) / (Σ top num / Σ top den) over pairs, and its replicates."""
    if any(metric not in p.num for p in pairs):
        return None, None
    sums = np.zeros(4)
    reps = None
    for p in pairs:
        (ln, ld), (tn, td) = p.num[metric], p.den[metric]
        sums += [ln.sum(), ld.sum(), tn.sum(), td.sum()]
        w = ws[p.cell]
        part = np.stack([w @ ln, w @ ld, w @ tn, w @ td], axis=1)
        reps = part if reps is None else reps + part
    assert reps is not None
    point = None
    if sums[1] > 0 and sums[3] > 0 and sums[2] > 0:
        top = sums[2] / sums[3]
        point = (sums[0] / sums[1]) / top
    with np.errstate(divide="ignore", invalid="ignore"):
        low_r = np.where(reps[:, 1] > 0, reps[:, 0] / np.where(reps[:, 1] > 0, reps[:, 1], 1.0), np.nan)
        top_r = np.where((reps[:, 3] > 0) & (reps[:, 2] > 0), reps[:, 2] / np.where(reps[:, 3] > 0, reps[:, 3], 1.0), np.nan)
        r = low_r / top_r
    return point, r


def _figure(point: float | None, reps: np.ndarray | None, run: float | None, base: float | None) -> ScaleRatio:
    if point is None or reps is None:
        return ScaleRatio(value=None, ci95=None, reason="undefined (no correct task or no energy reading on one side)")
    ci = percentile_ci(reps, point)
    return ScaleRatio(value=point, ci95=ci["ci"], run=run, baseline=base, undefined_resamples=ci["undefined"])


def _pooled(pairs: list[_Pair], metric: str, side: str) -> float | None:
    n = sum(float((p.num if side == "low" else p.den)[metric][0].sum()) for p in pairs if metric in p.num)
    d = sum(float((p.num if side == "low" else p.den)[metric][1].sum()) for p in pairs if metric in p.num)
    return n / d if d > 0 else None


def _usable(runs: list[RunData]) -> tuple[list[RunData], list[dict[str, Any]]]:
    """The runs that carry a model size and finished instances, and why each other one is left out."""
    skipped: list[dict[str, Any]] = []
    usable: list[RunData] = []
    for rd in runs:
        r = rd.run
        if rd.is_simulation:
            skipped.append({"run_id": r.id, "reason": "simulation backend (no model size)"})
        elif not r.model_params:
            skipped.append({"run_id": r.id, "reason": "no model_params recorded (run written before model size was stored, "
                                                      "or a backend that does not read it)"})
        elif not rd.by_key:
            skipped.append({"run_id": r.id, "reason": "no finished instance"})
        else:
            usable.append(rd)
    return usable, skipped


_CurveKey = tuple[str, str, str, int]  # (model family, precision, mode, batch size)


def _pairs_by_curve(usable: list[RunData]) -> tuple[dict[_CurveKey, dict[str, list[_Pair]]], dict[str, int],
                                                     dict[str, set[str]]]:
    """Each low rung paired with its model's top rung in the same workload cell, grouped by curve
    and model; with each model's size and its baselines' precisions."""
    by_cell: dict[str, dict[str, list[RunData]]] = {}
    for rd in usable:
        by_cell.setdefault(_cell(rd), {}).setdefault(str(rd.run.model), []).append(rd)
    curves: dict[_CurveKey, dict[str, list[_Pair]]] = {}
    sizes: dict[str, int] = {}
    baselines: dict[str, set[str]] = {}
    for cell, per_model in by_cell.items():
        for model, members in per_model.items():
            top = top_rung(members)
            sizes[model] = int(top.run.model_params or 0)
            baselines.setdefault(model, set()).add(str(top.run.precision))
            seen: set[str] = set()
            for rd in sorted(members, key=lambda x: -x.run.id):  # newest run of each precision
                prec = str(rd.run.precision)
                if rd is top or prec in seen or prec == top.run.precision:
                    continue
                seen.add(prec)
                ta, tb, info = paired_tables(rd, top)
                if not info.instances_paired:
                    continue
                ca, cb = _columns(ta), _columns(tb)
                kind = ta.energy_kind if ta.energy_kind == tb.energy_kind else "mixed"
                if kind == "mixed":
                    ca.pop("energy_per_correct_task", None)
                key = (_family(model), prec, str(rd.run.mode), batch_size_of(rd.run))
                curves.setdefault(key, {}).setdefault(model, []).append(
                    _Pair(cell=cell, low=rd, top=top, keys=ta.keys, num=ca, den=cb, energy_kind=kind))
    return curves, sizes, baselines


def _size_point(model: str, size: int, pairs: list[_Pair], ws: dict[str, np.ndarray],
                reps_by_metric: dict[str, list[np.ndarray | None]],
                point_by_metric: dict[str, list[float | None]]) -> ScalePoint:
    """One size's point of a curve (its ratios with intervals); appends its resamples per metric."""
    entry: dict[str, Any] = {
        "model": model, "params": size, "baseline_precision": pairs[0].top.run.precision,
        "run_ids": sorted(p.low.run.id for p in pairs), "baseline_run_ids": sorted(p.top.run.id for p in pairs),
        "cells": len(pairs), "instances": int(sum(len(p.keys) for p in pairs)),
        "energy_kind": pairs[0].energy_kind if len({p.energy_kind for p in pairs}) == 1 else "mixed",
    }
    for metric in METRICS:
        if metric == "energy_per_correct_task" and (
                entry["energy_kind"] not in ("measured", "estimated")):
            # measured and estimated joules are never summed into one ratio
            entry[f"{metric}_ratio"] = ScaleRatio(value=None, ci95=None, reason=(
                "energy kinds differ between the cells or rungs of this size (measured and estimated "
                "are never pooled)" if entry["energy_kind"] == "mixed" else "no energy reading"))
            reps_by_metric[metric].append(None)
            point_by_metric[metric].append(None)
            continue
        point, reps = _ratio_reps(ws, pairs, metric)
        entry[f"{metric}_ratio"] = _figure(point, reps, _pooled(pairs, metric, "low"), _pooled(pairs, metric, "top"))
        reps_by_metric[metric].append(reps)
        point_by_metric[metric].append(point)
    return ScalePoint(**entry)


def _curve(key: _CurveKey, per_model: dict[str, list[_Pair]], sizes: dict[str, int],
           baselines: dict[str, set[str]], *, tolerance: float, resamples: int, seed: int) -> ScaleCurve | None:
    """One curve (a family's rung, mode and batch size over model sizes) with N*; None when a size
    keeps no cell."""
    family, prec, mode, batch = key
    cell_sets = [{p.cell for p in pairs} for pairs in per_model.values()]
    common = set.intersection(*cell_sets)
    dropped = sorted(set.union(*cell_sets) - common)
    models = sorted(per_model, key=lambda m: sizes[m])
    # one weight matrix per cell (shared by every size and rung of it); instances as paired:
    # every size must see the same instances of a cell, so keep those all of its pairs finished
    ws: dict[str, np.ndarray] = {}
    kept: dict[str, list[_Pair]] = {m: [] for m in models}
    for i, cell in enumerate(sorted(common)):
        cell_pairs = [(m, p) for m in models for p in per_model[m] if p.cell == cell]
        keys = sorted(set.intersection(*(set(p.keys) for _, p in cell_pairs)))
        if not keys:
            dropped.append(cell)
            continue
        for m, p in cell_pairs:
            kept[m].append(_subset(p, keys))
        ws[cell] = weights(len(keys), resamples, seed + i)
    if any(not v for v in kept.values()):
        return None
    reps_by_metric: dict[str, list[np.ndarray | None]] = {k: [] for k in METRICS}
    point_by_metric: dict[str, list[float | None]] = {k: [] for k in METRICS}
    points = [_size_point(m, sizes[m], kept[m], ws, reps_by_metric, point_by_metric) for m in models]
    xs = [float(sizes[m]) for m in models]
    n_star: dict[str, NStar] = {}
    kinds = {p.energy_kind for p in points if p.energy_kind in ("measured", "estimated")}
    for metric in METRICS:
        threshold = 1.0 - tolerance if metric == "task_success" else 1.0
        if metric == "energy_per_correct_task" and len(kinds) > 1:
            n_star[metric] = NStar(threshold=threshold, measured_range=None, crossed=False, value=None,
                                   ci95=None, crossing_share=None,
                                   text="left out: the sizes' energy kinds differ (" + " and ".join(sorted(kinds))
                                        + "); measured and estimated joules are never on one curve")
            continue
        n_star[metric] = _n_star(xs, point_by_metric[metric], reps_by_metric[metric], threshold, resamples,
                                 bad_above=metric != "task_success")
    return ScaleCurve(
        family=family, label=_twin_label(family), precision=prec, mode=mode, batch_size=batch,
        baseline="each model's top rung (most bits): " + ", ".join(f"{m}@{'/'.join(sorted(baselines[m]))}" for m in models),
        sizes=len(models), cells=sorted(common), cells_dropped=dropped, points=points, n_star=n_star,
    )


def scale_analysis(store: Store, run_ids: list[int] | None = None, **kwargs: Any) -> dict[str, Any]:
    """:func:`scale_axis` as JSON."""
    return scale_axis(store, run_ids, **kwargs).to_json()  # type: ignore[no-any-return]


def scale_axis(
    store: Store,
    run_ids: list[int] | None = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> ScaleAnalysis:
    """N* and the ratio curves from stored runs (all runs when ``run_ids`` is None)."""
    if not 0 <= tolerance < 1:
        raise AgentsimError(f"tolerance {tolerance} must be in [0, 1)", hint="e.g. --tolerance 0.05 (5 % task-success loss)")
    runs = [load_run(store, i) for i in run_ids] if run_ids is not None else [load_run(store, r) for r in store.list_runs()]
    usable, skipped = _usable(runs)
    curves, sizes, baselines = _pairs_by_curve(usable)
    out_curves = [c for key, per_model in sorted(curves.items())
                  if (c := _curve(key, per_model, sizes, baselines, tolerance=tolerance, resamples=resamples,
                                  seed=seed)) is not None]
    return ScaleAnalysis(
        schema=SCHEMA_VERSION,
        tolerance=tolerance,
        resamples=resamples,
        seed=seed,
        method=("ratios of pooled sums (low rung / its model's top rung) over instances paired by (index, seed); "
                   "cluster bootstrap over instances with one weight matrix per workload cell shared by every size; "
                "N* by linear interpolation in log(parameters) at the first threshold crossing, recomputed per resample"),
        thresholds={"energy_per_correct_task": 1.0, "seconds_per_correct_task": 1.0, "task_success": 1.0 - tolerance},
        runs=len(runs),
        skipped=skipped,
        curves=out_curves,
    )


def _n_star(xs: list[float], points: list[float | None], reps: list[np.ndarray | None], threshold: float,
            resamples: int, bad_above: bool) -> NStar:
    sizes_known = [x for x, p in zip(xs, points, strict=True) if p is not None]
    base: dict[str, Any] = {"threshold": threshold, "measured_range": [min(sizes_known), max(sizes_known)] if sizes_known else None}
    if len(sizes_known) < 2:
        return NStar(**base, crossed=False, value=None, ci95=None, crossing_share=None,
                     text="needs at least two sizes with a defined ratio")
    c = crossing(xs, points, threshold, bad_above=bad_above)
    stars = []
    for b in range(resamples):
        vals = [None if r is None else float(r[b]) for r in reps]
        cb = crossing(xs, vals, threshold, bad_above=bad_above)
        stars.append(math.log(cb["value"]) if cb["crossed"] else np.nan)
    arr = np.array(stars)
    share = float(np.isfinite(arr).mean()) if arr.size else 0.0
    lo_n, hi_n = base["measured_range"]
    if not c["crossed"]:
        defined = [p for p in points if p is not None]
        if all(_bad(p, threshold, bad_above) for p in defined):
            side = f"{'above' if bad_above else 'below'} {threshold:g} at every size"
        else:
            side = f"{'at or below' if bad_above else 'at or above'} {threshold:g} at every size"
        return NStar(**base, **c, ci95=None, crossing_share=round(share, 4),
                     text=f"not crossed in the measured range ({_fmt_n(lo_n)}-{_fmt_n(hi_n)} parameters; the ratio stays "
                          f"{side}; {share:.0%} of resamples cross)")
    ci = percentile_ci(arr, math.log(c["value"]), max_undefined=1.0)
    interval = [math.exp(ci["ci"][0]), math.exp(ci["ci"][1])] if ci["ci"] else None
    open_note = "" if share >= 0.95 else f"; {1 - share:.0%} of resamples do not cross: the interval is open"
    return NStar(**base, **c, ci95=interval, crossing_share=round(share, 4),
                 text=f"N* ≈ {_fmt_n(c['value'])} parameters (the ratio {c['direction']} {threshold:g} between "
                      f"{_fmt_n(c['between'][0])} and {_fmt_n(c['between'][1])}){open_note}")


def _fmt_n(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def scale_figure(result: ScaleAnalysis) -> str:
    """An SVG (text) of the ratio curves of :func:`scale_analysis`: energy per correct task and task
    success (low rung / top rung) vs parameters, log x axis, 95 % intervals, thresholds and N*."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from agentsim.errors import MissingDependencyError

        raise MissingDependencyError("the scale plot", "report", ["matplotlib"]) from None
    import io

    panels = [("energy_per_correct_task", "energy per correct task\n(low rung / top rung)"),
              ("task_success", "task success\n(low rung / top rung)")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    curves = result.curves
    for ax, (metric, label) in zip(axes, panels, strict=True):
        thr = result.thresholds[metric]
        ax.axhline(thr, color="0.4", lw=1, ls="--")
        for cv in curves:
            pts = [p for p in cv.points if p.ratio(metric).value is not None]
            if not pts:
                continue
            x = [p.params for p in pts]
            y = [p.ratio(metric).value for p in pts]
            lo = [max(0.0, v - (p.ratio(metric).ci95 or [v, v])[0]) for v, p in zip(y, pts, strict=True)]
            hi = [max(0.0, (p.ratio(metric).ci95 or [v, v])[1] - v) for v, p in zip(y, pts, strict=True)]
            name = f"{cv.precision} ({cv.family}, {cv.mode}, batch {cv.batch_size})"
            line = ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=name)
            ns = cv.n_star[metric]
            if ns.crossed and ns.value:
                ax.axvline(ns.value, color=line[0].get_color(), lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("parameters (GGUF)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    if curves:
        axes[0].legend(fontsize=7, loc="best")
    else:
        for ax in axes:
            ax.text(0.5, 0.5, "no runs spanning sizes", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"low-precision rung vs its model's top rung by model scale (dotted: N*; dashed: threshold, "
                 f"tolerance {result.tolerance:g})", fontsize=9)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    return buf.getvalue()
