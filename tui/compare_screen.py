"""Compare: runs side by side against a chosen baseline (the same figures as ``agentsim compare``,
computed by :func:`agentsim.analysis.compare_runs`), and accuracy against depth per run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

__all__ = ["CompareScreen", "energy_cell", "series_label"]

_KIND_SHORT = {"measured": "meas.", "estimated": "est.", "mixed": "mixed"}


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _rel(v: float | None, is_base: bool) -> str:
    if is_base:
        return " base"
    return "" if v is None else f" {v:.2f}x"


def energy_cell(summary: dict[str, Any], base: dict[str, Any] | None = None) -> Text:
    """Energy per correct task with its kind; never an estimate without saying so.

    The ratio to the baseline is shown only when both are of the same kind: a measured figure
    divided by an estimate means nothing.
    """
    kind = summary["energy"]["kind"]
    joules = summary["energy_per_correct_task_j"]
    if kind == "unavailable":
        return Text("unavail.", style="dim")
    if joules is None:
        return Text(f"- ({_KIND_SHORT.get(kind, kind)})", style="dim")
    style = "green" if kind == "measured" else "yellow"
    text = Text(f"{joules:.3g} J {_KIND_SHORT.get(kind, kind)}", style=style)
    if base is not None and base is not summary and base["energy"]["kind"] == kind:
        ratio = summary.get("relative", {}).get("energy_per_correct_task_j")
        if ratio is not None:
            text.append(f" {ratio:.2f}x")
    return text


def series_label(s: dict[str, Any]) -> str:
    return f"r{s['run_id']} {s['precision'] or s['backend']} {s['mode']}"


class CompareScreen(Screen[None]):
    BINDINGS = [
        Binding("b", "baseline", "Set baseline"),
        Binding("escape", "back", "Back"),
        Binding("t", "trace", "Trace"),  # enter on a row too
    ]

    @dataclass
    class Compared(Message, bubble=False):
        summaries: list[dict[str, Any]]

    def __init__(self, run_ids: list[int], baseline: int | None = None) -> None:
        super().__init__()
        self.run_ids = run_ids
        self.baseline = baseline if baseline is not None else run_ids[0]
        self.summaries: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        with Vertical(id="compare-body"):
            yield Static("comparing…", id="compare-title")
            table: DataTable[Text | str] = DataTable(id="compare-table", cursor_type="row")
            yield table
            yield Static("", id="compare-energy-note")
            yield PlotextPlot(id="compare-chart")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        for label, width in (("run", 4), ("backend", 16), ("mode", 6), ("hop acc", 12), ("task ok", 12),
                             ("energy/task", 17), ("local", 5), ("prop.", 5), ("s/hop", 12)):
            table.add_column(label, width=width)
        self.compare()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare")
    def compare(self) -> None:
        from agentsim.analysis import compare_runs

        app = self.agentsim_app
        store = app.ctx.read_store()
        if store is None:
            return
        self.post_message(self.Compared(compare_runs(store, self.run_ids, baseline=self.baseline)))

    @on(Compared)
    def _compared(self, message: Compared) -> None:
        self.summaries = message.summaries
        table = self.query_one("#compare-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        base = next((s for s in self.summaries if s["run_id"] == self.baseline), None)
        for s in self.summaries:
            rel = s["relative"]
            is_base = s["run_id"] == s["baseline_run_id"]
            ek = s["error_kinds"]
            spph = "-" if s["wall_s_per_hop"] is None else f"{s['wall_s_per_hop']:.3f}"
            table.add_row(
                Text(str(s["run_id"]), style="bold" if is_base else ""),
                s["backend"][:16], s["mode"],
                _pct(s["accuracy"]) + _rel(rel["accuracy"], is_base),
                _pct(s["task_success"]) + _rel(rel["task_success"], is_base),
                energy_cell(s, base),
                str(ek["local"]), str(ek["propagated"]),
                spph + _rel(rel["wall_s_per_hop"], is_base),
                key=str(s["run_id"]),
            )
        if self.summaries:
            table.move_cursor(row=min(cursor, len(self.summaries) - 1))
        title = Text("Compare", style="bold")
        if base is not None:
            title.append(f" · baseline run {base['run_id']} ({base['backend']} [{base['mode']}]"
                         f"{', ' + base['precision'] if base['precision'] else ''}) · b: baseline = cursor row")
        self.query_one("#compare-title", Static).update(title)
        kinds = sorted({s["energy"]["kind"] for s in self.summaries})
        note = "energy per correct task: " + ", ".join(
            {"measured": "meas. = measured (meter)", "estimated": "est. = estimated (model, not measured)",
             "unavailable": "unavail. = no meter on this machine", "mixed": "mixed = measured and estimated hops, not summed"}[k]
            for k in kinds if k in ("measured", "estimated", "unavailable", "mixed")
        )
        self.query_one("#compare-energy-note", Static).update(Text(note, style="dim"))
        self._chart()

    def _chart(self) -> None:
        from textual_plotext import PlotextPlot

        plot = self.query_one("#compare-chart", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("hop accuracy by depth (free mode compounds errors)")
        plt.xlabel("depth (hops)")
        plt.ylim(0, 1)
        depths = sorted({int(d) for s in self.summaries for d in s["accuracy_by_depth"]})
        if depths:
            plt.xticks(depths)
        for s in self.summaries:
            by_depth = s["accuracy_by_depth"]
            if not by_depth:
                continue
            xs = [int(d) for d in by_depth]
            ys = [v["accuracy"] for v in by_depth.values()]
            plt.plot(xs, ys, label=series_label(s), marker="braille")
        plot.refresh()

    def action_baseline(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        if not self.summaries:
            return
        self.baseline = self.summaries[table.cursor_row]["run_id"]
        self.compare()

    def action_back(self) -> None:
        self.app.pop_screen()

    async def action_trace(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        if not self.summaries:
            return
        run_id = self.summaries[table.cursor_row]["run_id"]
        app = self.agentsim_app
        app.pop_screen()
        await app.open_trace(run_id)

    @on(DataTable.RowSelected, "#compare-table")
    async def _selected(self, _event: DataTable.RowSelected) -> None:
        await self.action_trace()
