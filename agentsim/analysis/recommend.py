"""Which precision to deploy: per scenario, the cheapest precision × batch shown non-inferior to the baseline.

Read from ``evaluate()``'s dict (its verdicts were decided at the adjusted level; see
docs/statistics.md, "Recommendation"):

- candidates: the baseline itself and every run whose verdict is "no trap" (non-inferior within the
  margin, ``--max-loss``, and not costlier beyond the cost margin, or its cost not assessed);
  a run with an established loss or trap is never recommended; an inconclusive one is listed with
  the instances that would decide it;
- free mode is what an agent deploys: it is used when the scenario has free runs, else the mode
  there is (named);
- the cost minimised: energy per correct task when every candidate has one of the same kind
  (measured, or estimated), else seconds per correct task (named, with "simulated" for simulation
  backends);
- budgets (optional): seconds per task and joules per task, each candidate's own figure; a
  candidate above a budget is left out, with the reason.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["recommend", "recommendation_lines", "HARMFUL"]

HARMFUL = ("accuracy trap", "accuracy loss", "efficiency trap", "accuracy trap and efficiency trap",
           "accuracy loss and efficiency trap")


def _scenario_key(b: dict[str, Any]) -> str:
    return json.dumps([b.get("scenario_fingerprint") or b.get("scenario"), b.get("params"), b.get("model")],
                      sort_keys=True, default=str)


def _what(b: dict[str, Any]) -> str:
    prec = b.get("precision") or b.get("backend")
    batch = int(b.get("batch_size") or 1)
    return f"run {b['run_id']} {prec}" + (f" batch {batch}" if batch > 1 else "")


def _costs(b: dict[str, Any]) -> dict[str, Any]:
    s = b.get("single") or {}
    e = s.get("energy_per_correct_task_j") or {}
    sec = s.get("seconds_per_correct_task") or {}
    spt = s.get("seconds_per_task") or {}
    ts = (s.get("task_success") or {}).get("value")
    joules = e.get("value")
    return {"energy": joules, "energy_kind": e.get("kind"), "seconds": sec.get("value"),
            "seconds_per_task": spt.get("value"),
            "joules_per_task": None if joules is None or ts is None else joules * ts}


def recommend(doc: dict[str, Any], *, max_seconds_per_task: float | None = None,
              max_joules_per_task: float | None = None) -> list[dict[str, Any]]:
    """One recommendation per scenario (and model) of ``evaluate()``'s runs."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for b in doc["runs"]:
        groups.setdefault(_scenario_key(b), []).append(b)
    margin = doc["settings"]["accuracy_margin"]
    out = []
    for members in groups.values():
        modes = {b["mode"] for b in members}
        mode = "free" if "free" in modes else sorted(modes)[0]
        rows = [b for b in members if b["mode"] == mode]
        bases = [b for b in rows if b.get("is_baseline")]
        ok = bases + [b for b in rows if (b.get("verdict") or {}).get("verdict") == "no trap"]
        pending = [{"run_id": b["run_id"], "what": _what(b), "verdict": "inconclusive",
                    "instances_needed": b["verdict"].get("instances_needed"), "needed_for": b["verdict"].get("needed_for")}
                   for b in rows if (b.get("verdict") or {}).get("verdict") == "inconclusive" and not b.get("is_baseline")]
        excluded = [{"run_id": b["run_id"], "what": _what(b), "reason": b["verdict"]["verdict"]}
                    for b in rows if (b.get("verdict") or {}).get("verdict") in HARMFUL]
        costs = {b["run_id"]: _costs(b) for b in ok}
        kinds = {c["energy_kind"] for c in costs.values()}
        sim = any(b.get("simulation") for b in ok)
        if ok and not sim and all(c["energy"] is not None for c in costs.values()) and len(kinds) == 1 \
                and next(iter(kinds)) in ("measured", "estimated"):
            metric, unit, key = f"energy per correct task ({next(iter(kinds))})", "J", "energy"
        else:
            metric, unit, key = "seconds per correct task" + (" (simulated)" if sim else ""), "s", "seconds"
        within = []
        for b in ok:
            c = costs[b["run_id"]]
            if max_seconds_per_task is not None and (c["seconds_per_task"] is None or c["seconds_per_task"] > max_seconds_per_task):
                excluded.append({"run_id": b["run_id"], "what": _what(b),
                                 "reason": f"over the latency budget ({c['seconds_per_task']} s per task)"})
            elif max_joules_per_task is not None and (c["joules_per_task"] is None or c["joules_per_task"] > max_joules_per_task):
                excluded.append({"run_id": b["run_id"], "what": _what(b),
                                 "reason": f"over the energy budget ({c['joules_per_task']} J per task)"})
            elif c[key] is not None:
                within.append(b)
        best = min(within, key=lambda b: (costs[b["run_id"]][key], b["run_id"])) if within else None
        first = rows[0] if rows else members[0]
        rec: dict[str, Any] = {
            "scenario": first.get("scenario_label") or first.get("scenario"), "model": first.get("model"),
            "mode": mode, "margin": margin, "cost": metric, "unit": unit,
            "baseline_run_ids": [b["run_id"] for b in bases], "recommended": None, "shown": False,
            "pending": pending, "excluded": excluded,
        }
        if best is not None:
            c = costs[best["run_id"]][key]
            shown = not best.get("is_baseline")
            rec.update(recommended={"run_id": best["run_id"], "what": _what(best), "precision": best.get("precision"),
                                    "batch_size": int(best.get("batch_size") or 1), "cost": c},
                       shown=shown)
            if shown:
                rec["evidence"] = best["verdict"]["line"]
                rec["line"] = (f"{rec['scenario']} [{mode}]: deploy {_what(best)} — {metric} {c:.4g} {unit}, the "
                               f"cheapest shown non-inferior (within {100 * margin:.0f} pp of task success) to the baseline")
            else:
                rec["line"] = (f"{rec['scenario']} [{mode}]: none shown yet — keep the baseline {_what(best)} "
                               f"({metric} {c:.4g} {unit})")
        else:
            rec["line"] = f"{rec['scenario']} [{mode}]: none shown yet — no candidate within the budgets"
        if not rec["shown"]:
            asks = [f"{p['what']}: ≈{p['instances_needed']:,} instances would decide {p['needed_for']}"
                    for p in pending if p.get("instances_needed")]
            if not asks and pending:
                asks = ["more instances of the inconclusive runs"]
            if not asks and excluded:
                asks = ["the other rungs are established worse ("
                        + ", ".join(f"{x['what']}: {x['reason']}" for x in excluded) + "); try other precisions or batch sizes"]
            rec["what_would_decide"] = asks or ["runs of lower precisions (or other batch sizes) of this scenario"]
            rec["line"] += "; " + "; ".join(rec["what_would_decide"])
        out.append(rec)
    return out


def recommendation_lines(recs: list[dict[str, Any]]) -> list[str]:
    return [r["line"] for r in recs]
