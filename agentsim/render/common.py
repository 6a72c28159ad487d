"""What every rendering shows, as plain strings: the facts header, the verdicts with their
evidence, and the table of figures. Terminal, HTML and Markdown only lay these out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentsim.analysis.results import Estimate, RunEvaluation
from agentsim.analysis.verdict import VERDICT_STYLE

if TYPE_CHECKING:
    from .document import Report
from agentsim.console import pct

__all__ = ["header_items", "verdict_items", "figure_columns", "figure_rows", "pct", "ci_text", "rel_ci",
           "pp_ci", "VERDICT_STYLE", "METHODS_NOTE"]

#: how each verdict is coloured (rich style names; HTML maps them to classes)

METHODS_NOTE = ("Intervals are two-sided 95 %. Single runs: Wilson over instances (task success), Wilson "
                "clustered by instance (hop accuracy), cluster bootstrap (costs). Against the baseline: paired "
                "bootstrap over instances (the same resample for both runs), McNemar / clustered McNemar "
                "p-values; relative loss by depth and its depth x precision interaction by paired bootstrap. "
                "Methods and references: docs/statistics.md.")




def ci_text(ci: list[float] | None, scale: float = 100.0, fmt: str = "{:.1f}") -> str:
    if not ci:
        return ""
    return f"[{fmt.format(ci[0] * scale)}, {fmt.format(ci[1] * scale)}]"


def rel_ci(f: Estimate | None) -> str:
    """``1.85x [1.41, 2.61]`` (a paired ratio), or its reason when it has none."""
    if not f or f.value is None:
        return "-"
    ci = f.ci95
    return f"{f.value:.2f}x" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def pp_ci(f: Estimate | None) -> str:
    """``-40.0 pp [-53.3, -28.3]`` (a paired difference of proportions)."""
    if not f or f.value is None:
        return "-"
    ci = f.ci95
    return f"{100 * f.value:+.1f} pp" + (f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "")


def _figure_ci(f: Estimate | None, fmt: str = "{:.3g}") -> str:
    if not f or f.value is None:
        return "-"
    ci = f.ci95
    return fmt.format(f.value) + (f" [{fmt.format(ci[0])}, {fmt.format(ci[1])}]" if ci else "")


def header_items(doc: Report) -> list[tuple[str, str]]:
    """(label, text) pairs: everything a reader needs to judge the report."""
    rep = doc.report
    f = rep["facts"]
    s = doc.evaluation.settings
    versions = f["run_agentsim_versions"]
    items = [
        ("model", ", ".join(f["models"])),
        ("weights", "; ".join(f["weights"])),
        ("realisation", "; ".join(f["realisations"])),
        ("scenario", "; ".join(f["scenarios"])),
        ("modes", ", ".join(f["modes"])),
        ("machine", " | ".join(f["machine_lines"])),
        ("energy kinds", ", ".join(f["energy_kinds"])
         + ("" if f["energy_kinds"] != ["estimated"] else " (a model of the CPU time, not a meter)")),
        ("n", ", ".join(map(str, f["n"])) + " instances per run"
         + ("" if f["instances_finished"] == f["n"] else f" ({', '.join(map(str, f['instances_finished']))} finished)")),
        ("seed", ", ".join(map(str, f["seeds"])) + f" (runs); statistics seed {s['seed']}, {s['resamples']} resamples"),
        ("agentsim", f"{rep['agentsim_version']} (report)"
         + (f"; runs recorded with {', '.join(versions)}" if versions else "")),
        *_cut_items(rep),
        ("baseline", str(s.get("baseline") or "default") + " — " + s["baseline_rule"]),
        ("runs", ", ".join(map(str, rep["run_ids"])) + (f" (launch {', '.join(f['launches'])})" if f["launches"] else "")),
        ("database", rep["db"]),
        ("generated", rep["generated_at"]),
    ]
    return items


def _cut_items(rep: dict[str, Any]) -> list[tuple[str, str]]:
    """The runs with hops cut by the token budget (error kind ``truncated``), if any."""
    cut = {run: kinds.get("truncated", 0) for run, kinds in (rep.get("error_kinds") or {}).items()}
    cut = {run: n for run, n in cut.items() if n}
    if not cut:
        return []
    return [("cut answers", ", ".join(f"run {run}: {n} hop{'s' if n != 1 else ''}" for run, n in cut.items())
             + " reached the token budget (error kind truncated: scored as cut, not as local errors)")]


def failing_baseline_text(block: RunEvaluation | None) -> str | None:
    """A baseline that fails most tasks, said so (its comparisons then say little), or None."""
    if block is None:
        return None
    ts, n = block.single.task_success, block.single.instances
    if ts is None or ts.value is None or ts.value >= 0.5 or not n:
        return None
    ts = ts.value
    return (f"the baseline (run {block.run_id}) succeeds in {round(ts * n)} of {n} tasks: it fails most of "
            "them, so this comparison says little about quantization")


def verdict_items(doc: Report) -> list[dict[str, Any]]:
    """One per run: its verdict, the line (with its evidence) and the details behind it."""
    by_id = {b.run_id: b for b in doc.runs}
    out = []
    for v in doc.evaluation.verdicts:
        b = by_id[v.run_id]
        details: list[str] = []
        vd = b.verdict
        eff = vd.efficiency if vd else None
        if eff and eff.reason and not eff.assessed:
            details.append(f"efficiency: {eff.reason}")
        elif eff and eff.assessed:
            details.append(f"efficiency judged on {eff.metric} ({eff.kind})"
                           + (f"; {eff.energy_note}" if eff.energy_note else ""))
        if b.energy_note:
            details.append(b.energy_note)
        if vd and vd.instances_needed:
            details.append(f"about {vd.instances_needed:,} instances would decide it (power 0.8 at the adjusted level)")
        failing = failing_baseline_text(by_id.get(v.baseline_run_id)) if v.baseline_run_id is not None else None
        if failing and v.verdict != "baseline":
            details.append(failing)
        details = [d for d in details if d.split(": ", 1)[-1] not in v.line]  # no repeats of the line
        out.append({"run_id": v.run_id, "verdict": v.verdict, "line": v.line, "details": details,
                    "style": VERDICT_STYLE.get(v.verdict, "")})
    return out


def figure_columns() -> list[tuple[str, str]]:
    """(column, what it holds) of the table of figures."""
    return [
        ("run", "run id (the baseline's id in brackets)"),
        ("what", "backend or model@precision"),
        ("mode", "free (errors propagate) or oracle (each hop sees expected inputs)"),
        ("n", "instances finished"),
        ("hop acc", "model-hop accuracy, 95 % CI clustered by instance"),
        ("task ok", "task success (every hop right), Wilson 95 % CI"),
        ("flips", "tasks right->wrong / wrong->right against the baseline (same instances); floor: the same rung at batch 1"),
        ("KLD", "mean KL(baseline || run) per completion token, teacher-forced, 95 % bootstrap CI (docs/fidelity.md); "
                "floor: its noise floor (the same rung at batch 1), floor†: the largest floor measured among these "
                "runs, on another rung"),
        ("Δ task", "task success minus the baseline's, paired 95 % CI"),
        ("Δ hop", "model-hop accuracy minus the baseline's, paired 95 % CI"),
        ("J/correct", "energy per correct task, ratio to the baseline (same energy kind only), paired 95 % CI"),
        ("s/correct", "seconds per correct task, ratio to the baseline, paired 95 % CI"),
        ("r", "per-hop reliability (MLE of accuracy = r^depth; free mode only), 95 % CI"),
        ("verdict", "the verdict against the baseline"),
    ]


def figure_rows(doc: Report) -> list[dict[str, str]]:
    rows = []
    for b in doc.runs:
        s = b.single
        p = b.paired
        diff = p.difference if p else (lambda name: None)
        ratio = p.ratio if p else (lambda name: None)
        own = b.is_baseline
        acc, ts = s.model_hop_accuracy, s.task_success
        rel = b.reliability
        energy = s.cost("energy_per_correct_task_j")
        energy_ratio = ratio("energy_per_correct_task_j")
        ekind = (energy.kind if energy else None) or b.energy_kind or ""
        rows.append({
            "run": f"{b.run_id}" + ("" if own or b.baseline_run_id is None else f" ({b.baseline_run_id})"),
            "what": (f"{b.model}@{b.precision}" if b.model and b.precision else b.backend)
                    + ("*" if b.precision_mode == "emulated" else ""),
            "mode": b.mode,
            "n": str(s.instances),
            "hop acc": _share_ci(acc),
            "task ok": _share_ci(ts),
            **fidelity_cells(doc, b),
            "Δ task": "base" if own else pp_ci(diff("task_success")),
            "Δ hop": "base" if own else pp_ci(diff("model_hop_accuracy")),
            "J/correct": (_figure_ci(energy) + f" J {ekind}" if own else rel_ci(energy_ratio)
                          + (f" {ekind}" if energy_ratio and energy_ratio.value is not None else "")),
            "s/correct": _figure_ci(s.cost("seconds_per_correct_task")) + " s" if own
                         else rel_ci(ratio("seconds_per_correct_task")),
            "r": ("-" if rel.r is None else f"{rel.r:.3f}"
                  + (f" [{rel.ci95[0]:.3f}, {rel.ci95[1]:.3f}]" if rel.ci95 else "")),
            "verdict": b.verdict_name or "-",
        })
    return rows


def _share_ci(f: Estimate | None) -> str:
    """``56.2% [45.9, 66.0]`` (a share with its interval)."""
    if f is None:
        return pct(None)
    return pct(f.value) + (" " + ci_text(f.ci95) if f.ci95 else "")


def fidelity_cells(doc: Report, b: RunEvaluation) -> dict[str, str]:
    """The flips and KLD cells of a run's row (agentsim.fidelity), with its noise floor."""
    from agentsim.fidelity.figures import flips_cell, floor_of, kld_cell

    fig = (doc.fidelity or {}).get(str(b.run_id))
    if fig is None:
        return {"flips": "-", "KLD": "-"}
    flips, kld = flips_cell(fig), kld_cell(fig)
    if kld != "-":
        fl, own = floor_of(fig, doc.noise_floors)
        if fl is not None:
            kld += f" (floor {fl:.3g})" if own else f" (floor† {fl:.3g})"
    return {"flips": flips, "KLD": kld}


