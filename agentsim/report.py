"""Comparison tables (rich) for runs summarised by :func:`agentsim.analysis.compare_runs`."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from .analysis.results import Result
from .analysis.summary_results import CompareRow, RunSummary
from .analysis.verdict import VERDICT_SHORT
from .console import ENERGY_SHORT, compact_table, energy_short, esc, pct
from .render.facts import source_text

if TYPE_CHECKING:
    from .fidelity import FidelitySummary

__all__ = ["comparison_table", "mixed_runs_warning", "run_label", "scenario_label", "demo_table", "combine",
           "Pooled", "fidelity_table"]


_pct = pct


def _num(v: Any, fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def run_label(r: RunSummary) -> str:
    """What tells runs apart in a table: the backend spec, or ``model@precision`` when known; a cost
    twin's run says so (its accuracy figures mean nothing: random weights)."""
    from agentsim.models.catalog import twin_label_of

    twin = twin_label_of(r.model)
    label = f"{r.model}@{r.precision}" if r.model and r.precision else str(r.backend or "-")
    return f"{label} [{twin}]" if twin else label


def scenario_label(r: RunSummary) -> str:
    """The workload of a run summary: its scenario label (the family with its non-default params,
    or the file's name; see :mod:`agentsim.scenario.label`)."""
    return str(r.scenario_label or r.scenario)


def mixed_runs_warning(rows: list[CompareRow]) -> str | None:
    """A sentence when the compared runs ran different scenarios (their labels differ), else None.

    Labels tell workloads apart (two scenarios of one name have two labels); parameters that only
    restate a family's defaults do not change the workload and raise no warning."""
    labels = list(dict.fromkeys(scenario_label(r) for r in rows))
    if len(labels) <= 1:
        return None
    by_id = {r.run_id: r for r in rows}
    crossed = [f"run {r.run_id} ({scenario_label(r)}) against run {b} ({scenario_label(by_id[b])})"
               for r in rows if (b := r.baseline_run_id) is not None and b in by_id
               and scenario_label(by_id[b]) != scenario_label(r)]
    text = f"the compared runs ran {len(labels)} different scenarios ({', '.join(labels)})"
    if crossed:
        return (text + "; a baseline of another scenario saw other instances, so no ratio or difference is "
                "formed for these (not compared): " + "; ".join(crossed))
    return text + "; each run is compared with a baseline that saw the same instances"


def failing_baseline_note(rows: list[CompareRow]) -> str | None:
    """What to say when a baseline itself fails most tasks (task success under one half): a
    precision can then lose little, so every comparison against it says little about
    quantization (and reads "inconclusive"). None when no baseline fails most tasks."""
    by_id = {r.run_id: r for r in rows}
    failing = []
    for b in dict.fromkeys(r.baseline_run_id for r in rows):
        br = by_id.get(b)
        if br is None or br.task_success is None or br.task_success >= 0.5:
            continue
        n = br.instances_finished or br.instances or 0
        ok = round(br.task_success * n)
        failing.append(f"run {b} ({run_label(br)} [{br.mode}]) succeeds in {ok} of {n} tasks")
    if not failing:
        return None
    return ("the baseline fails most tasks: " + "; ".join(failing) + ". With so few successes to lose, the "
            "comparison says little about quantization (its verdicts read inconclusive); use a scenario the "
            "baseline mostly solves (fewer hops, an easier family) or a stronger model")


