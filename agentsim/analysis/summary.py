"""Metrics over stored runs: summaries, comparisons against a baseline, accuracy by depth."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from agentsim.store import RunRead, Store

from .bootstrap import wilson, wilson_clustered
from .energy import energy_summary
from .results import DepthAccuracy, Evaluation, Recommendation
from .summary_results import CompareRow, RunSummary

__all__ = ["summarize_run", "energy_summary", "wilson", "compare_runs", "accuracy_by_depth", "fit_reliability", "ratio_ci"]

_SUM_FIELDS = ("prompt_tokens", "completion_tokens", "cached_tokens", "prefill_s", "decode_s", "wall_s")
_HOP_COLUMNS = [
    "run_id", "instance_index", "hop_id", "depth", "kind", "correct", "error_kind", "parents", "parents_ok",
    "prompt_tokens", "completion_tokens", "cached_tokens", "prefill_s", "decode_s", "wall_s",
    "ttft_s", "energy_j", "energy_kind", "energy_source", "energy_resolution_j", "energy_note",
    "energy_below_resolution", "stop_reason",
]


def _sum_or_none(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(sum(vals)) if vals else None


def summarize_run(store: Store, run: RunRead | int, *, hop_count: int | None = None) -> RunSummary:
    """The figures of one run (its JSON is what ``agentsim show --json`` prints)."""
    from .headline import run_status

    if isinstance(run, int):
        run = store.get_run(run)
    rows = store.hop_rows([run.id], _HOP_COLUMNS)
    instances = store.instances(run.id)
    n_hops = len(rows)
    correct = sum(1 for r in rows if r["correct"])
    kinds = Counter(r["error_kind"] for r in rows)
    finished = [i for i in instances if i.finished]
    successes = sum(1 for i in finished if i.success)
    expected = run.n_instances * run.hops_per_instance
    status = run_status(run, n_hops)
    sums = {f: _sum_or_none([r[f] for r in rows]) for f in _SUM_FIELDS}
    llm_rows = [r for r in rows if r["kind"] == "llm"]
    energy = energy_summary(rows, run)
    acc_ci = _clustered_ci(rows, llm_only=False)
    mh_rows = [r for r in rows if r["kind"] != "tool"]
    mh_correct = sum(1 for r in mh_rows if r["correct"])
    mh_ci = _clustered_ci(rows, llm_only=True)
    ts_ci = wilson(successes, len(finished))
    decode_tokens = _sum_or_none([r["completion_tokens"] for r in llm_rows if r["decode_s"]])
    decode_s = _sum_or_none([r["decode_s"] for r in llm_rows if r["completion_tokens"]])
    # the interval clustered by instance (as evaluate() reports): the profile-likelihood interval treats
    # the hops of one instance as independent and covers only 75-87 % when they are correlated
    from .data import instance_table, load_run
    from .reliability import fit_run

    t = instance_table(load_run(store, run))
    rel = fit_run(t.depths, t.depth_correct, t.depth_n, mode=run.mode)
    out: dict[str, Any] = {
        "run_id": run.id,
        "scenario_label": run.scenario_label or run.scenario,
        "scenario": run.scenario,
        "scenario_fingerprint": run.scenario_fingerprint,
        "params": run.params,
        "backend": run.backend,
        "model": run.model,
        "precision": run.precision,
        "precision_mode": run.precision_mode,
        "kernel": run.kernel,
        "source_precision": run.source_precision,
        "model_sha256": run.model_sha256,
        "mode": run.mode,
        "seed": run.seed,
        "launch_id": run.launch_id,
        "status": status,
        "error": run.error,
        "instances": run.n_instances,
        "instances_finished": len(finished),
        "hops_expected": expected,
        "hops_recorded": n_hops,
        "accuracy": correct / n_hops if n_hops else None,
        "accuracy_ci95": list(acc_ci) if acc_ci else None,
        "model_hops": len(mh_rows),
        "model_hop_accuracy": mh_correct / len(mh_rows) if mh_rows else None,
        "model_hop_accuracy_ci95": list(mh_ci) if mh_ci else None,
        "task_success": successes / len(finished) if finished else None,
        "task_success_ci95": list(ts_ci) if ts_ci else None,
        "final_correct": (sum(1 for i in finished if i.final_correct) / len(finished)) if finished else None,
        "error_kinds": {k: kinds.get(k, 0) for k in ("none", "local", "propagated", "recovered", "parse", "truncated",
                                                     "backend")},
        # why generation stopped, over the LLM hops (eos / stop / grammar / length; None: not told)
        "stop_reasons": dict(sorted(Counter(str(r.get("stop_reason")) for r in llm_rows).items())),
        "truncation_rate": (sum(1 for r in llm_rows if r.get("stop_reason") == "length") / len(llm_rows)
                            if llm_rows else None),
        **sums,
        "ttft_s_mean": _mean([r["ttft_s"] for r in llm_rows]),
        "wall_s_per_hop": (sums["wall_s"] / n_hops) if (sums["wall_s"] is not None and n_hops) else None,
        "decode_tokens_per_s": (decode_tokens / decode_s) if (decode_tokens and decode_s) else None,
        "energy": energy,
        "energy_per_correct_task_j": (energy.joules / successes) if (energy.joules is not None and successes) else None,
        "accuracy_by_depth": accuracy_by_depth(rows),
        "model_hop_accuracy_by_depth": accuracy_by_depth(mh_rows),
        "machine": run.machine,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "reliability": rel.headline(),
    }
    return RunSummary(**out)


def _clustered_ci(rows: list[dict[str, Any]], *, llm_only: bool) -> tuple[float, float] | None:
    """Wilson interval of hop accuracy with the hops of one instance as a cluster."""
    import numpy as np

    per: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        if llm_only and r["kind"] == "tool":
            continue
        per[int(r["instance_index"])][0] += int(bool(r["correct"]))
        per[int(r["instance_index"])][1] += 1
    if not per:
        return None
    arr = np.array(list(per.values()), dtype=float)
    f = wilson_clustered(arr[:, 0], arr[:, 1])
    return None if f is None else (f["ci95"][0], f["ci95"][1])


def _mean(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def accuracy_by_depth(rows: list[dict[str, Any]]) -> dict[str, DepthAccuracy]:
    """Hops right by depth (keyed by the depth as a string, shallowest first), without an interval."""
    acc: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        acc[int(r["depth"])][0] += int(bool(r["correct"]))
        acc[int(r["depth"])][1] += 1
    return {str(d): DepthAccuracy(correct=c, n=n, accuracy=c / n) for d, (c, n) in sorted(acc.items())}


def _counts(v: DepthAccuracy | Mapping[str, Any]) -> tuple[int, int]:
    return (v.correct, v.n) if isinstance(v, DepthAccuracy) else (v["correct"], v["n"])


def fit_reliability(by_depth: Mapping[str, DepthAccuracy | Mapping[str, Any]], rows: list[dict[str, Any]] | None = None,
                    instances: list[Any] | None = None, *, mode: str = "free") -> dict[str, Any]:
    """Per-hop reliability r of accuracy(depth) = r^depth, by maximum likelihood on the binomial
    counts (zeros included), with its profile-likelihood interval, and the hops until accuracy
    halves. ``by_depth``: :func:`accuracy_by_depth`'s, or its JSON (``{"1": {"correct": c, "n": n}}``).
    ``r`` is None in oracle mode (accuracy does not compound there). The cluster-bootstrap
    interval of :func:`agentsim.analysis.reliability.fit_run` is what ``evaluate()`` reports.
    """
    from .reliability import fit_depth_counts

    if mode != "free":
        return {"r": None, "half_life_hops": None, "ci95": None,
                "reason": "oracle mode: accuracy does not compound with depth, r has no meaning"}
    pts = [(int(d), c, n) for d, v in by_depth.items() for c, n in (_counts(v),) if int(d) > 0 and n]
    if not pts:
        return {"r": None, "half_life_hops": None, "ci95": None, "reason": "no hops"}
    fit = fit_depth_counts([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts])
    return {"r": fit["r"], "ci95": fit["ci95"], "half_life_hops": fit["half_life_hops"],
            "half_life_ci95": fit["half_life_ci95"], "method": fit["method"]}


def compare_runs(store: Store, run_ids: list[int], baseline: int | str | None = None) -> list[CompareRow]:
    """Summaries of several runs with *paired* figures against each run's baseline.

    The baseline is chosen as in :func:`agentsim.analysis.trap.evaluate` (default: the top rung of
    the same model, scenario, params and mode). Each summary gains ``baseline_run_id``,
    ``relative`` / ``relative_ci95`` (paired-bootstrap ratios to the baseline: ``accuracy`` (all
    hops, as the ``accuracy`` key), ``model_hop_accuracy``, ``task_success``, ``wall_s_per_hop``,
    ``decode_tokens_per_s``, ``energy_per_correct_task_j`` (same energy kind only)), ``paired``,
    ``depth`` and ``verdict`` (the blocks of ``evaluate()``).
    """
    return compare_and_recommend(store, run_ids, baseline)[0]


def compare_and_recommend(store: Store, run_ids: list[int], baseline: int | str | None = None
                          ) -> tuple[list[CompareRow], list[Recommendation], Evaluation | None]:
    """:func:`compare_runs`' rows, the recommendations (:mod:`.recommend`) and the
    evaluation they come from (its verdicts and multiplicity line; None for no run)."""
    from agentsim.fidelity import run_figures

    from .recommend import recommend
    from .trap import analyse

    if not run_ids:
        return [], [], None
    ev = analyse(store, run_ids, baseline)
    names = {"accuracy": "all_hop_accuracy", "model_hop_accuracy": "model_hop_accuracy", "task_success": "task_success",
             "wall_s_per_hop": "seconds_per_hop", "decode_tokens_per_s": "tokens_per_s",
             "energy_per_correct_task_j": "energy_per_correct_task_j", "seconds_per_correct_task": "seconds_per_correct_task"}
    out = []
    for rid in dict.fromkeys(int(i) for i in run_ids):
        s = summarize_run(store, rid)
        b = ev.run(rid)
        assert b is not None
        ratios = {k: b.paired.ratio(v) if b.paired else None for k, v in names.items()}
        out.append(CompareRow(
            **{f.name: getattr(s, f.name) for f in dataclasses.fields(RunSummary) if f.name != "fidelity"},
            baseline_run_id=b.baseline_run_id,
            relative={k: f.value if f else None for k, f in ratios.items()},
            relative_ci95={k: f.ci95 if f else None for k, f in ratios.items()},
            paired=b.paired, depth=b.depth, verdict=b.verdict,
            # flips against the baseline, beside accuracy; fidelity and noise floor where stored
            fidelity=run_figures(store, rid, b.baseline_run_id) if b.baseline_run_id is not None else None))
    return out, recommend(ev), ev


def ratio_ci(p1: float | None, n1: int, p0: float | None, n0: int, z: float = 1.96) -> list[float] | None:
    """95% interval of the ratio p1/p0 of two *independent* proportions (Katz et al. 1978, log method).

    When any of the four cells (successes or failures on either side) is 0, 0.5 is added to every
    cell (x + 0.5 of n + 1), so 100 % vs 100 % is not certainty; the interval is then extended to
    contain the observed ratio (0 when p1 = 0). None when either side has no observations or the
    baseline is 0. Paired runs use :mod:`agentsim.analysis.paired` instead.
    """
    if p1 is None or p0 is None or not n1 or not n0 or p0 == 0:
        return None
    x1, x0 = p1 * n1, p0 * n0
    point = p1 / p0
    if min(x1, x0, n1 - x1, n0 - x0) <= 0:
        x1, n1, x0, n0 = x1 + 0.5, n1 + 1, x0 + 0.5, n0 + 1
    r = (x1 / n1) / (x0 / n0)
    se = math.sqrt(max(0.0, 1 / x1 - 1 / n1 + 1 / x0 - 1 / n0))
    return [min(point, r * math.exp(-z * se)), max(point, r * math.exp(z * se))]


def _ratio(a: Any, b: Any) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b
