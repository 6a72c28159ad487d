"""The trap verdict of one precision against its baseline, with its evidence.

Rules (two-sided 95 % intervals; see docs/statistics.md):

- **accuracy trap**: task success or model-hop accuracy lower (the paired interval of the
  difference lies below 0) *and* the loss grows with depth (the interval of
  Δ = RL(deep) − RL(shallow) lies above 0);
- accuracy trap **excluded**: both differences non-inferior (interval's lower bound above
  −``accuracy_margin``, default 0.05), or the loss demonstrably not growing (Δ's interval below 0);
- **efficiency trap**: energy per correct task not lower than the baseline's: the paired ratio's
  lower bound ≥ 1 (and the ratio above 1). The energy ratio is only formed between runs of one
  energy kind (measured or estimated, named in the verdict); without one, seconds per correct
  task stand in (kind ``time``). Simulation backends' seconds and joules are not a model's, so the
  efficiency side is "not assessed" for them unless asked;
- efficiency trap **excluded**: the ratio's upper bound below 1 (cheaper per correct answer);
- **no trap**: both excluded (or the efficiency side not assessed); **inconclusive** otherwise,
  with the instances needed for the observed effects to decide (:mod:`agentsim.analysis.power`).
"""

from __future__ import annotations

import math
from typing import Any

from .power import mcnemar_n, se_scaling_n

__all__ = ["decide", "ACCURACY_MARGIN"]

ACCURACY_MARGIN = 0.05


def _ci(f: dict[str, Any] | None) -> list[float] | None:
    return None if not f else f.get("ci95")


def _accuracy(paired: dict[str, Any], depth: dict[str, Any] | None, n: int, margin: float) -> dict[str, Any]:
    diffs = paired.get("differences", {})
    ts, ha = diffs.get("task_success"), diffs.get("model_hop_accuracy")
    figs = [f for f in (ts, ha) if f and f.get("ci95")]
    inter = (depth or {}).get("interaction")
    ici = _ci(inter)
    out: dict[str, Any] = {"loss": False, "grows_with_depth": False, "trap": False, "excluded": False,
                           "non_inferior": False, "margin": margin, "instances_needed": None}
    if not figs:
        out["reason"] = "no paired accuracy figure"
        return out
    out["loss"] = any(f["ci95"][1] < 0 for f in figs)
    out["grows_with_depth"] = bool(ici and ici[0] > 0)
    out["non_inferior"] = all(f["ci95"][0] > -margin for f in figs)
    not_growing = bool(ici and ici[1] < 0)
    out["trap"] = out["loss"] and out["grows_with_depth"]
    out["excluded"] = (not out["trap"]) and (out["non_inferior"] or not_growing)
    if out["trap"] or out["excluded"]:
        return out
    # instances needed: the cheapest way the observed effects would decide it
    paths: list[int] = []
    loss_n: list[int | None] = []
    if ts and ts["value"] < 0 and ts["ci95"][1] >= 0:
        disc = ts.get("discordant") or {}
        p10, p01 = disc.get("run_only", 0) / n, disc.get("baseline_only", 0) / n
        loss_n.append(mcnemar_n(p10, p01))
    if ha and ha["value"] < 0 and ha["ci95"][1] >= 0:
        loss_n.append(se_scaling_n(n, ha.get("se"), ha["value"]))
    loss_needed = None if out["loss"] else min((x for x in loss_n if x), default=None)
    grow_needed = None
    if inter and inter.get("value") is not None and inter["value"] > 0 and not out["grows_with_depth"]:
        grow_needed = se_scaling_n(n, inter.get("se"), inter["value"])
    if (out["loss"] or loss_needed) and (out["grows_with_depth"] or grow_needed):
        paths.append(max(x for x in (loss_needed, grow_needed, n) if x))
    ni = [se_scaling_n(n, f.get("se"), f["value"], -margin) for f in figs if f["value"] > -margin]
    if len(ni) == len(figs) and all(ni):
        paths.append(max(max(ni), n))  # type: ignore[type-var]
    if inter and inter.get("value") is not None and inter["value"] < 0:
        x = se_scaling_n(n, inter.get("se"), inter["value"])
        if x:
            paths.append(max(x, n))
    out["instances_needed"] = min(paths) if paths else None
    if not paths:
        out["reason"] = "no effect observed that more instances would resolve"
    return out


