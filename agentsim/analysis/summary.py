"""Metrics over stored runs: summaries, comparisons against a baseline, accuracy by depth."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from agentsim.store import RunRead, Store

__all__ = ["summarize_run", "energy_summary", "wilson", "compare_runs", "accuracy_by_depth", "fit_reliability"]

_SUM_FIELDS = ("prompt_tokens", "completion_tokens", "cached_tokens", "prefill_s", "decode_s", "wall_s")
_HOP_COLUMNS = [
    "run_id", "instance_index", "hop_id", "depth", "kind", "correct", "error_kind",
    "prompt_tokens", "completion_tokens", "cached_tokens", "prefill_s", "decode_s", "wall_s",
    "ttft_s", "energy_j", "energy_kind", "energy_source", "energy_resolution_j", "energy_note",
    "energy_below_resolution",
]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval for a proportion (None when n == 0)."""
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _sum_or_none(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(sum(vals)) if vals else None


def _metered(row: dict[str, Any]) -> bool:
    """Whether a meter was asked about this hop (tool hops and hops that failed before the
    backend was called were not metered: they say nothing about the run's kind of energy)."""
    return (row.get("energy_kind") or "unavailable") != "unavailable" or bool(
        row.get("energy_source") or row.get("energy_note")
    )


def energy_summary(rows: list[dict[str, Any]], run: RunRead | None = None) -> dict[str, Any]:
    """Energy totals that never add measured and estimated joules together.

    ``joules``/``kind``/``source`` describe the run when every metered hop has one kind;
    otherwise ``kind`` is ``mixed`` and ``joules`` is None (the per-kind totals are in
    ``by_kind``). ``run_counter`` is the meter read once around the whole run, so the sum of the
    hop figures can be checked against it (``hop_share_of_run``: hops cover only the backend
    calls, the run also covers prompt rendering, judging and the database).
    """
    metered = [r for r in rows if _metered(r)]
    per_kind: dict[str, float] = {}
    sources: dict[str, set[str]] = defaultdict(set)
    kinds = Counter(r["energy_kind"] or "unavailable" for r in metered)
    below = Counter((r["energy_kind"] or "unavailable") for r in metered if r.get("energy_below_resolution"))
    resolution: dict[str, float] = {}
    for r in metered:
        k = r["energy_kind"] or "unavailable"
        if r["energy_source"]:
            sources[k].add(r["energy_source"])
        if k != "unavailable" and r["energy_j"] is not None:
            per_kind[k] = per_kind.get(k, 0.0) + float(r["energy_j"])
            if r.get("energy_resolution_j") is not None:
                resolution[k] = resolution.get(k, 0.0) + float(r["energy_resolution_j"])
    present = sorted(kinds)
    if not present or present == ["unavailable"]:
        kind, joules, source = "unavailable", None, None
    elif len(present) == 1:
        kind = present[0]
        joules = per_kind.get(kind)
        source = ",".join(sorted(sources[kind])) or None
    else:
        kind, joules = "mixed", None
        source = ",".join(sorted({s for v in sources.values() for s in v})) or None
    out: dict[str, Any] = {
        "joules": joules,
        "kind": kind,
        "source": source,
        "by_kind": {
            k: {"joules": per_kind.get(k), "hops": kinds[k], "source": ",".join(sorted(sources[k])) or None,
                "hops_below_resolution": below.get(k, 0), "resolution_j": resolution.get(k)}
            for k in present
        },
        "hops_metered": len(metered),
        "hops_not_metered": len(rows) - len(metered),
        "hops_below_resolution": sum(below.values()),
    }
    if run is not None:
        counter = {
            "joules": run.run_energy_j,
            "kind": run.run_energy_kind or "unavailable",
            "source": run.run_energy_source,
            "resolution_j": getattr(run, "run_energy_resolution_j", None),
            "note": getattr(run, "run_energy_note", None),
            "hops_covered": getattr(run, "run_energy_hops", None),
        }
        out["run_counter"] = counter
        # comparable only when the run-level reading spans every hop (not after a resume)
        same = kind == counter["kind"] and kind in ("measured", "estimated") and (
            counter["hops_covered"] is None or counter["hops_covered"] == len(rows))
        out["hop_share_of_run"] = (
            joules / counter["joules"] if same and joules is not None and counter["joules"] else None
        )
    return out


def summarize_run(store: Store, run: RunRead | int, *, hop_count: int | None = None) -> dict[str, Any]:
    """The figures of one run (what ``agentsim show --json`` prints)."""
    from agentsim.store import effective_status

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
    status = effective_status(run)
    if status == "complete" and n_hops < expected:
        status = "incomplete"
    sums = {f: _sum_or_none([r[f] for r in rows]) for f in _SUM_FIELDS}
    llm_rows = [r for r in rows if r["kind"] == "llm"]
    energy = energy_summary(rows, run)
    acc_ci = wilson(correct, n_hops)
    ts_ci = wilson(successes, len(finished))
    decode_tokens = _sum_or_none([r["completion_tokens"] for r in llm_rows if r["decode_s"]])
    decode_s = _sum_or_none([r["decode_s"] for r in llm_rows if r["completion_tokens"]])
    out: dict[str, Any] = {
        "run_id": run.id,
        "scenario": run.scenario,
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
        "task_success": successes / len(finished) if finished else None,
        "task_success_ci95": list(ts_ci) if ts_ci else None,
        "final_correct": (sum(1 for i in finished if i.final_correct) / len(finished)) if finished else None,
        "error_kinds": {k: kinds.get(k, 0) for k in ("none", "local", "propagated", "recovered", "parse", "backend")},
        **sums,
        "ttft_s_mean": _mean([r["ttft_s"] for r in llm_rows]),
        "wall_s_per_hop": (sums["wall_s"] / n_hops) if (sums["wall_s"] is not None and n_hops) else None,
        "decode_tokens_per_s": (decode_tokens / decode_s) if (decode_tokens and decode_s) else None,
        "energy": energy,
        "energy_per_correct_task_j": (energy["joules"] / successes) if (energy["joules"] is not None and successes) else None,
        "accuracy_by_depth": accuracy_by_depth(rows),
        "machine": run.machine,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
    out["reliability"] = fit_reliability(out["accuracy_by_depth"], rows, instances)
    return out


def _mean(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def accuracy_by_depth(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    acc: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        acc[int(r["depth"])][0] += int(bool(r["correct"]))
        acc[int(r["depth"])][1] += 1
    return {str(d): {"correct": c, "n": n, "accuracy": c / n} for d, (c, n) in sorted(acc.items())}


def fit_reliability(by_depth: dict[str, dict[str, Any]], rows: list[dict[str, Any]], instances: list[Any]) -> dict[str, Any]:
    """Fit accuracy(depth) ≈ r^depth (least squares on logs, weighted by n).

    Returns the per-hop reliability ``r`` and the number of hops until accuracy halves.
    """
    num = den = 0.0
    for d, v in by_depth.items():
        depth = int(d)
        if v["accuracy"] <= 0 or depth <= 0:
            continue
        num += v["n"] * depth * math.log(v["accuracy"])
        den += v["n"] * depth * depth
    if den == 0:
        return {"r": None, "half_life_hops": None}
    r = math.exp(num / den)
    half = (math.log(0.5) / math.log(r)) if 0 < r < 1 else None
    return {"r": r, "half_life_hops": half}


def compare_runs(store: Store, run_ids: list[int], baseline: int | None = None) -> list[dict[str, Any]]:
    """Summaries of several runs with ratios against a baseline run (the first by default)."""
    summaries = [summarize_run(store, rid) for rid in run_ids]
    if not summaries:
        return []
    base = next((s for s in summaries if s["run_id"] == baseline), summaries[0])
    for s in summaries:
        s["baseline_run_id"] = base["run_id"]
        s["relative"] = {
            k: _ratio(s[k], base[k])
            for k in ("accuracy", "task_success", "wall_s_per_hop", "decode_tokens_per_s", "energy_per_correct_task_j")
        }
        s["relative_ci95"] = {
            "accuracy": ratio_ci(s["accuracy"], s["hops_recorded"], base["accuracy"], base["hops_recorded"]),
            "task_success": ratio_ci(s["task_success"], s["instances_finished"],
                                     base["task_success"], base["instances_finished"]),
        }
    return summaries


def ratio_ci(p1: float | None, n1: int, p0: float | None, n0: int, z: float = 1.96) -> list[float] | None:
    """95% interval of the ratio of two proportions p1/p0 (Katz log method, 0.5 added to
    zero counts). None when either side has no observations or the baseline is 0."""
    if p1 is None or p0 is None or not n1 or not n0 or p0 == 0:
        return None
    x1, x0 = p1 * n1, p0 * n0
    if x1 == 0:
        x1, n1 = 0.5, n1 + 0.5
    if x0 == 0:
        x0, n0 = 0.5, n0 + 0.5
    r = (x1 / n1) / (x0 / n0)
    se = math.sqrt(max(0.0, 1 / x1 - 1 / n1 + 1 / x0 - 1 / n0))
    return [r * math.exp(-z * se), r * math.exp(z * se)]


def _ratio(a: Any, b: Any) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b
