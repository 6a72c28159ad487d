"""Paired comparison of a run with its baseline, instance by instance and hop by hop.

Every precision sees the same instances (same scenario, params, seed), so the difference between
two runs is estimated from the per-instance differences: far less noisy than two independent
samples when the runs are correlated (they are: a hard instance is hard at every precision).

- p-values: McNemar's exact test on task success (McNemar 1947; the exact binomial form on the
  discordant instances), and for model hops the clustered McNemar statistic of Durkalski et al.
  (2003), which keeps the hops of one instance together;
- intervals: a seeded paired bootstrap over instances (one set of weights for both runs) for the
  differences and ratios of model-hop accuracy and task success, and for the cost ratios
  (energy per correct task, seconds per correct task / hop / task, tokens per second); where a
  verdict shows one, it is replaced by the interval of :mod:`.intervals` (Tango's score interval
  for accuracy differences, the delta method for cost ratios), which covers 93-97 % at 30-100
  instances where the percentile bootstrap covered 0.92-0.935;
- the baseline against itself is exactly 0 / [0, 0] and 1 / [1, 1] (``identity: true``);
- two *different* runs with no discordance at all are not certainty: the interval becomes the
  zero-discordance bound (Wilson upper bound for 0 of n instances), ``method`` says so.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import stats

from .bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    percentile_ci,
    weights,
    zero_discordance_bound,
)
from .data import InstanceTable, RunData, common_units, instance_table
from .figures import FIGURES
from .intervals import ratio_ci_delta, tango_ci, tango_ci_clustered
from .results import (
    ABSENT,
    Discordant,
    IdentityDifference,
    PairedComparison,
    PairedEstimate,
    Pairing,
)

__all__ = [
    "mcnemar_exact", "clustered_mcnemar", "paired_tables", "compare_pair", "compare_tables", "estimate",
    "ACCURACY_FIGURES", "COST_FIGURES",
]

#: the accuracy figures compared as differences (a - baseline) and ratios (a / baseline)
ACCURACY_FIGURES = ("model_hop_accuracy", "task_success", "all_hop_accuracy")
#: the cost figures compared as ratios (a / baseline); above 1 = costs more than the baseline
COST_FIGURES = ("energy_per_correct_task_j", "seconds_per_correct_task", "seconds_per_hop",
                "seconds_per_task", "tokens_per_s")


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b, c = the two kinds of discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * stats.binom.cdf(min(b, c), n, 0.5)))


def clustered_mcnemar(b_k: np.ndarray, c_k: np.ndarray) -> float:
    """Durkalski et al. (2003) clustered McNemar: X² = (Σ(b_k − c_k))² / Σ(b_k − c_k)², 1 df.

    ``b_k``, ``c_k``: per instance, the hops right in one run only / in the other run only.
    """
    d = np.asarray(b_k, dtype=float) - np.asarray(c_k, dtype=float)
    den = float(np.sum(d * d))
    if den == 0:
        return 1.0
    x2 = float(np.sum(d)) ** 2 / den
    return float(stats.chi2.sf(x2, 1))


def estimate(point: float | None, reps: np.ndarray, *, method: str, guard: tuple[float, float] | None = None,
             **extra: Any) -> PairedEstimate:
    """A figure with its bootstrap interval; ``guard`` replaces a no-spread interval."""
    ci = percentile_ci(reps, point)
    ci95, how = ci["ci"], method
    if ci["ci"] is not None and not ci["spread"] and guard is not None:
        ci95 = [min(guard[0], point), max(guard[1], point)]  # type: ignore[type-var]
        how = "zero-discordance bound (no instance differs; Wilson upper bound for 0 of n)"
    return PairedEstimate(value=point, ci95=ci95, se=ci["se"], method=how,
                          undefined_resamples=ci["undefined"] or ABSENT,
                          extended_to_point=ci["extended_to_point"] or ABSENT, **extra)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _point(t: InstanceTable, name: str) -> float | None:
    """One run's figure from its table (None when undefined): :data:`.figures.FIGURES`."""
    return FIGURES[name].point(t)


def _reps(w: np.ndarray, t: InstanceTable, name: str) -> np.ndarray:
    return FIGURES[name].reps(w, t)


def single_figures(t: InstanceTable, *, resamples: int = DEFAULT_RESAMPLES,
                   seed: int = DEFAULT_SEED) -> dict[str, PairedEstimate | None]:
    """One run's cost figures with cluster-bootstrap intervals (accuracy uses Wilson, see summary)."""
    w = weights(t.m, resamples, seed)
    out: dict[str, PairedEstimate | None] = {}
    for name in COST_FIGURES:
        p = _point(t, name)
        kind = t.energy_kind if name == "energy_per_correct_task_j" else ABSENT
        out[name] = None if p is None else estimate(
            p, _reps(w, t, name), method="cluster bootstrap over instances (percentile)", kind=kind)
    return out


