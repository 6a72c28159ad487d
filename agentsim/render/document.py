"""The report document: :func:`agentsim.analysis.analyse`'s :class:`Evaluation` plus what the report adds.

``build_report`` computes nothing statistical itself: it calls ``analyse()`` and adds the
report's metadata (``report``: when and from which database it was made, the facts a reader
needs to judge it, what each rung is relative to its source, error kinds per run), the scale
axis, fidelity and the recommendations. Every rendering (terminal, HTML, Markdown) reads this one
:class:`Report`; its JSON (``Report.to_json()``) is ``evaluate()``'s with those keys added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from agentsim.analysis import analyse
from agentsim.analysis.results import (
    Evaluation,
    Recommendation,
    Result,
    RunEvaluation,
    ScaleAnalysis,
)
from agentsim.versions import dist_version

from .facts import machine_text, realisation_text, rung_note, source_text

if TYPE_CHECKING:
    from agentsim.fidelity import MeasuredFloor, RunFidelity

__all__ = ["build_report", "select_run_ids", "Report", "REPORT_SCHEMA_VERSION", "ERROR_KINDS"]

#: bumped when the "report" block changes incompatibly (evaluate()'s own is "schema_version")
REPORT_SCHEMA_VERSION = 1

#: error kinds in stacking order (DESIGN.md's names)
ERROR_KINDS = ("local", "propagated", "recovered", "parse", "truncated", "backend")


def select_run_ids(store: Any, run_ids: list[int] | None = None, *, launch: str | None = None,
                   all_runs: bool = False) -> list[int]:
    """The runs a report covers: explicit ids, one launch's runs, or every run in the store (also
    when none of them is given)."""
    from agentsim.errors import AgentsimError

    chosen = [x for x in (bool(run_ids), launch is not None, all_runs) if x]
    if len(chosen) > 1:
        raise AgentsimError("give run ids, or --launch ID, or --all (one of them; none reports every run)",
                            hint="agentsim runs lists the runs; agentsim runs --json shows each one's launch_id")
    if run_ids:
        for rid in run_ids:
            store.get_run(int(rid))  # a StoreError naming the missing run
        return [int(r) for r in run_ids]
    runs = sorted(store.list_runs(), key=lambda r: r.id)
    if launch is not None:
        ids = [r.id for r in runs if (r.launch_id or "") == launch or (r.launch_id or "").startswith(launch)]
        launches = {r.launch_id for r in runs if r.id in ids}
        if not ids:
            raise AgentsimError(f"no launch {launch!r} in {store.db}",
                                hint="agentsim runs --json shows each run's launch_id")
        if len(launches) > 1:
            raise AgentsimError(f"launch prefix {launch!r} matches {len(launches)} launches",
                                hint="give more of the launch id")
        return ids
    if not runs:
        raise AgentsimError(f"no runs in {store.db}", hint="agentsim run SCENARIO -b BACKEND records one")
    return [r.id for r in runs]


def _error_kinds(store: Any, run_id: int) -> dict[str, int]:
    counts = {k: 0 for k in ERROR_KINDS}
    for row in store.hop_rows([run_id], ["run_id", "error_kind"]):
        k = row["error_kind"] or "none"
        if k != "none":
            counts[k] = counts.get(k, 0) + 1
    return counts


@dataclass(frozen=True, kw_only=True)
class Report(Result):
    """What every rendering reads: the evaluation (its keys at the top of the JSON), the report's
    own block (its ``noise_floor``: :class:`agentsim.fidelity.MeasuredFloor` s), the scale axis (None
    below two model sizes), fidelity per run (by run id, as a string) and the recommendations."""

    evaluation: Evaluation = field(metadata={"flatten": True})
    report: dict[str, Any]
    scale: ScaleAnalysis | None
    fidelity: dict[str, RunFidelity]
    recommendations: list[Recommendation]

    @property
    def runs(self) -> list[RunEvaluation]:
        return self.evaluation.runs

    @property
    def noise_floors(self) -> list[MeasuredFloor]:
        """The noise floors measured among these runs, largest KLD first (the report's ``noise_floor``)."""
        return list((self.report or {}).get("noise_floor") or [])


def _scenario_text(b: RunEvaluation) -> str:
    """The run's scenario label: the family with its non-default params, or the file's name."""
    return str(b.scenario_label or b.scenario)


def _uniq(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(json.dumps(v, sort_keys=True, default=str) for v in values if v is not None))


def build_report(store: Any, run_ids: list[int], baseline: int | str | None = None, *,
                 title: str | None = None, **evaluate_kwargs: Any) -> Report:
    """``analyse(store, run_ids, baseline)`` with the report's block (see docs/report.md)."""
    from agentsim.analysis.recommend import recommend

    ev = analyse(store, run_ids, baseline, **evaluate_kwargs)
    blocks = ev.runs
    models = list(dict.fromkeys(str(b.model or b.backend) for b in blocks))
    if title is None:
        title = "agentsim report: " + ", ".join(models[:3]) + (f" (+{len(models) - 3})" if len(models) > 3 else "")
    fidelity = fidelity_block(store, blocks)
    from agentsim.fidelity.figures import measured_floors

    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "title": title,
        "generated_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "agentsim_version": dist_version("agentsim"),
        "db": str(getattr(store, "db", "")),
        "run_ids": [b.run_id for b in blocks],
        "baseline": baseline,
        "facts": _facts(blocks, models),
        "rungs": _rungs(store, blocks),
        "error_kinds": {str(b.run_id): _error_kinds(store, b.run_id) for b in blocks},
        # the noise floors measured among these runs (the same rung at batch 1), largest first
        "noise_floor": measured_floors(fidelity),
    }
    return Report(evaluation=ev, report=report, scale=_scale(store, [b.run_id for b in blocks]),
                  fidelity=fidelity, recommendations=recommend(ev))


