"""Runs: every run in the database (SQL aggregates, refreshed while other processes write);
mark several and compare them, or open one in the Trace inspector."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Static

from agentsim.console import clip, params_text, pct
from agentsim.store import scenario_label_of

from .base import AgentsimScreen
from .data import RunRow, run_rows

__all__ = ["RunsScreen"]

_STATUS_STYLE = {"complete": "green", "running": "cyan", "failed": "red", "interrupted": "yellow",
                 "incomplete": "yellow"}


def clip_middle(text: str, n: int) -> str:
    """``text`` in ``n`` characters, cut in the middle: a scenario label keeps both its family
    and its end, where the parameters and any ``#abc123`` that tell it apart are."""
    if len(text) <= n:
        return text
    head = (n - 1) // 2
    return text[:head] + "…" + text[len(text) - (n - 1 - head):]


class RunsScreen(AgentsimScreen):
    MODE = "runs"
    BINDINGS = [
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("t", "trace", "Trace"),  # enter on a row too
        Binding("a", "mark_batch", "Mark batch"),
        Binding("r", "refresh", "Refresh"),
    ]

    @dataclass
    class RowsLoaded(Message, bubble=False):
        rows: list[RunRow]
        no_db: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[RunRow] = []
        self.marked: list[int] = []
        self._timer: Timer | None = None
        self._keys: list[tuple[object, ...]] | None = None

    def compose_body(self) -> ComposeResult:
        table: DataTable[Text | str] = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="runs-current")
        yield Static("", id="runs-status")

    def on_mount(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        # fixed widths: auto-sized columns can be measured before the rows arrive
        for label, key, width in [(" ", "mark", 1), ("id", "id", 4), ("scenario", "scenario", 16),
                                  ("backend", "backend", 12), ("mode", "mode", 6), ("status", "status", 10),
                                  ("acc", "acc", 4), ("task", "task", 4), ("hops", "hops", 9),
                                  ("prec.", "precision", 7), ("created", "created", 11)]:
            table.add_column(label, key=key, width=width)
        # the rows are loaded by on_screen_resume, which follows the first mount too

    def on_screen_resume(self) -> None:
        self.load_rows()
        if self._timer is None:
            self._timer = self.set_interval(self.ctx.refresh_s, self.load_rows)
        else:
            self._timer.resume()

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs")
    def load_rows(self) -> None:
        store = self.ctx.read_store()
        if store is None:
            self.post_message(self.RowsLoaded([], no_db=True))
            return
        self.post_message(self.RowsLoaded(run_rows(store)))

    @on(RowsLoaded)
    def _rows_loaded(self, message: RowsLoaded) -> None:
        keys = [r.key() for r in message.rows]
        if keys != self._keys:
            self._keys = keys
            self.rows = message.rows
            self._fill()
        self._status(message.no_db)

    def _fill(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        cursor_key = self.current_run_id
        table.clear()
        for row in self.rows:
            r = row.run
            status = Text(row.status, style=_STATUS_STYLE.get(row.status, ""))
            table.add_row(
                Text("●", style="bold yellow") if r.id in self.marked else " ",
                str(r.id), clip_middle(scenario_label_of(r), 16), clip(r.backend, 12), r.mode, status,
                pct(row.accuracy, 0), pct(row.task_success, 0),
                f"{row.hops_recorded}/{row.hops_expected}", r.precision or "-",
                r.created_at.strftime("%m-%d %H:%M"),
                key=str(r.id),
            )
        if cursor_key is not None and any(row.run.id == cursor_key for row in self.rows):
            table.move_cursor(row=table.get_row_index(str(cursor_key)))
        self._show_current()

    @on(DataTable.RowHighlighted, "#runs-table")
    def _highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_current()

    def _show_current(self) -> None:
        """The cursor row's whole scenario label, backend and params (the table clips them)."""
        rid = self.current_run_id
        row = next((r for r in self.rows if r.run.id == rid), None)
        line = Text()
        if row is not None:
            r = row.run
            line.append(f"run {r.id}: ", style="bold")
            line.append(f"{scenario_label_of(r)} · {r.backend} [{r.mode}]")
            p = params_text(r.params)
            if p:
                line.append(f" · {p}", style="dim")
        self.query_one("#runs-current", Static).update(line)

    def _status(self, no_db: bool = False) -> None:
        now = self.ctx.clock().strftime("%H:%M:%S")
        if no_db:
            text = f"no database yet at {self.ctx.db}: launch a run (press 2)"
        else:
            marked = f" · marked: {', '.join(map(str, self.marked))}" if self.marked else ""
            text = f"{len(self.rows)} runs{marked} · refreshed {now} · space marks, c compares"
        self.query_one("#runs-status", Static).update(text)

    @property
    def current_run_id(self) -> int | None:
        table = self.query_one("#runs-table", DataTable)
        if not self.rows or table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - cursor outside the table
            return None
        return int(key.value) if key.value is not None else None

    # actions ------------------------------------------------------------------------------

    def _set_mark(self, run_id: int, on_: bool) -> None:
        if on_ and run_id not in self.marked:
            self.marked.append(run_id)
        elif not on_ and run_id in self.marked:
            self.marked.remove(run_id)
        table = self.query_one("#runs-table", DataTable)
        table.update_cell(str(run_id), "mark", Text("●", style="bold yellow") if on_ else " ")

    def action_mark(self) -> None:
        rid = self.current_run_id
        if rid is not None:
            self._set_mark(rid, rid not in self.marked)
            self._status()

    def action_mark_batch(self) -> None:
        """Mark every run launched together with the current one (same batch)."""
        rid = self.current_run_id
        row = next((r for r in self.rows if r.run.id == rid), None)
        if row is None or not row.run.launch_id:
            return
        for r in self.rows:
            if r.run.launch_id == row.run.launch_id:
                self._set_mark(r.run.id, True)
        self._status()

    def action_refresh(self) -> None:
        self._keys = None
        self.load_rows()

    def action_compare(self) -> None:
        ids = list(self.marked)
        if not ids and self.current_run_id is not None:
            ids = [self.current_run_id]
        if not ids:
            self.notify("no runs to compare", severity="warning")
            return
        from .compare_screen import CompareScreen

        self.app.push_screen(CompareScreen(ids))

    async def action_trace(self) -> None:
        rid = self.current_run_id
        if rid is not None:
            await self.agentsim_app.open_trace(rid)

    @on(DataTable.RowSelected, "#runs-table")
    async def _row_selected(self, _event: DataTable.RowSelected) -> None:
        await self.action_trace()
