"""Energy totals of a run that never add measured and estimated joules together."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from agentsim.store import RunRead

from .results import ABSENT
from .summary_results import EnergyOfKind, EnergySummary, RunEnergyCounter

__all__ = ["energy_summary"]


def _metered(row: dict[str, Any]) -> bool:
    """Whether a meter was asked about this hop (tool hops and hops that failed before the
    backend was called were not metered: they say nothing about the run's kind of energy)."""
    return (row.get("energy_kind") or "unavailable") != "unavailable" or bool(
        row.get("energy_source") or row.get("energy_note")
    )


def energy_summary(rows: list[dict[str, Any]], run: RunRead | None = None) -> EnergySummary:
    """Energy totals that never add measured and estimated joules together (:class:`EnergySummary`).

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
    by_kind = {k: EnergyOfKind(joules=per_kind.get(k), hops=kinds[k], source=",".join(sorted(sources[k])) or None,
                               hops_below_resolution=below.get(k, 0), resolution_j=resolution.get(k))
               for k in present}
    counter, share = ABSENT, ABSENT
    if run is not None:
        counter = RunEnergyCounter(
            joules=run.run_energy_j, kind=run.run_energy_kind or "unavailable", source=run.run_energy_source,
            resolution_j=getattr(run, "run_energy_resolution_j", None), note=getattr(run, "run_energy_note", None),
            hops_covered=getattr(run, "run_energy_hops", None))
        # comparable only when the run-level reading spans every hop (not after a resume)
        same = kind == counter.kind and kind in ("measured", "estimated") and (
            counter.hops_covered is None or counter.hops_covered == len(rows))
        share = joules / counter.joules if same and joules is not None and counter.joules else None
    return EnergySummary(joules=joules, kind=kind, source=source, by_kind=by_kind, hops_metered=len(metered),
                         hops_not_metered=len(rows) - len(metered), hops_below_resolution=sum(below.values()),
                         run_counter=counter, hop_share_of_run=share)