def _efficiency(paired: dict[str, Any], n: int, simulated: bool, assess_simulated: bool) -> dict[str, Any]:
    ratios = paired.get("ratios", {})
    out: dict[str, Any] = {"assessed": False, "metric": None, "kind": None, "trap": False, "excluded": False,
                           "instances_needed": None}
    if simulated and not assess_simulated:
        out["reason"] = "simulation backend: its seconds and joules are not a model's"
        return out
    energy = ratios.get("energy_per_correct_task_j")
    seconds = ratios.get("seconds_per_correct_task")
    if energy and energy.get("ci95") and energy.get("kind") in ("measured", "estimated"):
        fig, out["metric"], out["kind"] = energy, "energy_per_correct_task_j", energy["kind"]
    elif seconds and seconds.get("ci95"):
        fig, out["metric"], out["kind"] = seconds, "seconds_per_correct_task", "time"
        if energy and energy.get("reason"):
            out["energy_note"] = energy["reason"]
    else:
        out["reason"] = (energy or {}).get("reason") or (seconds or {}).get("reason") or "no cost per correct task"
        return out
    out["assessed"] = True
    lo, hi = fig["ci95"]
    out["trap"] = lo >= 1.0 and hi > 1.0
    out["excluded"] = hi < 1.0
    if not (out["trap"] or out["excluded"]) and fig["value"] and fig["value"] > 0:
        out["instances_needed"] = se_scaling_n(n, fig.get("se_log"), math.log(fig["value"]))
        if out["instances_needed"] is not None:
            out["instances_needed"] = max(out["instances_needed"], n)
        else:
            out["reason"] = "no cost difference observed"
    return out


def _pp(f: dict[str, Any] | None) -> str:
    if not f or f.get("value") is None:
        return "-"
    s = f"{100 * f['value']:+.1f} pp"
    if f.get("ci95"):
        s += f" [{100 * f['ci95'][0]:+.1f}, {100 * f['ci95'][1]:+.1f}]"
    if f.get("p_value") is not None:
        s += f" (p = {f['p_value']:.2g})"
    return s


def _x(f: dict[str, Any] | None) -> str:
    if not f or f.get("value") is None:
        return "-"
    s = f"×{f['value']:.2f}"
    if f.get("ci95"):
        s += f" [{f['ci95'][0]:.2f}, {f['ci95'][1]:.2f}]"
    return s


def _span(ds: list[int]) -> str:
    return f"{ds[0]}–{ds[-1]}" if len(ds) > 1 else str(ds[0])


def decide(paired: dict[str, Any], depth: dict[str, Any] | None, *, n: int, label: str = "run",
           baseline_label: str = "baseline", simulated: bool = False, assess_simulated: bool = False,
           accuracy_margin: float = ACCURACY_MARGIN) -> dict[str, Any]:
    """The verdict and its evidence from a paired block and a depth block (JSON-ready)."""
    if paired.get("identity"):
        return {"verdict": "baseline", "line": f"{label}: the baseline", "accuracy": None, "efficiency": None,
                "instances_needed": None}
    if not paired.get("differences"):
        return {"verdict": "inconclusive", "line": f"{label} vs {baseline_label}: not paired ({paired.get('note', '')})",
                "accuracy": None, "efficiency": None, "instances_needed": None}
    acc = _accuracy(paired, depth, n, accuracy_margin)
    eff = _efficiency(paired, n, simulated, assess_simulated)
    traps = [t for t, hit in (("accuracy", acc["trap"]), ("efficiency", eff["trap"])) if hit]
    if traps:
        verdict = " and ".join(traps) + " trap"
    elif acc["excluded"] and (eff["excluded"] or not eff["assessed"]):
        verdict = "no trap"
    else:
        verdict = "inconclusive"
    needed = None
    if verdict == "inconclusive":
        pending = [d["instances_needed"] for d in (acc, eff) if d.get("assessed", True) and not (d["trap"] or d["excluded"])]
        needed = None if (not pending or any(p is None for p in pending)) else max(pending)
    diffs = paired["differences"]
    parts = [f"task success {_pp(diffs.get('task_success'))}", f"model-hop accuracy {_pp(diffs.get('model_hop_accuracy'))}"]
    if depth and depth.get("interaction"):
        b = depth["buckets"]
        parts.append(f"relative loss {100 * depth['shallow']['value']:.1f}% at depth {_span(b['shallow'])} vs "
                     f"{100 * depth['deep']['value']:.1f}% at {_span(b['deep'])}, Δ {_pp(depth['interaction'])}")
    if eff["assessed"]:
        name = "energy per correct task" if eff["metric"] == "energy_per_correct_task_j" else "seconds per correct task"
        kind = f" ({eff['kind']})" if eff["kind"] != "time" else ""
        parts.append(f"{name}{kind} {_x(paired['ratios'][eff['metric']])}")
    else:
        parts.append(f"efficiency not assessed ({eff.get('reason', '')})")
    head = verdict
    if verdict == "inconclusive":
        head += f" (≈{needed} instances needed)" if needed else " (no effect observed that more instances would decide)"
    if verdict == "no trap" and acc["loss"]:
        head += " (accuracy lower, but the loss does not grow with depth)"
    if eff["trap"]:
        what = "time" if eff["kind"] == "time" else f"{eff['kind']} energy"
        head = head.replace("efficiency trap", f"efficiency trap ({what})")
    line = f"{label} vs {baseline_label}: {head} — " + "; ".join(parts)
    return {"verdict": verdict, "line": line, "accuracy": acc, "efficiency": eff, "instances_needed": needed}
