"""The app and its factory :func:`make_app`, shared by ``agentsim tui`` and the tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from textual import on
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from agentsim.errors import AgentsimError
from agentsim.measure import EnergyMeter

from .context import AppContext, BackendChoice

__all__ = ["AgentsimApp", "make_app"]


class AgentsimApp(App[int]):
    """Four screens, one per mode (each keeps its own state while another is shown)."""

    CSS_PATH = ["app.tcss"]
    TITLE = "agentsim"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("1", "switch_mode('scenarios')", "Scenarios", show=False),
        Binding("2", "switch_mode('launch')", "Launch", show=False),
        Binding("3", "switch_mode('runs')", "Runs", show=False),
        Binding("4", "switch_mode('trace')", "Trace", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, ctx: AppContext, *, start: str | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self._start = start
        from .launch_screen import LaunchScreen
        from .runs_screen import RunsScreen
        from .scenarios_screen import ScenariosScreen
        from .trace_screen import TraceScreen

        self.add_mode("scenarios", ScenariosScreen)
        self.add_mode("launch", LaunchScreen)
        self.add_mode("runs", RunsScreen)
        self.add_mode("trace", TraceScreen)

    def on_mount(self) -> None:
        start = self._start or ("runs" if self.ctx.read_store() is not None else "scenarios")
        self.switch_mode(start)

    def on_unmount(self) -> None:
        self.ctx.close()

    def action_help(self) -> None:
        from .help_screen import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.key_groups()))

    def key_groups(self) -> list[tuple[str, list[Any]]]:
        """Every screen's keys, grouped, for the Help screen (the app knows its screens)."""
        from .base import AgentsimScreen
        from .compare_screen import CompareScreen
        from .launch_screen import LaunchScreen
        from .runs_screen import RunsScreen
        from .scenarios_screen import ScenariosScreen
        from .trace_screen import TraceScreen

        return [
            ("everywhere", [*self.BINDINGS, *AgentsimScreen.BINDINGS]),
            ("Scenarios", list(ScenariosScreen.BINDINGS)),
            ("Launch", list(LaunchScreen.BINDINGS)),
            ("Runs", list(RunsScreen.BINDINGS)),
            ("Compare", list(CompareScreen.BINDINGS)),
            ("Trace", list(TraceScreen.BINDINGS)),
        ]

    async def open_trace(self, run_id: int, instance: int | None = None, hop: str | None = None) -> None:
        """Show a run (and optionally an instance and hop) in the Trace screen."""
        from .trace_screen import TraceScreen

        await self.switch_mode("trace")
        screen = self.get_screen_stack("trace")[0]
        assert isinstance(screen, TraceScreen)
        screen.show_run(run_id, instance=instance, hop=hop)

    async def open_launch(self, scenario: str) -> None:
        """Preselect a scenario in the Launch screen."""
        from .launch_screen import LaunchScreen

        await self.switch_mode("launch")
        screen = self.get_screen_stack("launch")[0]
        assert isinstance(screen, LaunchScreen)
        screen.preselect(scenario)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """Every worker failure ends here: a user error is a notification, never a crash."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(error, SQLAlchemyError):
            orig = getattr(error, "orig", None) or error
            self.notify(f"cannot read {self.ctx.db}: {orig} (a database written by another agentsim "
                        "version?)", title="database error", severity="error", timeout=15)
        elif isinstance(error, AgentsimError):
            self.notify(str(error), title="error", severity="error", timeout=10)
        else:
            self.notify(f"{type(error).__name__}: {error}", title="internal error (a bug in agentsim)",
                        severity="error", timeout=15)


def make_app(
    db: str,
    scenario_dirs: list[str] | None = None,
    *,
    include_bundled: bool = True,
    clock: Callable[[], datetime] | None = None,
    meter_factory: Callable[[], EnergyMeter] | None = None,
    backend_choices: Callable[[], list[BackendChoice]] | None = None,
    refresh_s: float = 2.0,
    start: str | None = None,
) -> AgentsimApp:
    """The app for ``db``; the keyword arguments are the injectable boundaries (tests fix them)."""
    kwargs: dict[str, Any] = {"include_bundled": include_bundled, "refresh_s": refresh_s}
    if clock is not None:
        kwargs["clock"] = clock
    if meter_factory is not None:
        kwargs["meter_factory"] = meter_factory
    if backend_choices is not None:
        kwargs["backend_choices"] = backend_choices
    ctx = AppContext(db=str(db), scenario_dirs=list(scenario_dirs or []), **kwargs)
    return AgentsimApp(ctx, start=start)
