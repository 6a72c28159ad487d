"""The quantization-trap detector: :func:`evaluate` is the one entry point of the analysis.

``evaluate(store, run_ids, baseline=None)`` returns one JSON-serialisable dict (its structure is
documented in docs/statistics.md, "The JSON of evaluate()"): per run its own figures with
intervals, its paired figures against its baseline, relative loss by depth, reliability,
error propagation and the verdict line with its evidence; plus the free-mode task-success fits
of depth sweeps. The CLI (``compare --json``, ``report``), the demo and the TUI all read it.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from agentsim.errors import AgentsimError
from agentsim.precision import PRECISIONS, bits
from agentsim.store import Store, batch_size_of
from agentsim.versions import dist_version

from .bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, wilson, wilson_clustered
from .data import RunData, instance_table, load_run, top_rung
from .depth import relative_loss_by_depth, split_depths
from .inference import ALPHA, POWER
from .paired import compare_pair, single_figures
from .propagation import propagation
from .reliability import fit_run, fit_sweep
from .results import (
    ClusteredEstimate,
    DepthAccuracy,
    Estimate,
    Evaluation,
    RunEvaluation,
    RunVerdict,
    ShareOf,
    SingleRun,
    Sweep,
    Verdict,
)
from .verdict import (
    ACCURACY_MARGIN,
    COST_MARGIN,
    PRIMARY,
    Evidence,
    decide_all,
    evidence,
    growth_vs_oracle,
)

__all__ = ["evaluate", "analyse", "choose_baselines", "group_key", "SCHEMA_VERSION"]

#: bumped when the structure of evaluate()'s output changes incompatibly
SCHEMA_VERSION = 2

BASELINE_RULE = ("default baseline: among the compared runs of the same model, scenario, params, mode, seed and "
                 "instance count, the one whose precision has the most bits (agentsim.precision.bits), ties by lowest run id")


def group_key(rd: RunData) -> str:
    """Runs that see the same instances and may be compared (pairing by instance and hop). The
    fingerprint keeps apart two scenarios of one name (their instances differ; their labels too)."""
    r = rd.run
    return json.dumps([r.model, r.scenario, r.scenario_fingerprint, r.params, r.mode, r.seed, r.n_instances],
                      sort_keys=True, default=str)




def choose_baselines(runs: list[RunData], baseline: int | str | None, store: Store) -> dict[int, RunData | None]:
    """The baseline of every run (None where a requested precision is missing from its group)."""
    groups: dict[str, list[RunData]] = {}
    for rd in runs:
        groups.setdefault(group_key(rd), []).append(rd)
    out: dict[int, RunData | None] = {}
    if baseline is None:
        for members in groups.values():
            top = top_rung(members)
            for rd in members:
                out[rd.run.id] = top
        return out
    if isinstance(baseline, int) or (isinstance(baseline, str) and baseline.strip().isdigit()):
        bid = int(baseline)
        base = next((rd for rd in runs if rd.run.id == bid), None) or load_run(store, bid)
        return {rd.run.id: base for rd in runs}
    name = str(baseline).strip().lower()
    if name not in PRECISIONS:
        raise AgentsimError(f"baseline {baseline!r} is neither a run id nor a precision",
                            hint=f"precisions: {', '.join(PRECISIONS)}")
    if not any(rd.run.precision == name for rd in runs):
        raise AgentsimError(f"no compared run has precision {name!r}",
                            hint="give the baseline run id, or include a run at that precision")
    for members in groups.values():
        top = sorted((x for x in members if x.run.precision == name), key=lambda x: x.run.id)
        for rd in members:
            out[rd.run.id] = top[0] if top else None
    return out


def _label(rd: RunData) -> str:
    r = rd.run
    what = r.precision or r.backend
    if r.precision and r.model:
        what = f"{r.model}@{r.precision}"
    elif r.precision:
        what = f"{r.backend_name or r.backend}@{r.precision}"
    return f"run {r.id} {what} [{r.mode}]"


def _single(rd: RunData, resamples: int, seed: int) -> tuple[SingleRun, Any]:
    t = instance_table(rd)
    acc = wilson_clustered(t.mh_correct, t.mh_n)
    ts = wilson(t.success.sum(), t.m)
    by_depth: dict[str, DepthAccuracy] = {}
    for j, d in enumerate(t.depths):
        f = wilson_clustered(t.depth_correct[:, j], t.depth_n[:, j])
        if f:
            by_depth[str(d)] = DepthAccuracy(correct=int(t.depth_correct[:, j].sum()), n=int(t.depth_n[:, j].sum()),
                                             accuracy=f["value"], ci95=f["ci95"])
    # task success through depth d: instances whose model hops up to depth d are all right
    through: dict[str, ShareOf] = {}
    ok = np.ones(t.m, dtype=bool)
    for j, d in enumerate(t.depths):
        ok &= t.depth_correct[:, j] >= t.depth_n[:, j]
        ci = wilson(float(ok.sum()), t.m)
        if ci is not None:
            through[str(d)] = ShareOf(value=float(ok.mean()), ci95=list(ci), n=t.m)
    single = SingleRun(
        instances=t.m,
        task_success_by_depth=through,
        model_hops=int(t.mh_n.sum()),
        hops=int(t.hops_n.sum()),
        model_hop_accuracy=None if acc is None else ClusteredEstimate(**acc),
        task_success=None if ts is None else Estimate(value=float(t.success.mean()), ci95=list(ts),
                                                      method="wilson (instances)"),
        accuracy_by_depth=by_depth,
        costs=dict(single_figures(t, resamples=resamples, seed=seed)),
    )
    return single, t


def _meta(rd: RunData) -> dict[str, Any]:
    r = rd.run
    versions = (r.machine or {}).get("versions") or {}
    kinds = sorted({(row["energy_kind"] or "unavailable") for row in rd.rows if row["kind"] != "tool"})
    return {
        "run_id": r.id, "scenario_label": r.scenario_label or r.scenario, "scenario": r.scenario,
        "scenario_fingerprint": r.scenario_fingerprint, "params": r.params, "backend": r.backend, "model": r.model,
        "precision": r.precision, "precision_bits": bits(r.precision) if r.precision else None,
        "precision_mode": r.precision_mode, "kernel": r.kernel, "source_precision": r.source_precision,
        "model_sha256": r.model_sha256, "mode": r.mode, "batch_size": batch_size_of(r), "seed": r.seed, "launch_id": getattr(r, "launch_id", None), "status": r.status,
        "n": r.n_instances, "instances_finished": len(rd.by_key), "machine": r.machine,
        "energy_kind": rd.energy_kind, "energy_kinds": kinds, "simulation": rd.is_simulation,
        "agentsim_version": versions.get("agentsim"),
    }


def _sweeps(runs: list[RunData]) -> list[Sweep]:
    """Free-mode task success against scenario depth, per backend, for generator depth sweeps."""
    groups: dict[str, list[RunData]] = {}
    for rd in runs:
        r = rd.run
        ref = r.scenario_ref or {}
        if r.mode != "free" or "depth" not in (r.params or {}) or ref.get("kind") != "generator":
            continue
        rest = {k: v for k, v in r.params.items() if k != "depth"}
        key = json.dumps([ref.get("name"), rest, r.backend, r.model, r.precision, r.seed], sort_keys=True, default=str)
        groups.setdefault(key, []).append(rd)
    out = []
    for members in groups.values():
        depths = {int(rd.run.params["depth"]) for rd in members}
        if len(depths) < 2:
            continue
        pts = []
        for rd in sorted(members, key=lambda x: (int(x.run.params["depth"]), x.run.id)):
            s = [1.0 if i.success else 0.0 for i in rd.by_key.values()]
            pts.append({"depth": int(rd.run.params["depth"]), "successes": int(sum(s)), "n": len(s), "run_id": rd.run.id})
        first = members[0].run
        out.append(Sweep(family=(first.scenario_ref or {}).get("name"), backend=first.backend, model=first.model,
                         precision=first.precision, mode="free", fit=fit_sweep(pts),
                         what="task success(depth) = r^depth over runs of a depth sweep"))
    return out


def evaluate(store: Store, run_ids: list[int], baseline: int | str | None = None, **kwargs: Any) -> dict[str, Any]:
    """:func:`analyse` as JSON: the schema of docs/statistics.md ("The JSON of evaluate()")."""
    return analyse(store, run_ids, baseline, **kwargs).to_json()


def analyse(store: Store, run_ids: list[int], baseline: int | str | None = None, *,
            resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
            accuracy_margin: float = ACCURACY_MARGIN, assess_simulated_costs: bool = False,
            cost_margin: float = COST_MARGIN, alpha: float = ALPHA) -> Evaluation:
    """Figures, paired comparisons and verdicts of ``run_ids`` (see docs/statistics.md).

    ``baseline``: None (the top rung of each group, see :data:`BASELINE_RULE`), a run id (int or
    digit string) used for every run, or a precision name chosen within each group.
    ``assess_simulated_costs``: judge efficiency for simulation backends too (their seconds are
    simulated latency and their joules an estimate from it).
    """
    if resamples < 200:
        raise AgentsimError(f"resamples={resamples} is too few for 95 % percentile intervals", hint="use 2000 or more")
    ids = list(dict.fromkeys(int(i) for i in run_ids))
    if not ids:
        raise AgentsimError("no runs to evaluate", hint="give run ids (agentsim runs lists them)")
    runs = [load_run(store, i) for i in ids]
    bases = choose_baselines(runs, baseline, store)
    pending = [_block(rd, bases.get(rd.run.id), resamples, seed) for rd in runs]
    evs = _evidences(pending, resamples, seed, accuracy_margin, cost_margin, assess_simulated_costs)
    it = iter(decide_all([e for e in evs if e is not None], alpha=alpha))
    blocks: list[RunEvaluation] = []
    for (block, rd, _base, _), ev in zip(pending, evs, strict=True):
        if ev is None and block.get("refused"):
            block["verdict"] = Verdict.short("not compared", f"{_label(rd)}: not compared — {block['refused']}")
        elif ev is None:
            block["verdict"] = Verdict.short("inconclusive", f"{_label(rd)}: no baseline at {baseline!r} "
                                             "among the runs that share its instances")
        else:
            block["verdict"] = next(it)
        blocks.append(RunEvaluation(**block))
    verdicts = [RunVerdict(b.run_id, b.baseline_run_id, b.precision, b.verdict.verdict, b.verdict.line)  # type: ignore[union-attr]
                for b in blocks]
    k = sum(1 for e in evs if e is not None and not e.identity and e.ts is not None)
    multiplicity = (f"p-values Holm-adjusted across the {k} comparison{'s' if k != 1 else ''} of this analysis "
                    "(each rung, scenario and mode against its baseline; harm tests and no-trap tests as two families)")
    return Evaluation(
        schema_version=SCHEMA_VERSION,
        agentsim_version=dist_version("agentsim"),
        settings={"level": 0.95, "alpha": alpha, "resamples": resamples, "seed": seed,
                  "accuracy_margin": accuracy_margin, "cost_margin": cost_margin, "primary": PRIMARY,
                  "power": POWER, "assess_simulated_costs": assess_simulated_costs, "multiplicity": "holm",
                  "baseline": baseline, "baseline_rule": BASELINE_RULE},
        multiplicity=multiplicity,
        runs=blocks,
        verdicts=verdicts,
        sweeps=_sweeps(runs),
    )


_Pending = tuple[dict[str, Any], RunData, "RunData | None", "dict[str, Any] | None"]


def _block(rd: RunData, base: RunData | None, resamples: int, seed: int) -> _Pending:
    """One run's figures and, against its baseline, its paired comparison and loss by depth (the
    fields of its :class:`RunEvaluation` but the verdict), with the baseline kept and the context."""
    single, t = _single(rd, resamples, seed)
    block: dict[str, Any] = {**_meta(rd), "label": _label(rd), "single": single}
    block["reliability"] = fit_run(t.depths, t.depth_correct, t.depth_n, mode=rd.run.mode)
    block["propagation"] = propagation(rd, resamples=resamples, seed=seed)
    ctx = None
    refusal = _refusal(rd, base)
    if refusal:
        block.update(baseline_run_id=base.run.id, is_baseline=False, paired=None, depth=None, refused=refusal)  # type: ignore[union-attr]
        base = None
    elif base is None:
        block.update(baseline_run_id=None, is_baseline=False, paired=None, depth=None)
    else:
        paired, ctx = compare_pair(rd, base, resamples=resamples, seed=seed)
        depth = relative_loss_by_depth(ctx["ta"], ctx["tb"], ctx["w"], identity=ctx["identity"]) if ctx["m"] else None
        block.update(baseline_run_id=base.run.id, is_baseline=base.run.id == rd.run.id, paired=paired, depth=depth)
        if base.energy_kind != rd.energy_kind:
            block["energy_note"] = (f"energy kinds differ from the baseline's ({rd.energy_kind} vs "
                                    f"{base.energy_kind}): no energy ratio is formed")
    return block, rd, base, ctx


def _refusal(rd: RunData, base: RunData | None) -> str | None:
    """Why ``rd`` is not held against ``base`` (None when it may be): ratios and differences are
    formed only between runs of one scenario fingerprint (the same instances)."""
    if base is None or base.run.id == rd.run.id:
        return None
    a, b = rd.run, base.run
    fa, fb = a.scenario_fingerprint or a.scenario, b.scenario_fingerprint or b.scenario
    if fa != fb or (a.params or {}) != (b.params or {}):
        return (f"its scenario ({a.scenario_label or a.scenario}) is not the baseline run {b.id}'s "
                f"({b.scenario_label or b.scenario}): figures are compared only between runs of one scenario "
                "fingerprint and params (the same instances)")
    return None


def _twin_key(rd: RunData) -> str:
    """Runs of one rung that differ only by mode (a free run's oracle twin)."""
    r = rd.run
    return json.dumps([r.model, r.backend, r.precision, r.scenario_fingerprint, r.params, r.seed, r.n_instances,
                       batch_size_of(r)], sort_keys=True, default=str)


def _evidences(pending: list[tuple[dict[str, Any], RunData, RunData | None, dict[str, Any] | None]], resamples: int,
               seed: int, accuracy_margin: float, cost_margin: float, assess: bool) -> list[Evidence | None]:
    """Each run's evidence; a free run whose oracle twin (and the twin's baseline) is compared too is
    judged for compounding by free against oracle on the same instances and hops."""
    oracle = {(_twin_key(rd), _twin_key(base)): (block, ctx) for block, rd, base, ctx in pending
              if base is not None and ctx is not None and rd.run.mode == "oracle" and not ctx["identity"]}
    out: list[Evidence | None] = []
    for block, rd, base, ctx in pending:
        if base is None or ctx is None:
            out.append(None)
            continue
        growth = oracle_growth = None
        twin = oracle.get((_twin_key(rd), _twin_key(base))) if rd.run.mode == "free" and not ctx["identity"] else None
        split = split_depths(ctx["ta"].depths) if ctx["m"] else None
        if twin is not None and split is not None:
            growth = growth_vs_oracle(ctx, twin[1], split, resamples, seed)
        if growth is not None:
            block["compounding"] = growth
        out.append(evidence(block["paired"], block["depth"], n=ctx["m"], label=_label(rd), baseline_label=_label(base),
                            mode=rd.run.mode, simulated=rd.is_simulation or base.is_simulation, assess_simulated=assess,
                            growth=growth, oracle_growth=oracle_growth, accuracy_margin=accuracy_margin,
                            cost_margin=cost_margin))
    return out