def floor_lines(doc: Report) -> list[str]:
    """The measured noise floors in words, and each rung's KLD as a multiple of the largest
    (docs/fidelity.md): empty when none was measured."""
    from agentsim.fidelity.figures import floor_text

    floors = doc.noise_floors
    if not floors:
        return []
    out = [f"noise floor (measured: the same rung at another batch size): {floor_text(fl)}" for fl in floors]
    fl = floors[0].kld_mean
    if fl > 0:
        rel = []
        for b in doc.runs:
            fig = (doc.fidelity or {}).get(str(b.run_id))
            d = fig.fidelity if fig is not None else None
            if d is not None and d.kld_mean is not None:
                rel.append(f"r{b.run_id} {b.precision or b.backend} [{b.mode}] {d.kld_mean / fl:.3g}x")
        if rel:
            out.append("KLD against the largest floor: " + ", ".join(rel))
    return out


def scale_lines(doc: Report) -> list[str]:
    """One line per (family, rung, mode, batch) curve and metric: N* or why it was not crossed."""
    out = []
    for cv in doc.scale.curves if doc.scale else []:
        head = f"{cv.family} {cv.precision} [{cv.mode}]" + (f" batch {cv.batch_size}" if cv.batch_size > 1 else "") + (
            f" ({cv.label}: accuracy means nothing)" if isinstance(cv.label, str) else "")
        for metric, ns in cv.n_star.items():
            ci = ns.ci95
            interval = f" [{ci[0] / 1e9:.2f}B, {ci[1] / 1e9:.2f}B]" if ci else ""
            out.append(f"{head}, {metric.replace('_', ' ')}: {ns.text}{interval}")
    return out
