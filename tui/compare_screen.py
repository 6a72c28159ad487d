"""Compare: runs side by side against their baselines (the same figures as ``agentsim compare``,
computed by :func:`agentsim.analysis.compare_runs`): ratios with their paired 95 % intervals
(``relative_ci95``), the verdict of each run, the cursor row's verdict line with its evidence,
and model-hop accuracy against depth for the runs that share the cursor row's scenario and mode.

The title names the runs' scenario label (or how many scenarios they span). The baseline is
``evaluate()``'s default (the top rung of the same model, scenario, params and mode) until ``b`` makes the cursor row the baseline of every run; ``d`` returns to the default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from agentsim.analysis.verdict import VERDICT_SHORT, VERDICT_STYLE
from agentsim.console import energy_short, pct
from agentsim.report import failing_baseline_note, scenario_label

if TYPE_CHECKING:
    from agentsim.analysis.results import Evaluation, Recommendation, Verdict
    from agentsim.analysis.summary_results import CompareRow, RunSummary

    from .app import AgentsimApp

__all__ = ["CompareScreen", "energy_cell", "precision_cell", "series_label", "ci_cell", "verdict_cell", "chart_group"]

#: the most lines the accuracy chart draws (each one named in its legend)
CHART_SERIES = 8

_VERDICT_SHORT = {v: (VERDICT_SHORT[v], VERDICT_STYLE[v]) for v in VERDICT_SHORT}



_pct = pct


def _rel(v: float | None, is_base: bool) -> str:
    if is_base:
        return " base"
    return "" if v is None else f" {v:.2f}x"


def energy_cell(summary: CompareRow, base: CompareRow | None = None) -> Text:
    """Energy per correct task with its kind; never an estimate without saying so.

    The ratio to the baseline is shown only when both are of the same kind: a measured figure
    divided by an estimate means nothing.
    """
    kind = summary.energy.kind
    joules = summary.energy_per_correct_task_j
    if kind == "unavailable":
        return Text("unavail.", style="dim")
    if joules is None:
        return Text(f"- ({energy_short(kind)})", style="dim")
    style = "green" if kind == "measured" else "yellow"
    text = Text(f"{joules:.3g} J {energy_short(kind)}", style=style)
    if base is not None and base is not summary and base.energy.kind == kind:
        ratio = (summary.relative or {}).get("energy_per_correct_task_j")
        if ratio is not None:
            text.append(f" {ratio:.2f}x")
    return text


def precision_cell(s: RunSummary, one_model: bool) -> str:
    """What a row ran, precision first (never cut to the model's name): ``q4_0`` when every row
    has one model, else ``model@q4_0``; a simulation's spec (``noisy,p=0.2``)."""
    prec = s.precision
    if not prec:
        return str(s.backend)
    return str(prec) if one_model or not s.model else f"{s.model}@{prec}"


def series_label(s: RunSummary) -> str:
    return f"r{s.run_id} {s.precision or s.backend} {s.mode}"


def ci_cell(ci: list[float] | None, is_base: bool) -> str:
    """The paired 95 % interval of a ratio to the baseline: ``0.17-0.62``."""
    if is_base or not ci:
        return "" if is_base else "-"
    return f"{ci[0]:.2f}-{ci[1]:.2f}"


def verdict_cell(verdict: Verdict | None) -> Text:
    name = verdict.verdict if verdict else "-"
    short, style = _VERDICT_SHORT.get(name, (name, ""))
    return Text(short, style=style)


def chart_group(summaries: list[CompareRow], current: CompareRow | None) -> list[CompareRow]:
    """The runs the chart draws: those of the current row's scenario label and mode (the runs
    that share its instances: one label is one scenario), at most :data:`CHART_SERIES`."""
    if current is None:
        return []
    key = (scenario_label(current), current.mode)
    same = [s for s in summaries if (scenario_label(s), s.mode) == key]
    return same[:CHART_SERIES]


def fidelity_cells(s: CompareRow) -> tuple[str, str]:
    """Flips against the baseline (tasks right->wrong / wrong->right, with the noise floor) and
    the mean KLD (agentsim.fidelity; docs/fidelity.md), beside the accuracy columns."""
    from agentsim.fidelity.figures import flips_cell, kld_cell

    fig = s.fidelity
    if fig is None or fig.flips is None or s.run_id == s.baseline_run_id:
        return "-", "-"
    flips, kld = flips_cell(fig), kld_cell(fig, interval=False)
    return flips, kld


class CompareScreen(Screen[None]):
    BINDINGS = [
        Binding("b", "baseline", "Set baseline"),
        Binding("d", "default_baseline", "Default baseline"),
        Binding("escape", "back", "Back"),
        Binding("t", "trace", "Trace"),  # enter on a row too
    ]

    @dataclass
    class Compared(Message, bubble=False):
        summaries: list[CompareRow]
        #: what to deploy, per scenario (agentsim.analysis.recommend), and the multiplicity line
        recommendations: list[Recommendation] = field(default_factory=list)
        #: the typed analysis behind the rows (its verdicts and multiplicity line)
        evaluation: Evaluation | None = None

    def __init__(self, run_ids: list[int], baseline: int | None = None) -> None:
        super().__init__()
        self.run_ids = run_ids
        #: None: evaluate()'s default (the top rung of each model, scenario, params and mode)
        self.baseline = baseline
        self.summaries: list[CompareRow] = []
        #: each row's verdict, by run id (agentsim.analysis.results.Verdict)
        self.verdicts: dict[int, Verdict | None] = {}

    @property
    def agentsim_app(self) -> AgentsimApp:
        # screens do not import the app (it imports them): the type is for the checker only
        return cast("AgentsimApp", self.app)

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        with Vertical(id="compare-body"):
            yield Static("comparing…", id="compare-title")
            table: DataTable[Text | str] = DataTable(id="compare-table", cursor_type="row")
            yield table
            yield Static("", id="compare-verdict")
            yield Static("", id="compare-recommend")
            yield Static("", id="compare-energy-note")
            yield PlotextPlot(id="compare-chart")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        # the verdict right after what was run, so that 80 columns show both; the intervals last
        for label, width in (("run", 3), ("precision", None), ("mode", 6), ("verdict", 12), ("hop acc", 11),
                             ("task ok", 11), ("energy/task", 17), ("hop x CI", 9), ("task x CI", 9),
                             ("loc/prop", 8), ("s/hop", 12), ("flips", 14), ("KLD", 18)):
            table.add_column(label, width=width)
        self.compare()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare")
    def compare(self) -> None:
        from agentsim.analysis.summary import compare_and_recommend

        app = self.agentsim_app
        store = app.ctx.read_store()
        if store is None:
            return
        rows, recs, ev = compare_and_recommend(store, self.run_ids, baseline=self.baseline)
        self.post_message(self.Compared(rows, recs, ev))

    @on(Compared)
    def _compared(self, message: Compared) -> None:
        self.summaries = message.summaries
        ev = message.evaluation
        self.verdicts = {b.run_id: b.verdict for b in ev.runs} if ev else {}
        rec = Text()
        for r in message.recommendations:
            rec.append("recommend: ", style="bold green" if r.shown else "bold yellow")
            rec.append(r.line + "\n")
        if ev and ev.multiplicity:
            rec.append(ev.multiplicity, style="dim")
        self.query_one("#compare-recommend", Static).update(rec)
        table = self.query_one("#compare-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        by_id = {s.run_id: s for s in self.summaries}
        one_model = len({s.model for s in self.summaries}) <= 1
        for s in self.summaries:
            rel, ci = s.relative, s.relative_ci95 or {}
            is_base = s.is_baseline
            base = by_id.get(s.baseline_run_id)
            ek = s.error_kinds
            spph = "-" if s.wall_s_per_hop is None else f"{s.wall_s_per_hop:.3f}"
            table.add_row(
                Text(str(s.run_id), style="bold" if is_base else ""),
                precision_cell(s, one_model), s.mode,
                verdict_cell(self.verdicts.get(s.run_id)),
                _pct(s.model_hop_accuracy) + _rel(rel.get("model_hop_accuracy"), is_base),
                _pct(s.task_success) + _rel(rel.get("task_success"), is_base),
                energy_cell(s, base),
                ci_cell(ci.get("model_hop_accuracy"), is_base),
                ci_cell(ci.get("task_success"), is_base),
                f"{ek['local']}/{ek['propagated']}" + (f" ✂{ek['truncated']}" if ek.get("truncated") else ""),
                spph + _rel(rel.get("wall_s_per_hop"), is_base),
                *fidelity_cells(s),
                key=str(s.run_id),
            )
        if self.summaries:
            table.move_cursor(row=min(cursor, len(self.summaries) - 1))
        self.query_one("#compare-title", Static).update(self._title())
        kinds = sorted({s.energy.kind for s in self.summaries})
        note = "energy per correct task: " + ", ".join(
            {"measured": "meas. = measured (meter)", "estimated": "est. = estimated (model, not measured)",
             "unavailable": "unavail. = no meter on this machine", "mixed": "mixed = measured and estimated hops, not summed"}[k]
            for k in kinds if k in ("measured", "estimated", "unavailable", "mixed")
        )
        if any(s.error_kinds.get("truncated") for s in self.summaries):
            note += "; ✂N in loc/prop: N hops cut by the token budget (truncated, not local)"
        shown = Text(note, style="dim")
        failing = failing_baseline_note(self.summaries)
        if failing:
            shown = Text(failing + "\n", style="yellow") + shown
        self.query_one("#compare-energy-note", Static).update(shown)
        self._show_current()

    def _title(self) -> Text:
        title = Text("Compare", style="bold")
        bases = list(dict.fromkeys(s.baseline_run_id for s in self.summaries if s.baseline_run_id is not None))
        by_id = {s.run_id: s for s in self.summaries}
        named = ", ".join(f"run {b}" + (f" ({by_id[b].precision or by_id[b].backend} [{by_id[b].mode}])"
                                         if b in by_id else "") for b in bases[:3])
        named += f" +{len(bases) - 3}" if len(bases) > 3 else ""
        labels = list(dict.fromkeys(scenario_label(s) for s in self.summaries))
        if len(labels) == 1:
            title.append(f" · {labels[0]}")
        elif labels:
            shown = ", ".join(labels[:3]) + (f" +{len(labels) - 3}" if len(labels) > 3 else "")
            title.append(f" · {len(labels)} scenarios: {shown}", style="yellow")
        if self.baseline is None:
            title.append(f" · baseline {named or '-'}: top rung of the same model, scenario, mode · b: cursor row")
        else:
            title.append(f" · baseline {named or f'run {self.baseline}'} (chosen with b) · d: default")
        return title

    def _current(self) -> CompareRow | None:
        if not self.summaries:
            return None
        row = self.query_one("#compare-table", DataTable).cursor_row
        return self.summaries[min(max(row, 0), len(self.summaries) - 1)]

    def _show_current(self) -> None:
        cur = self._current()
        line = Text()
        if cur is not None:
            if len({scenario_label(s) for s in self.summaries}) > 1:
                line.append(f"{scenario_label(cur)}: ", style="yellow")
            verdict = self.verdicts.get(cur.run_id)
            short, style = _VERDICT_SHORT.get(verdict.verdict if verdict else "", ("", ""))
            line.append(f"{short}: " if short else "", style=f"bold {style}")
            line.append(verdict.line if verdict else "no verdict")
        self.query_one("#compare-verdict", Static).update(line)
        self._chart(cur)

    @on(DataTable.RowHighlighted, "#compare-table")
    def _highlighted(self, _event: DataTable.RowHighlighted) -> None:
        if self.summaries:
            self._show_current()

    def _chart(self, current: CompareRow | None = None) -> None:
        from textual_plotext import PlotextPlot

        plot = self.query_one("#compare-chart", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        group = chart_group(self.summaries, current)
        where = f"{scenario_label(current)} [{current.mode}]" if current else ""
        plt.title(f"model-hop accuracy by depth: {where}" + (" (free mode compounds errors)"
                                                              if current and current.mode == "free" else ""))
        plt.xlabel("depth (hops)")
        plt.ylim(0, 1)
        depths = sorted({int(d) for s in group for d in s.model_hop_accuracy_by_depth or {}})
        if depths:
            plt.xticks(depths)
        for s in group:
            by_depth = s.model_hop_accuracy_by_depth or {}
            if not by_depth:
                continue
            xs = sorted(int(d) for d in by_depth)
            ys = [by_depth[str(d)].accuracy for d in xs]
            plt.plot(xs, ys, label=series_label(s), marker="braille")
        plot.refresh()

    def action_baseline(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        if not self.summaries:
            return
        self.baseline = self.summaries[table.cursor_row].run_id
        self.compare()

    def action_default_baseline(self) -> None:
        self.baseline = None
        self.compare()

    def action_back(self) -> None:
        self.app.pop_screen()

    async def action_trace(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        if not self.summaries:
            return
        run_id = self.summaries[table.cursor_row].run_id
        app = self.agentsim_app
        app.pop_screen()
        await app.open_trace(run_id)

    @on(DataTable.RowSelected, "#compare-table")
    async def _selected(self, _event: DataTable.RowSelected) -> None:
        await self.action_trace()
