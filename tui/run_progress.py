"""Progress of launched runs: one block per run (label, bar, hops done, accuracy so far, ETA)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Label, ProgressBar

from agentsim.engine import Progress

__all__ = ["RunProgress", "RunProgressList"]


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"


class RunProgress(Widget):
    """One run's progress. The ETA is the engine's (elapsed / hops done x hops left)."""

    def __init__(self, run_id: int, title: str) -> None:
        super().__init__(id=f"run-progress-{run_id}", classes="run-progress")
        self.run_id = run_id
        self.title_label = Label(title, classes="run-title", markup=False)
        self.bar = ProgressBar(show_eta=False, show_percentage=True, classes="run-bar")
        self.figures = Label("waiting", classes="run-figures", markup=False)
        self.last: Progress | None = None

    def compose(self) -> ComposeResult:
        yield self.title_label
        yield self.bar
        yield self.figures

    def update_from(self, p: Progress) -> None:
        self.last = p
        self.bar.update(total=max(p.hops_total, 1), progress=p.hops_done)
        acc = f"{p.accuracy:.2f}" if p.accuracy is not None else "-"
        state = p.status if p.status != "running" else f"ETA {_eta(p.eta_s)}"
        self.figures.update(f"{p.hops_done}/{p.hops_total} hops · acc {acc} · {state}")
        self.set_class(p.status == "complete", "-complete")
        self.set_class(p.status in ("failed", "interrupted"), "-failed")


class RunProgressList(VerticalScroll):
    """The runs of the current launch, in creation order."""

    def reset(self) -> None:
        self.remove_children()

    def ensure(self, run_id: int, title: str) -> RunProgress:
        try:
            return self.query_one(f"#run-progress-{run_id}", RunProgress)
        except Exception:  # noqa: BLE001 - NoMatches: first message of this run
            widget = RunProgress(run_id, title)
            self.mount(widget)
            return widget
