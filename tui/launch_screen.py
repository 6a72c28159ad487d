"""Launch: choose scenarios, parameters, backends/precisions and mode; run them in a thread worker
through the same engine and store as ``agentsim run``; watch progress per run; cancel."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, SelectionList, Static
from textual.widgets.selection_list import Selection
from textual.worker import Worker, WorkerState, get_current_worker

from agentsim.engine import Progress
from agentsim.errors import AgentsimError
from agentsim.store import scenario_label_of

from .base import AgentsimScreen
from .check_list import CheckList
from .run_progress import RunProgressList

__all__ = ["LaunchScreen", "LaunchRequest", "build_request"]


@dataclass(frozen=True)
class LaunchRequest:
    """Everything a launch needs, validated on the UI thread before the worker starts."""

    scenarios: list[tuple[str, str]]  # (reference, kind: family | file)
    params: list[str]
    instances: int
    seed: int
    backends: list[str]
    modes: tuple[str, ...]
    batch_sizes: tuple[int, ...] = (1,)  # one run per size (agentsim.launch.parse_batch_sizes)


def build_request(scenarios: list[tuple[str, str]], params_text: str, instances_text: str, seed_text: str,
                  backends: list[str], specs_text: str, mode: str, batch_text: str = "1") -> LaunchRequest:
    """Validate the form; raises :class:`AgentsimError` with a message for the user."""
    if not scenarios:
        raise AgentsimError("choose at least one scenario (space toggles one in the list)")
    try:
        instances = int(instances_text)
    except ValueError:
        raise AgentsimError(f"instances must be a whole number, not {instances_text!r}") from None
    if instances < 1:
        raise AgentsimError("instances must be at least 1")
    try:
        seed = int(seed_text or "0")
    except ValueError:
        raise AgentsimError(f"seed must be a whole number, not {seed_text!r}") from None
    specs = list(backends) + specs_text.split()
    if not specs:
        raise AgentsimError("choose a backend, or type a spec such as noisy,p=0.2,latency_ms=5")
    modes = ("free", "oracle") if mode == "both" else (mode,)
    from agentsim.launch import parse_batch_sizes

    batch_sizes = parse_batch_sizes(batch_text or "1")
    return LaunchRequest(scenarios, params_text.split(), instances, seed, specs, modes, batch_sizes)


class LaunchScreen(AgentsimScreen):
    MODE = "launch"
    BINDINGS = [
        # priority: they work while typing in a field too (ctrl+x would be the field's "cut")
        Binding("ctrl+r", "start", "Start", priority=True),
        Binding("ctrl+t", "cancel", "Cancel run", priority=True),
    ]

    @dataclass
    class RunCreated(Message, bubble=False):
        run_id: int
        title: str

    @dataclass
    class RunProgressed(Message, bubble=False):
        """Posted after every hop; a newer one replaces a queued older one of the same run."""

        progress: Progress

        def can_replace(self, message: Message) -> bool:
            return (isinstance(message, LaunchScreen.RunProgressed)
                    and message.progress.run_id == self.progress.run_id
                    and message.progress.status == "running")

    @dataclass
    class LaunchFinished(Message, bubble=False):
        run_ids: list[int]
        failures: list[str] = field(default_factory=list)
        cancelled: bool = False
        error: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._launching = False
        self._items: list[dict[str, Any]] = []
        self._preselect: str | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="launch-body"):
            with VerticalScroll(id="launch-form"):
                yield Label("Scenarios (space: toggle)", classes="form-label")
                yield CheckList[str](id="launch-scenarios")
                yield Input(placeholder="params: depth=2..4 width=2 (families)", id="launch-params", compact=True)
                with Horizontal(classes="form-row"):
                    yield Label("instances", classes="form-inline")
                    yield Input("10", id="launch-instances", compact=True, type="integer")
                    yield Label("seed", classes="form-inline")
                    yield Input("0", id="launch-seed", compact=True, type="integer")
                    yield Label("batch", classes="form-inline")
                    yield Input("1", id="launch-batch", compact=True)
                yield Label("Backends / precisions", classes="form-label gap")
                yield CheckList[str](id="launch-backends")
                yield Input(placeholder="more specs: noisy,p=0.2,latency_ms=5 …", id="launch-specs", compact=True)
                with RadioSet(id="launch-mode", compact=True):
                    yield RadioButton("free", value=True, id="mode-free")
                    yield RadioButton("oracle", id="mode-oracle")
                    yield RadioButton("both", id="mode-both")
            with Vertical(id="launch-status"):
                with Horizontal(classes="form-row"):
                    yield Button("Start ^r", id="launch-start", variant="success", compact=True)
                    yield Button("Cancel ^t", id="launch-cancel", variant="error", compact=True, disabled=True)
                yield Static("Choose scenarios and backends, then Start.", id="launch-message")
                yield RunProgressList(id="launch-progress")

    def on_mount(self) -> None:
        self.load_choices()

    @dataclass
    class ChoicesLoaded(Message, bubble=False):
        items: list[dict[str, Any]]
        backends: list[Any]
        error: str | None = None

    @work(thread=True, exclusive=True, exit_on_error=False, group="launch-choices")
    def load_choices(self) -> None:
        try:
            items = self.ctx.scenario_items()
            backends = self.ctx.backend_choices()
        except AgentsimError as exc:
            self.post_message(self.ChoicesLoaded([], [], str(exc)))
            return
        self.post_message(self.ChoicesLoaded(items, backends))

    @on(ChoicesLoaded)
    def _choices_loaded(self, message: ChoicesLoaded) -> None:
        self._items = [it for it in message.items if not it.get("error")]
        sl = self.query_one("#launch-scenarios", SelectionList)
        sl.clear_options()
        for it in self._items:
            ref = it["path"] or it["name"]
            label = Text(it["name"]) + Text(f" {it['kind']}", style="dim")
            sl.add_option(Selection(label, ref, ref == self._preselect))
        bl = self.query_one("#launch-backends", SelectionList)
        bl.clear_options()
        for b in message.backends:
            bl.add_option(Selection(Text(b.label), b.spec, b.selected))
        if message.error:
            self._say(message.error, "red")

    def preselect(self, ref: str) -> None:
        """Tick ``ref`` in the scenario list (from the Scenarios screen's Enter)."""
        self._preselect = ref
        sl = self.query_one("#launch-scenarios", SelectionList)
        for i in range(sl.option_count):
            if sl.get_option_at_index(i).value == ref:
                sl.select(ref)
                sl.highlighted = i
        sl.focus()

    def _say(self, text: str, style: str = "") -> None:
        self.query_one("#launch-message", Static).update(Text(text, style=style))

    def _form(self) -> LaunchRequest:
        kinds = {(it["path"] or it["name"]): it["kind"] for it in self._items}
        chosen = [(ref, kinds.get(ref, "file")) for ref in self.query_one("#launch-scenarios", SelectionList).selected]
        pressed = self.query_one("#launch-mode", RadioSet).pressed_button
        mode = str(pressed.label) if pressed is not None else "free"
        return build_request(
            chosen,
            self.query_one("#launch-params", Input).value,
            self.query_one("#launch-instances", Input).value,
            self.query_one("#launch-seed", Input).value,
            list(self.query_one("#launch-backends", SelectionList).selected),
            self.query_one("#launch-specs", Input).value,
            mode,
            batch_text=self.query_one("#launch-batch", Input).value,
        )

    # start / cancel -----------------------------------------------------------------------

    def action_start(self) -> None:
        if self._launching:
            self.notify("a launch is already running (ctrl+t cancels it)", severity="warning")
            return
        try:
            request = self._form()
        except AgentsimError as exc:
            self._say(str(exc), "red")
            return
        self._cancel.clear()
        self._launching = True
        self.query_one("#launch-start", Button).disabled = True
        self.query_one("#launch-cancel", Button).disabled = False
        self.query_one(RunProgressList).reset()
        self._say(f"starting {len(request.scenarios)} scenario(s) × {len(request.backends)} backend(s) "
                  f"× {len(request.modes)} mode(s)…")
        self.launch(request)

    def action_cancel(self) -> None:
        if self._launching:
            self._cancel.set()
            self._say("cancelling after the current hop…", "yellow")

    @on(Button.Pressed, "#launch-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#launch-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @work(thread=True, exclusive=True, exit_on_error=False, group="launch")
    def launch(self, request: LaunchRequest) -> None:
        """Run the request: the same :func:`agentsim.launch.run_launch` as ``agentsim run``."""
        from agentsim.engine import Cancelled
        from agentsim.launch import Launch, RunControl, run_launch

        worker = get_current_worker()
        created: list[int] = []

        def cancelled() -> bool:
            return self._cancel.is_set() or worker.is_cancelled

        def on_created(run: Any) -> None:
            created.append(run.id)
            self.post_message(self.RunCreated(run.id, f"run {run.id} {scenario_label_of(run)} [{run.mode}] {run.backend}"))

        meter = None
        try:
            # the form's parameters apply to the families (and files naming one) it selected
            launch = Launch(scenarios=[ref for ref, _kind in request.scenarios], backends=request.backends,
                            params=request.params or None, modes=request.modes,
                            instances=request.instances, seed=request.seed, strict_params=False,
                            batch_sizes=request.batch_sizes)
            store = self.ctx.write_store()
            meter = self.ctx.meter_factory()
            result = run_launch(launch, store=store, control=RunControl(
                meter=meter, progress=lambda p: self.post_message(self.RunProgressed(p)),
                cancel=cancelled, on_run_created=on_created))
            store.close()
            self.post_message(self.LaunchFinished(created, [f"{s}: {e}" for s, e in result.failures]))
        except Cancelled:
            self.post_message(self.LaunchFinished(created, cancelled=True))
        except AgentsimError as exc:
            self.post_message(self.LaunchFinished(created, error=str(exc)))
        finally:
            if meter is not None:
                meter.close()

    @on(RunCreated)
    def _run_created(self, message: RunCreated) -> None:
        self.query_one(RunProgressList).ensure(message.run_id, message.title)

    @on(RunProgressed)
    def _progressed(self, message: RunProgressed) -> None:
        p = message.progress
        title = f"run {p.run_id} {p.scenario} [{p.mode}] {p.backend}"
        self.query_one(RunProgressList).ensure(p.run_id, title).update_from(p)

    @on(LaunchFinished)
    def _finished(self, message: LaunchFinished) -> None:
        self._launching = False
        self.query_one("#launch-start", Button).disabled = False
        self.query_one("#launch-cancel", Button).disabled = True
        ids = ", ".join(str(i) for i in message.run_ids) or "none"
        if message.error:
            self._say(message.error, "red")
        elif message.cancelled:
            self._say(f"cancelled; what was recorded is kept (runs {ids}); "
                      "agentsim run --resume RUN_ID finishes a run", "yellow")
        elif message.failures:
            self._say(f"runs {ids} done; failed: " + "; ".join(message.failures), "red")
        else:
            self._say(f"done: runs {ids}. Press 3 to see them in Runs.", "green")
        self.agentsim_app.ctx.read_store()  # the database exists now: open the reader

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        # a crash (not a user error) ends the launch too; the app shows the notification
        if event.worker.group == "launch" and event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._launching = False
            self.query_one("#launch-start", Button).disabled = False
            self.query_one("#launch-cancel", Button).disabled = True
            self._say(f"the launch stopped: {event.worker.error or 'cancelled'}", "red")

    @property
    def running(self) -> bool:
        return self._launching