def _rungs(store: Any, blocks: list[RunEvaluation]) -> list[dict[str, Any]]:
    """What each rung (model, precision, weights) is relative to its source, once per rung."""
    infos = {b.run_id: (store.get_run(b.run_id).backend_info or {}) for b in blocks}
    rungs: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for b in blocks:
        key = (b.model, b.precision, b.model_sha256)
        if key in seen:
            continue
        seen.add(key)
        note = rung_note(b, infos[b.run_id])
        if note is not None:
            note["run_ids"] = [x.run_id for x in blocks if (x.model, x.precision, x.model_sha256) == key]
            rungs.append(note)
    return rungs


def _facts(blocks: list[RunEvaluation], models: list[str]) -> dict[str, Any]:
    """The facts a reader needs to judge the report (models, weights, machines, n, seeds, ...)."""
    return {
        "models": models,
        "weights": list(dict.fromkeys(f"{b.model or b.backend}: {source_text(b.precision, b.source_precision, b.simulation)}" for b in blocks)),
        "realisations": list(dict.fromkeys(f"{b.precision or b.backend}: {realisation_text(b.precision_mode)}"
                                           for b in blocks)),
        "scenarios": list(dict.fromkeys(_scenario_text(b) for b in blocks)),
        "modes": list(dict.fromkeys(b.mode for b in blocks)),
        "machines": [json.loads(m) for m in _uniq([b.machine or {} for b in blocks])],
        "machine_lines": list(dict.fromkeys(machine_text(b.machine) for b in blocks)),
        "energy_kinds": sorted({b.energy_kind or "unavailable" for b in blocks}),
        "n": sorted({int(b.n) for b in blocks if b.n is not None}),
        "instances_finished": sorted({int(b.instances_finished) for b in blocks}),
        "seeds": sorted({int(b.seed) for b in blocks if b.seed is not None}),
        "launches": list(dict.fromkeys(str(b.launch_id) for b in blocks if b.launch_id)),
        "run_agentsim_versions": list(dict.fromkeys(str(b.agentsim_version) for b in blocks if b.agentsim_version)),
    }


def fidelity_block(store: Any, blocks: list[RunEvaluation]) -> dict[str, RunFidelity]:
    """Per run (by id, as a string): :func:`agentsim.fidelity.run_figures` against its baseline --
    flips, the stored fidelity pass and the noise floor (docs/fidelity.md)."""
    from agentsim.fidelity import run_figures

    return {str(b.run_id): run_figures(store, b.run_id, b.baseline_run_id)
            for b in blocks if b.baseline_run_id is not None and not b.is_baseline}


def _scale(store: Any, run_ids: list[int]) -> ScaleAnalysis | None:
    """The model-scale axis (N*) when the runs span two or more model sizes, else None."""
    sizes = {store.get_run(i).model_params for i in run_ids} - {None, 0}
    if len(sizes) < 2:
        return None
    from agentsim.analysis.scale import scale_axis

    return scale_axis(store, run_ids)