def paired_tables(a: RunData, b: RunData) -> tuple[InstanceTable, InstanceTable, Pairing]:
    """Aligned per-instance tables of two runs (only instances and hops both have)."""
    keys, hop_ids = common_units(a, b)
    pairs = set(a.hops) & set(b.hops)
    depths = sorted({int(r["depth"]) for (k, h), r in a.hops.items() if (k, h) in pairs and r["kind"] != "tool"})
    ta = instance_table(a, keys, hop_pairs=pairs, depths=depths)
    tb = instance_table(b, keys, hop_pairs=pairs, depths=depths)
    info = Pairing(
        paired=bool(keys),
        instances_paired=len(keys),
        hops_paired=int(ta.hops_n.sum()),
        model_hops_paired=int(ta.mh_n.sum()),
        instances_only_in_run=len(set(a.by_key) - set(keys)),
        instances_only_in_baseline=len(set(b.by_key) - set(keys)),
        hop_ids_differ=hop_ids is not None,
    )
    return ta, tb, info


def _identity(t: InstanceTable) -> PairedComparison:
    how = "identity (the baseline itself)"
    diffs: dict[str, PairedEstimate | None] = {}
    ratios: dict[str, PairedEstimate | None] = {}
    for name in ACCURACY_FIGURES:
        p = _point(t, name)
        diffs[name] = IdentityDifference(value=0.0, ci95=[0.0, 0.0], p_value=1.0, method=how, run=p, baseline=p)
    for name in (*ACCURACY_FIGURES, *COST_FIGURES):
        p = _point(t, name)
        kind = t.energy_kind if name == "energy_per_correct_task_j" else ABSENT
        ratios[name] = None if not p else PairedEstimate(value=1.0, ci95=[1.0, 1.0], method=how, run=p, baseline=p,
                                                         kind=kind)
    return PairedComparison(identity=True, differences=diffs, ratios=ratios)


def compare_pair(a: RunData, b: RunData, *, resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED) -> tuple[PairedComparison, dict[str, Any]]:
    """Paired figures of run ``a`` against baseline ``b`` (only instances and hops both have).

    Returns ``(comparison, context)``; its JSON: docs/statistics.md, "paired"; ``context`` holds the
    aligned tables and weights for the depth analysis and the verdict.
    """
    ta, tb, info = paired_tables(a, b)
    block, ctx = compare_tables(ta, tb, identity=a.run.id == b.run.id, resamples=resamples, seed=seed,
                                simulated=a.is_simulation or b.is_simulation)
    return dataclasses.replace(block, pairing=info), ctx


_PAIRED = "paired bootstrap over instances (percentile)"


def _score_interval(fig: PairedEstimate, name: str, ta: InstanceTable, tb: InstanceTable) -> PairedEstimate:
    """The interval a verdict shows for an accuracy difference (docs/statistics.md, "Intervals"):
    Tango's score interval for task success, its clustered form for hop accuracies. The bootstrap
    SE stays beside it."""
    if name == "task_success":
        ci = tango_ci(fig.discordant.run_only, fig.discordant.baseline_only, ta.m)
        method = "Tango score interval (paired instances; Tango 1998)"
    else:
        ca, cb, n = (ta.mh_correct, tb.mh_correct, ta.mh_n) if name == "model_hop_accuracy" \
            else (ta.all_correct, tb.all_correct, ta.hops_n)
        cl = tango_ci_clustered(ca, cb, n)
        ci = None if cl is None else cl["ci"]
        method = "Tango score interval, hops clustered in instances (design effect)"
    if ci is None:
        return fig
    return dataclasses.replace(fig, ci95=[float(ci[0]), float(ci[1])], method=method, extended_to_point=ABSENT)


def _delta_ratio(fig: PairedEstimate, ta: InstanceTable, tb: InstanceTable, name: str) -> PairedEstimate:
    """A cost ratio's interval: log ratio ± t·(linearised SE, clustered by instance) (``intervals``);
    the percentile interval stays where the ratio has no spread. ``se_log`` is that same SE, so the
    one-sided cost tests (t with m - 1 df, ``inference.log_ratio_tests``) decide what the interval shows."""
    if fig.ci95 is None or fig.value is None:
        return fig
    ca, cb = FIGURES[name].columns(ta), FIGURES[name].columns(tb)
    if ca is None or cb is None:
        return fig
    dl = ratio_ci_delta(ca[0], ca[1], cb[0], cb[1])
    if dl["ci"] is None:
        return fig
    return dataclasses.replace(fig, ci95=[min(dl["ci"][0], fig.value), max(dl["ci"][1], fig.value)],
                               method="delta method on the log ratio, clustered by instance (t, m - 1 df)",
                               extended_to_point=ABSENT, se_log=float(dl["se_log"]))