def comparison_table(rows: list[CompareRow], title: str | None = None) -> Any:
    """Runs against their baselines, readable at 80 columns.

    Columns: run, backend (or model@precision), mode, hop accuracy, task success, local and
    propagated errors, seconds per hop and energy per correct task; ``(0.95x)`` is the ratio to
    the run's baseline. The scenario label goes in the title when all runs share it, else in a
    column. Details (parse errors, tokens/s, intervals) are in ``agentsim show``.
    """
    by_id = {r.run_id: r for r in rows}
    same_scenario = len({scenario_label(r) for r in rows}) <= 1
    if title is None:
        if not rows:
            title = "no runs"
        else:
            bases = list(dict.fromkeys(r.baseline_run_id for r in rows if r.baseline_run_id is not None))
            head = ""
            if same_scenario:
                head = f"{scenario_label(rows[0])}: "
            if not bases:
                title = head + "no baseline"
            else:
                named = []
                for b in bases:
                    br = by_id.get(b)
                    named.append(f"run {b}" + (f" ({run_label(br)} [{br.mode}])" if br else ""))
                title = head + "x = relative to " + ", ".join(named)
                br = by_id.get(bases[0])
                if len(bases) == 1 and br and br.source_precision:
                    title += f"; baseline = {source_text(br.precision, br.source_precision)}"
    cut = any((r.error_kinds or {}).get("truncated") for r in rows)
    t = compact_table(
        title=esc(title),
        caption="x: ratio to the run's baseline. loc/prop: hops wrong on their own / because a parent "
                "was" + (f"; {_CUT_NOTE}" if cut else "") + ". J/task: energy per correct task "
                f"({ENERGY_SHORT['measured']} measured, {ENERGY_SHORT['estimated']} estimated). "
                "hop acc: model hops. = verdict against the baseline (its evidence: agentsim report). "
                "Details: agentsim show RUN_ID.",
    )
    t.add_column("run", justify="right", no_wrap=True)
    t.add_column("backend" if same_scenario else "backend, scenario", overflow="fold", min_width=8)
    t.add_column("mode", no_wrap=True)
    for col in ("hop acc", "task ok", "loc/prop", "s/hop", "J/task"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        rel = r.relative or {}
        own = r.baseline_run_id in (None, r.run_id)

        def x(key: str, rel: dict[str, Any] = rel, own: bool = own) -> str:
            return "" if own else _x1(rel.get(key))

        ek = r.error_kinds
        energy = r.energy_per_correct_task_j
        e_txt = "-" if energy is None else f"{energy:.1f} {energy_short(r.energy.kind)}"
        what = run_label(r)
        if not same_scenario:
            what += f"\n{scenario_label(r)}"
        verdict = r.verdict.verdict if r.verdict else None
        if verdict:
            what += f"\n= {_VERDICT_SHORT.get(verdict, verdict)}"
        cells = [
            str(r.run_id), esc(what), esc(r.mode),
            _pct(r.model_hop_accuracy) + x("model_hop_accuracy"),
            _pct(r.task_success) + x("task_success"),
            f"{ek.get('local', 0)}/{ek.get('propagated', 0)}" + (f" ✂{ek['truncated']}" if ek.get("truncated") else ""),
            _num(r.wall_s_per_hop, "{:.2f}") + x("wall_s_per_hop"),
            e_txt,
        ]
        t.add_row(*cells)
    return t


#: the verdict column of comparison_table (the full line with its evidence: agentsim report)
_VERDICT_SHORT = VERDICT_SHORT
#: the legend of the ✂ mark, where some hop was cut
_CUT_NOTE = "✂N: N hops cut by the token budget (error kind truncated: not an answer, not counted as local)"


def _x1(v: Any) -> str:
    return "" if v is None else f" {v:.2f}x"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pooled(Result):
    """Several runs' summaries pooled into one row of :func:`demo_table` (:func:`combine`): the
    shares over all their hops / instances, the summed error kinds and times, and energy per
    correct task only when every run's energy is of one kind (``energy_kind`` else ``mixed``)."""

    hops: int
    accuracy: float | None
    model_hop_accuracy: float | None
    task_success: float | None
    instances: int
    #: counts by error kind (an open set of names, as in :class:`RunSummary`)
    error_kinds: dict[str, int]
    decode_tokens_per_s: float | None
    wall_s_per_hop: float | None
    energy_kind: str
    energy_per_correct_task_j: float | None
    prompt_tokens: float | None
    cached_tokens: float | None


def combine(summaries: list[RunSummary]) -> Pooled:
    """Pool several run summaries (e.g. one per scenario) into one row of figures."""
    hops = sum(s.hops_recorded for s in summaries)
    correct = sum(round((s.accuracy or 0) * s.hops_recorded) for s in summaries)
    model_hops = sum(s.model_hops or 0 for s in summaries)
    model_correct = sum(round((s.model_hop_accuracy or 0) * (s.model_hops or 0)) for s in summaries)
    finished = sum(s.instances_finished for s in summaries)
    success = sum(round((s.task_success or 0) * s.instances_finished) for s in summaries)
    kinds: dict[str, int] = {}
    for s in summaries:
        for k, v in s.error_kinds.items():
            kinds[k] = kinds.get(k, 0) + v

    def total(key: str) -> float | None:
        vals = [getattr(s, key) for s in summaries if getattr(s, key) is not None]
        return float(sum(vals)) if vals else None

    ctoks = total("completion_tokens")
    dec = total("decode_s")
    wall = total("wall_s")
    energy_kinds = {s.energy.kind for s in summaries}
    joules = None  # summed only when every run's energy is of one kind (measured or estimated)
    if len(energy_kinds) == 1 and all(s.energy.summable for s in summaries):
        joules = float(sum(s.energy.joules or 0 for s in summaries))
    return Pooled(
        hops=hops,
        accuracy=correct / hops if hops else None,
        model_hop_accuracy=model_correct / model_hops if model_hops else None,
        task_success=success / finished if finished else None,
        instances=finished,
        error_kinds=kinds,
        decode_tokens_per_s=(ctoks / dec) if (ctoks and dec) else None,
        wall_s_per_hop=(wall / hops) if (wall is not None and hops) else None,
        energy_kind=energy_kinds.pop() if len(energy_kinds) == 1 else "mixed",
        energy_per_correct_task_j=(joules / success) if (joules is not None and success) else None,
        prompt_tokens=total("prompt_tokens"),
        cached_tokens=total("cached_tokens"),
    )


def demo_table(
    store: Any, runs: list[Any], *, baseline_label: str | None = None, labels: dict[str, str] | None = None
) -> Any:
    """One row per backend x mode, pooled over scenarios, relative to the first backend."""
    from rich.table import Table

    from .analysis import summarize_run

    groups: dict[tuple[str, str], list[RunSummary]] = {}
    order: list[str] = []
    for r in runs:
        if r.backend not in order:
            order.append(r.backend)
        groups.setdefault((r.backend, r.mode), []).append(summarize_run(store, r))
    first = next(iter(groups.values()))[0]
    base_backend = order[0]
    label = first.precision or baseline_label or base_backend
    pooled = ", ".join(sorted({scenario_label(s) for g in groups.values() for s in g}))
    title = f"pooled over {pooled}; x = relative to {label}"
    if first.source_precision:
        title += f" (baseline = {source_text(first.precision, first.source_precision)}"
    t = Table(title=esc(title), title_justify="left")
    for col in ("precision", "mode", "hop acc", "task ok", "local", "prop.", "parse", "tok/s", "s/hop", "J/task"):
        t.add_column(col, justify="left" if col in ("precision", "mode") else "right", no_wrap=True)
    pooled_by = {key: combine(g) for key, g in groups.items()}
    for backend in order:
        for mode in ("free", "oracle"):
            if (backend, mode) not in groups:
                continue
            g = groups[(backend, mode)]
            c = pooled_by[(backend, mode)]
            b = pooled_by.get((base_backend, mode))
            prec = g[0].precision or (labels or {}).get(backend) or backend
            if g[0].precision_mode == "emulated":
                prec += "*"
            is_base = backend == base_backend
            ek = c.error_kinds
            e = c.energy_per_correct_task_j
            t.add_row(
                esc(prec) if mode == "free" else "",
                esc(mode),
                _pct(c.model_hop_accuracy),
                _pct(c.task_success),
                str(ek.get("local", 0)),
                str(ek.get("propagated", 0)),
                str(ek.get("parse", 0) + ek.get("backend", 0)) + (f" ✂{ek['truncated']}" if ek.get("truncated") else ""),
                _num(c.decode_tokens_per_s, "{:.1f}"),
                _num(c.wall_s_per_hop, "{:.2f}") + ("" if is_base or not b else _x(c.wall_s_per_hop, b.wall_s_per_hop)),
                "-" if e is None else f"{e:.1f} {energy_short(c.energy_kind)}",
            )
    t.caption = (
        "hop acc / task ok: correct model hops / instances with every hop right. local: wrong on its own; "
        "prop.: wrong because a parent was wrong. parse includes backend errors"
        + ("; " + _CUT_NOTE if any(s.error_kinds.get("truncated") for g in groups.values() for s in g) else "")
        + ". "
        "* = FP4 emulated (no FP4 tensor cores here). J/task: energy per correct task "
        f"({ENERGY_SHORT['measured']} = measured, {ENERGY_SHORT['estimated']} = estimated)."
    )
    return t


def _x(a: Any, b: Any) -> str:
    if a is None or not b:
        return ""
    return f" {a / b:.2f}x"


# --------------------------------------------------------------------------------------------
# fidelity beside accuracy (agentsim.fidelity)


def _kld(d: FidelitySummary | None, reference: int | None = None) -> str:
    if not d or d.kld_mean is None:
        return "-"
    ci = d.kld_ci95
    return (f"{d.kld_mean:.3g}" + (f"\n[{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "") + (f"\n{d.estimate_label}" if d.estimate_label else "")
            + (f"\nvs run {d.reference_run_id}" if reference is not None and d.reference_run_id != reference else ""))


def fidelity_table(rows: list[CompareRow]) -> Any:
    """Flips and fidelity against each run's baseline, beside its accuracy, and the noise floor
    (the same rung at batch 1): None when no row has a baseline other than itself."""
    shown = [r for r in rows if r.fidelity is not None and r.fidelity.flips is not None]
    if not shown:
        return None
    t = compact_table(
        title="flips and fidelity against the baseline",
        caption="flips: tasks / model hops right->wrong and wrong->right against the baseline run (same instances). "
                "KLD: mean KL(baseline || run) over completion positions, teacher-forced on the baseline's own "
                "tokens, [95% bootstrap over instances]; top: same top token. floor: the same rung at batch 1 "
                "(hop flips, KLD): differences below it cannot be told from batching. Not a task-accuracy "
                "measure (docs/statistics.md).",
    )
    from agentsim.fidelity.figures import floor_of, measured_floors

    floors = measured_floors({r.run_id: r.fidelity for r in rows if r.fidelity})
    other = False
    for col in ("run", "backend", "hop acc", "task flips", "hop flips", "KLD", "top", "floor", "x floor"):
        t.add_column(col, justify="right" if col not in ("backend",) else "left", overflow="fold")
    for r in shown:
        fig = r.fidelity
        assert fig is not None and fig.flips is not None  # shown
        f, d, fl = fig.flips, fig.fidelity, fig.first_floor
        floor = "-"
        if fl:
            fd = fl.fidelity
            floor = f"{fl.flips.hop_flips} hops" + (f", {fd.kld_mean:.3g}" if fd and fd.kld_mean is not None else "")
        kld_floor, own = floor_of(fig, floors)
        if not fl and kld_floor is not None:
            floor = f"{kld_floor:.3g}†"
            other = True
        times = "-" if kld_floor is None or not kld_floor or not d or d.kld_mean is None else \
            f"{d.kld_mean / kld_floor:.3g}x"
        t.add_row(str(r.run_id), esc(run_label(r) + f" [{r.mode}]"),
                  _pct(r.model_hop_accuracy),
                  f"-{f.task_right_to_wrong} +{f.task_wrong_to_right}",
                  f"-{f.hop_right_to_wrong} +{f.hop_wrong_to_right}",
                  _kld(d, fig.reference_run_id), _pct(d.same_top) if d else "-", floor, times)
    if floors:
        from agentsim.fidelity.figures import floor_text

        t.caption = (t.caption or "") + " x floor: KLD over the floor it stands beside." + (
            " † the largest noise floor measured among these runs (another rung's): " + floor_text(floors[0]) + "."
            if other else "")
    return t
