"""Which precision to deploy: per scenario, the cheapest precision × batch shown non-inferior to the baseline.

Read from :func:`.trap.analyse`'s :class:`.results.Evaluation` (its verdicts were decided at the adjusted level; see
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

from .results import ABSENT, Candidate, Evaluation, Recommendation, RunEvaluation

__all__ = ["recommend", "recommendation_lines", "HARMFUL"]

HARMFUL = ("accuracy trap", "accuracy loss", "efficiency trap", "accuracy trap and efficiency trap",
           "accuracy loss and efficiency trap")


def _scenario_key(b: RunEvaluation) -> str:
    return json.dumps([b.scenario_fingerprint or b.scenario, b.params, b.model], sort_keys=True, default=str)


def _what(b: RunEvaluation) -> str:
    prec = b.precision or b.backend
    return f"run {b.run_id} {prec}" + (f" batch {b.batch_size}" if b.batch_size > 1 else "")


def _costs(b: RunEvaluation) -> dict[str, Any]:
    s = b.single
    e, sec, spt = s.cost("energy_per_correct_task_j"), s.cost("seconds_per_correct_task"), s.cost("seconds_per_task")
    ts = s.task_success.value if s.task_success else None
    joules = e.value if e else None
    return {"energy": joules, "energy_kind": e.kind if e else None, "seconds": sec.value if sec else None,
            "seconds_per_task": spt.value if spt else None,
            "joules_per_task": None if joules is None or ts is None else joules * ts}


def _metric(ok: list[RunEvaluation], costs: dict[int, dict[str, Any]]) -> tuple[str, str, str]:
    """The cost minimised (its name, unit and key in :func:`_costs`)."""
    kinds = {c["energy_kind"] for c in costs.values()}
    sim = any(b.simulation for b in ok)
    if ok and not sim and all(c["energy"] is not None for c in costs.values()) and len(kinds) == 1 \
            and next(iter(kinds)) in ("measured", "estimated"):
        return f"energy per correct task ({next(iter(kinds))})", "J", "energy"
    return "seconds per correct task" + (" (simulated)" if sim else ""), "s", "seconds"


def _within(ok: list[RunEvaluation], costs: dict[int, dict[str, Any]], key: str, excluded: list[Candidate],
            max_s: float | None, max_j: float | None) -> list[RunEvaluation]:
    """The candidates within the budgets (the others appended to ``excluded``, with the reason)."""
    within = []
    for b in ok:
        c = costs[b.run_id]
        if max_s is not None and (c["seconds_per_task"] is None or c["seconds_per_task"] > max_s):
            excluded.append(Candidate(b.run_id, _what(b),
                                      reason=f"over the latency budget ({c['seconds_per_task']} s per task)"))
        elif max_j is not None and (c["joules_per_task"] is None or c["joules_per_task"] > max_j):
            excluded.append(Candidate(b.run_id, _what(b),
                                      reason=f"over the energy budget ({c['joules_per_task']} J per task)"))
        elif c[key] is not None:
            within.append(b)
    return within


def _asks(pending: list[Candidate], excluded: list[Candidate]) -> list[str]:
    """What would decide a scenario with no rung shown yet."""
    asks = [f"{p.what}: ≈{p.instances_needed:,} instances would decide {p.needed_for}"
            for p in pending if p.instances_needed]
    if not asks and pending:
        asks = ["more instances of the inconclusive runs"]
    if not asks and excluded:
        asks = ["the other rungs are established worse ("
                + ", ".join(f"{x.what}: {x.reason}" for x in excluded) + "); try other precisions or batch sizes"]
    return asks or ["runs of lower precisions (or other batch sizes) of this scenario"]


def _recommend_one(members: list[RunEvaluation], margin: float, max_s: float | None,
                   max_j: float | None) -> Recommendation:
    modes = {b.mode for b in members}
    mode = "free" if "free" in modes else sorted(modes)[0]
    rows = [b for b in members if b.mode == mode]
    bases = [b for b in rows if b.is_baseline]
    ok = bases + [b for b in rows if b.verdict_name == "no trap"]
    pending = [Candidate(b.run_id, _what(b), verdict="inconclusive", instances_needed=b.verdict.instances_needed,  # type: ignore[union-attr]
                         needed_for=b.verdict.needed_for)  # type: ignore[union-attr]
               for b in rows if b.verdict_name == "inconclusive" and not b.is_baseline]
    excluded = [Candidate(b.run_id, _what(b), reason=b.verdict_name) for b in rows if b.verdict_name in HARMFUL]
    costs = {b.run_id: _costs(b) for b in ok}
    metric, unit, key = _metric(ok, costs)
    within = _within(ok, costs, key, excluded, max_s, max_j)
    best = min(within, key=lambda b: (costs[b.run_id][key], b.run_id)) if within else None
    first = rows[0] if rows else members[0]
    scenario = first.scenario_label or first.scenario
    recommended = evidence = None
    shown = False
    if best is not None:
        c = costs[best.run_id][key]
        shown = not best.is_baseline
        recommended = Candidate(best.run_id, _what(best), precision=best.precision, batch_size=best.batch_size, cost=c)
        if shown:
            evidence = best.verdict.line  # type: ignore[union-attr]
            line = (f"{scenario} [{mode}]: deploy {_what(best)} — {metric} {c:.4g} {unit}, the "
                    f"cheapest shown non-inferior (within {100 * margin:.0f} pp of task success) to the baseline")
        else:
            line = f"{scenario} [{mode}]: none shown yet — keep the baseline {_what(best)} ({metric} {c:.4g} {unit})"
    else:
        line = f"{scenario} [{mode}]: none shown yet — no candidate within the budgets"
    asks = None if shown else _asks(pending, excluded)
    return Recommendation(
        scenario=scenario, model=first.model, mode=mode, margin=margin, cost=metric, unit=unit,
        baseline_run_ids=[b.run_id for b in bases], recommended=recommended, shown=shown, pending=pending,
        excluded=excluded, evidence=evidence if evidence is not None else ABSENT,
        line=line if asks is None else line + "; " + "; ".join(asks),
        what_would_decide=asks if asks is not None else ABSENT)


def recommend(ev: Evaluation, *, max_seconds_per_task: float | None = None,
              max_joules_per_task: float | None = None) -> list[Recommendation]:
    """One recommendation per scenario (and model) of :func:`.trap.analyse`'s runs."""
    groups: dict[str, list[RunEvaluation]] = {}
    for b in ev.runs:
        groups.setdefault(_scenario_key(b), []).append(b)
    margin = ev.settings["accuracy_margin"]
    return [_recommend_one(members, margin, max_seconds_per_task, max_joules_per_task) for members in groups.values()]


def recommendation_lines(recs: list[Recommendation]) -> list[str]:
    return [r.line for r in recs]