def _accuracy(ta: InstanceTable, tb: InstanceTable, name: str, w: np.ndarray, wab: tuple[np.ndarray, np.ndarray],
              u: float) -> tuple[PairedEstimate | None, PairedEstimate | None]:
    """The paired difference and ratio of one accuracy figure (None where undefined on a side)."""
    pa, pb = _point(ta, name), _point(tb, name)
    if pa is None or pb is None:
        return None, None
    ra, rb = _reps(w, ta, name), _reps(w, tb, name)
    d = pa - pb
    # independent resampling of each run, only to show what pairing buys
    unpaired = percentile_ci(_reps(wab[0], ta, name) - _reps(wab[1], tb, name), d)["ci"]
    test: dict[str, Any]
    if name == "task_success":
        bb = int(np.sum((ta.success == 1) & (tb.success == 0)))
        cc = int(np.sum((ta.success == 0) & (tb.success == 1)))
        test = {"p_value": mcnemar_exact(bb, cc), "test": "McNemar exact (instances)",
                "discordant": Discordant(run_only=bb, baseline_only=cc)}
    else:
        ca, cb = (ta.mh_correct, tb.mh_correct) if name == "model_hop_accuracy" else (ta.all_correct, tb.all_correct)
        right_a = ca - np.minimum(ca, cb)
        right_b = cb - np.minimum(ca, cb)
        test = {"p_value": clustered_mcnemar(right_a, right_b),
                "test": "clustered McNemar (Durkalski 2003), hops within instances"}
    diff = _score_interval(estimate(d, ra - rb, method=_PAIRED, guard=(max(-1.0, d - u), min(1.0, d + u)), run=pa,
                                    baseline=pb, unpaired_ci95=unpaired, **test), name, ta, tb)
    if pb <= 0:
        return diff, None
    with np.errstate(divide="ignore", invalid="ignore"):
        rr = np.where(rb > 0, ra / np.where(rb > 0, rb, 1.0), np.nan)
    return diff, estimate(pa / pb, rr, method=_PAIRED, guard=(max(0.0, pa - u) / pb, min(1.0, pa + u) / pb),
                          run=pa, baseline=pb)


def _cost(ta: InstanceTable, tb: InstanceTable, name: str, w: np.ndarray, simulated: bool) -> PairedEstimate:
    """The paired ratio of one cost figure, or why it cannot be formed."""
    pa, pb = _point(ta, name), _point(tb, name)
    reason = None
    if name == "energy_per_correct_task_j" and ta.energy_kind != tb.energy_kind:
        reason = f"energy kinds differ ({ta.energy_kind} vs {tb.energy_kind}): not comparable"
    elif pa is None or pb is None or pb == 0:
        lacking = [(side, t) for side, t, p in (("run", ta, pa), ("baseline", tb, pb)) if p is None or p == 0]
        reason = "undefined (" + "; ".join(
            f"the {side} has {', '.join(FIGURES[name].lacking(t))}" for side, t in lacking) + ")"
    if reason:
        return PairedEstimate(value=None, ci95=None, reason=reason)
    with np.errstate(divide="ignore", invalid="ignore"):
        rr = _reps(w, ta, name) / _reps(w, tb, name)
    fig = _delta_ratio(estimate(pa / pb, rr, method=_PAIRED, run=pa, baseline=pb), ta, tb, name)  # type: ignore[operator]
    se_log = fig.se_log
    if se_log is ABSENT and fig.ci95 is not None and fig.se:  # no delta interval: the bootstrap's spread
        fin = rr[np.isfinite(rr) & (rr > 0)]
        se_log = float(np.std(np.log(fin), ddof=1)) if fin.size > 1 else None
    return dataclasses.replace(fig, se_log=se_log, kind=ta.energy_kind if name == "energy_per_correct_task_j" else ABSENT,
                               simulated=True if simulated else ABSENT)


def compare_tables(ta: InstanceTable, tb: InstanceTable, *, identity: bool = False,
                   resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                   simulated: bool = False) -> tuple[PairedComparison, dict[str, Any]]:
    """Paired figures from two aligned per-instance tables (row i = the same instance in both)."""
    if ta.m != tb.m:
        raise ValueError("paired tables must have the same instances")
    m = ta.m
    w = weights(m, resamples, seed)
    ctx = {"ta": ta, "tb": tb, "w": w, "m": m, "identity": identity}
    if identity:
        return _identity(ta), ctx
    if m == 0:
        return PairedComparison(identity=False, differences={}, ratios={}, note=(
            "no instance in common: the runs cannot be paired (different scenario, params or seed)")), ctx
    u = zero_discordance_bound(m)
    diffs: dict[str, PairedEstimate | None] = {}
    ratios: dict[str, PairedEstimate | None] = {}
    wab = (weights(m, resamples, seed + 1), weights(m, resamples, seed + 2))
    for name in ACCURACY_FIGURES:
        diffs[name], ratios[name] = _accuracy(ta, tb, name, w, wab, u)
    for name in COST_FIGURES:
        ratios[name] = _cost(ta, tb, name, w, simulated)
    return PairedComparison(identity=False, differences=diffs, ratios=ratios, zero_discordance_bound=u), ctx
