"""The report in the terminal (rich): verdicts first, then the facts, the rungs and a table of
the figures with their intervals. Readable at 80 columns (the table folds its cells)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentsim.console import compact_table, esc

from .common import METHODS_NOTE, figure_rows, floor_lines, header_items, scale_lines, verdict_items

if TYPE_CHECKING:
    from agentsim.analysis.results import RunEvaluation

    from .document import Report

__all__ = ["render_terminal", "verdict_lines", "summary_table", "recommendation_texts"]


def _p(v: Any) -> str:
    return "-" if v is None else f"{v:.2g}"


def summary_table(doc: Report) -> Any:
    """The one-screen summary: one row per rung and mode (verdict, task success Δ with its interval,
    adjusted p, cost ratio with its interval); the evidence lines follow further down."""
    from agentsim.analysis.results import Estimate, present

    from .common import pp_ci, rel_ci

    runs = doc.runs
    by_id = {b.run_id: b for b in runs}
    models = {b.model for b in runs}
    one_model = len(models) == 1 and None not in models
    batches = {b.batch_size for b in runs}
    scenarios = {b.scenario_label or b.scenario for b in runs}

    def what(b: RunEvaluation | None) -> str:
        # one model: its precision alone (the model is named in the title); else model@precision
        if b is None:
            return "?"
        name = (b.precision if one_model and b.precision else
                f"{b.model}@{b.precision}" if b.model and b.precision else b.backend)
        return name + (f" B{b.batch_size}" if len(batches) > 1 else "")

    compared = [b for b in runs if not (b.is_baseline or b.verdict_name == "baseline")]
    base_names = {what(by_id.get(b.baseline_run_id)) for b in compared}  # type: ignore[arg-type]
    one_base = len(base_names) == 1

    title = "summary (each run against its baseline; task success is the primary figure)"
    if one_model or one_base:
        title += "\n" + " · ".join(([f"model {next(iter(models))}"] if one_model else [])
                                   + ([f"baseline {next(iter(base_names))}"] if one_base else []))
    t = compact_table(title=esc(title), caption=esc(doc.evaluation.multiplicity or ""))
    columns = [("run", 0)] + ([("scenario", 16)] if len(scenarios) > 1 else []) + [
        ("mode", 6), ("verdict", 15), ("Δ task success", 23), ("adj. p", 6), ("cost ratio", 20)]
    for c, w in columns:  # names and words never fold; the intervals do, at 80 columns
        t.add_column(c, overflow="fold", max_width=None if c == "run" else w,
                     no_wrap=c in ("run", "scenario", "mode", "verdict", "adj. p"))
    for b in compared:
        sm = b.verdict.summary if b.verdict else None
        cost = sm.cost if sm else None
        cost_txt = "not assessed" if not cost else (rel_ci(Estimate(cost.value, cost.ci95))
                                                    + (" J" if cost.kind != "time" else " s"))
        diff = Estimate(sm.difference, sm.ci95) if sm and present(sm.difference) else None
        p_adj = sm.p_adjusted if sm and present(sm.p_adjusted) else None
        base_id = b.baseline_run_id
        base = "" if one_base else f" {what(by_id.get(base_id))}"  # type: ignore[arg-type]
        cells = [esc(f"r{b.run_id} {what(b)} vs r{base_id}{base}")]
        if len(scenarios) > 1:
            cells.append(esc(b.scenario_label or b.scenario or "-"))
        t.add_row(*cells, esc(b.mode), esc(b.verdict_name or "-"), esc(pp_ci(diff)), _p(p_adj), esc(cost_txt))
    return t


def recommendation_texts(doc: Report) -> list[Any]:
    from rich.text import Text

    return [Text("recommend: " + r.line) for r in doc.recommendations]


def verdict_lines(doc: Report, *, include_baselines: bool = False) -> list[Any]:
    """Rich Text lines: one per run against its baseline (the baseline's own line on request)."""
    from rich.text import Text

    out = []
    for v in verdict_items(doc):
        if v["verdict"] == "baseline" and not include_baselines:
            continue
        t = Text()
        t.append(f"{v['verdict']}", style=f"bold {v['style']}")
        t.append(f"  {v['line']}")
        for d in v["details"]:
            t.append(f"\n    {d}", style="dim")
        out.append(t)
    return out


def render_terminal(doc: Report) -> list[Any]:
    """Renderables to print in order (``console.print(*render_terminal(doc))``)."""
    from rich.rule import Rule
    from rich.table import Table
    from rich.text import Text

    rep = doc.report
    out: list[Any] = [Rule(f"[bold]{esc(rep['title'])}"), summary_table(doc), *recommendation_texts(doc),
                      Text("\nverdicts and their evidence", style="bold")]
    lines = verdict_lines(doc)
    out += lines or [Text("only baselines: nothing to compare (give runs at other precisions)", style="dim")]
    facts = Table.grid(padding=(0, 1))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    for label, text in header_items(doc):
        facts.add_row(label, esc(text))
    out += [Text(""), facts]
    if rep["rungs"]:
        out.append(Text("\nwhat each rung is, relative to its source", style="bold"))
        out += [Text(f"- {r['text']}") for r in rep["rungs"]]
    t = compact_table(title="figures (95 % intervals; Δ and x are paired against the run's baseline)",
                      caption=esc(METHODS_NOTE))
    for c, w in (("run", 14), ("hop acc", 12), ("task ok", 12), ("Δ task", 14), ("J/correct", 12), ("verdict", 12)):
        t.add_column(c, overflow="fold", max_width=w)
    for b, row in zip(doc.runs, figure_rows(doc), strict=True):
        base = b.baseline_run_id
        who = f"r{b.run_id} {row['what']} [{b.mode}]" + ("" if b.is_baseline or base is None else f" vs r{base}")
        row["J/correct"] = row["J/correct"].replace(" estimated", " est.").replace(" measured", " meas.")
        t.add_row(esc(who), *(esc(_two_lines(row[c])) for c in ("hop acc", "task ok", "Δ task", "J/correct")),
                  esc(row["verdict"]))
    out += [Text(""), t]
    ft = _fidelity_table(doc)
    if ft is not None:
        out += [Text(""), ft]
        out += [Text(esc(x)) for x in floor_lines(doc)]
    if scale_lines(doc):
        out.append(Text("\nthe scale axis (N*)", style="bold"))
        out += [Text(f"- {x}") for x in scale_lines(doc)]
    return out


def _fidelity_table(doc: Report) -> Any:
    """Flips and KLD beside each run's hop accuracy (docs/fidelity.md); None when no run has a
    reference other than itself."""
    rows = [(b, row) for b, row in zip(doc.runs, figure_rows(doc), strict=True)
            if row.get("flips", "-") != "-" or row.get("KLD", "-") != "-"]
    if not rows:
        return None
    t = compact_table(title="fidelity beside accuracy (flips against the baseline; KLD teacher-forced)",
                      caption="flips: tasks right->wrong / wrong->right; floor: the same rung at batch 1. KLD: mean "
                              "KL(baseline || run) per completion token, 95 % bootstrap CI; supporting evidence, "
                              "not a verdict (docs/fidelity.md).")
    for c, w in (("run", 22), ("hop acc", 12), ("flips", 14), ("KLD", 28)):
        t.add_column(c, overflow="fold", max_width=w)
    for b, row in rows:
        t.add_row(esc(f"r{b.run_id} {row['what']} [{b.mode}]"), esc(_two_lines(row["hop acc"])),
                  esc(row["flips"]), esc(row["KLD"]))
    return t


def _two_lines(cell: str) -> str:
    """``56.2% [45.9, 66.0]`` -> value on one line, interval on the next (folds cleanly)."""
    head, sep, tail = cell.partition(" [")
    if not sep:
        return cell
    rest = tail.split("]", 1)
    return f"{head}\n[{rest[0]}]" + (rest[1] if len(rest) > 1 else "")
