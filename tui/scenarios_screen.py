"""Scenarios: browse bundled families and scenario files; preview a scenario's hop graph and a
sample instance (prompts and expected answers); validation errors inline with file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from agentsim.errors import AgentsimError, ScenarioError

from .base import AgentsimScreen
from .hop_graph import GraphNode, graph_lines
from .scenario_items import scenario_items

__all__ = ["ScenariosScreen", "scenario_items", "error_context"]


def display_path(path: str | None) -> str:
    """A path as a user reads it: relative to the working folder when inside it."""
    if not path:
        return "?"
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return path


def error_context(exc: ScenarioError, radius: int = 2) -> Text:
    """The validation error with the offending file lines around ``exc.line``."""
    out = Text()
    where = display_path(exc.source)
    if exc.line:
        where += f":{exc.line}"
    out.append("invalid scenario ", style="bold red")
    out.append(where + "\n", style="bold")
    loc = ", ".join(x for x in (f"hop '{exc.hop}'" if exc.hop else "", f"field '{exc.field}'" if exc.field else "") if x)
    if loc:
        out.append(loc + ": ", style="yellow")
    out.append(exc.detail + "\n")
    if exc.hint:
        out.append(f"hint: {exc.hint}\n", style="dim")
    if exc.source and exc.line:
        try:
            lines = Path(exc.source).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return out
        out.append("\n")
        lo, hi = max(1, exc.line - radius), min(len(lines), exc.line + radius)
        for n in range(lo, hi + 1):
            mark = "▶" if n == exc.line else " "
            style = "bold red" if n == exc.line else "dim"
            out.append(f"{mark}{n:4d} │ {lines[n - 1]}\n", style=style)
    return out


class ScenariosScreen(AgentsimScreen):
    MODE = "scenarios"
    BINDINGS = [
        # enter on the list launches too (the list's own enter hides a screen binding in the footer)
        Binding("l", "launch", "Launch this"),
        Binding("left_square_bracket", "instance(-1)", "Prev sample", key_display="["),
        Binding("right_square_bracket", "instance(1)", "Next sample", key_display="]"),
        Binding("p", "params", "Params"),
        Binding("r", "reload", "Reload"),
    ]

    @dataclass
    class ItemsLoaded(Message, bubble=False):
        items: list[dict[str, Any]]
        error: str | None = None

    @dataclass
    class PreviewReady(Message, bubble=False):
        key: tuple[Any, ...]
        body: RenderableType
        info: dict[str, Any] = field(default_factory=dict)

    def __init__(self) -> None:
        super().__init__()
        self.items: list[dict[str, Any]] = []
        self.sample_index = 0
        self.params_text = ""
        self._reload = False

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="scenarios-body"):
            yield OptionList(id="scenario-list")
            with Vertical(id="scenario-side"):
                yield Input(placeholder="family params, e.g. depth=5 (enter to apply)",
                            id="scenario-params", compact=True)
                with VerticalScroll(id="scenario-preview"):
                    yield Static("loading scenarios…", id="scenario-preview-body")

    def on_mount(self) -> None:
        self.sub_title = "scenarios"
        self.load_items()

    # loading ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="scenario-items")
    def load_items(self) -> None:
        # each file of a user folder is validated within FILE_BUDGET_S, in a thread of its own
        # that is abandoned when it overruns: a hostile file shows its error, the list goes on
        try:
            items = scenario_items(self.ctx.scenario_dirs, self.ctx.include_bundled)
        except AgentsimError as exc:
            self.post_message(self.ItemsLoaded([], str(exc)))
            return
        self.post_message(self.ItemsLoaded(items))

    @on(ItemsLoaded)
    def _items_loaded(self, message: ItemsLoaded) -> None:
        self._reload = False
        self.items = message.items
        ol = self.query_one("#scenario-list", OptionList)
        ol.clear_options()
        for i, it in enumerate(self.items):
            label = Text()
            if it.get("error"):
                label.append("✗ ", style="bold red")
            else:
                label.append("◆ " if it["kind"] == "family" else "● ", style="cyan" if it["kind"] == "family" else "green")
            label.append(it["name"])
            label.append(f" {it['kind']}", style="dim")
            ol.add_option(Option(label, id=str(i)))
        body = self.query_one("#scenario-preview-body", Static)
        if message.error:
            body.update(Text(message.error, style="red"))
        elif not self.items:
            body.update("no scenarios found")
        else:
            ol.highlighted = 0
            ol.focus()

    @property
    def current(self) -> dict[str, Any] | None:
        ol = self.query_one("#scenario-list", OptionList)
        if ol.highlighted is None or not self.items:
            return None
        return self.items[ol.highlighted]

    @on(OptionList.OptionHighlighted, "#scenario-list")
    def _highlighted(self, _event: OptionList.OptionHighlighted) -> None:
        self.sample_index = 0
        self.params_text = ""
        self.query_one("#scenario-params", Input).value = ""
        self.refresh_preview()

    def refresh_preview(self) -> None:
        item = self.current
        if item is not None:
            self.preview(item, self.sample_index, self.params_text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="scenario-preview")
    def preview(self, item: dict[str, Any], index: int, params_text: str) -> None:
        key = (item["name"], item["path"], index, params_text)
        self.post_message(self.PreviewReady(key, *render_preview(item, index, params_text)))

    @on(PreviewReady)
    def _preview_ready(self, message: PreviewReady) -> None:
        item = self.current
        if item is None or message.key != (item["name"], item["path"], self.sample_index, self.params_text):
            return  # the user moved on while this preview was being built
        self.query_one("#scenario-preview-body", Static).update(message.body)

    # actions ------------------------------------------------------------------------------

    def action_instance(self, step: int) -> None:
        self.sample_index = max(0, self.sample_index + step)
        self.refresh_preview()

    def action_params(self) -> None:
        self.query_one("#scenario-params", Input).focus()

    def action_reload(self) -> None:
        self._reload = True
        self.load_items()

    @on(Input.Submitted, "#scenario-params")
    def _params_submitted(self, event: Input.Submitted) -> None:
        self.params_text = event.value.strip()
        self.sample_index = 0
        self.refresh_preview()
        self.query_one("#scenario-list", OptionList).focus()

    async def action_launch(self) -> None:
        item = self.current
        if item is None:
            return
        if item.get("error"):
            self.notify("this scenario file does not validate; fix it first", severity="warning")
            return
        await self.agentsim_app.open_launch(item["path"] or item["name"])

    @on(OptionList.OptionSelected, "#scenario-list")
    async def _selected(self, _event: OptionList.OptionSelected) -> None:
        await self.action_launch()


def render_preview(item: dict[str, Any], index: int, params_text: str) -> tuple[RenderableType, dict[str, Any]]:
    """The preview of one scenario item: header, hop graph, sample instance (or the error)."""
    from agentsim.launch import parse_params
    from agentsim.scenario import resolve_scenario
    from agentsim.scenario.listing import describe_instance

    ref = item["path"] or item["name"]
    known = item.get("exception")
    if isinstance(known, ScenarioError):
        return error_context(known), {}  # validated once, within its budget: not again
    if item.get("error") and item.get("kind") == "file":
        return Text(f"invalid scenario: {item['error']}", style="red"), {}
    try:
        points = parse_params(params_text.split()) if params_text else [{}]
        if len(points) > 1:
            raise ScenarioError("the preview takes single values (no a..b or x|y sweeps)")
        sc = resolve_scenario(ref, points[0] or None)
        info = describe_instance(sc, seed=0, index=index)
    except ScenarioError as exc:
        return error_context(exc), {}
    except AgentsimError as exc:
        return Text(str(exc), style="red"), {}
    head = Text()
    head.append(info["name"], style="bold")
    head.append(f"  ({item['kind']}{': ' + display_path(item['path']) if item['path'] else ''})\n", style="dim")
    if info["description"]:
        head.append(info["description"] + "\n")
    for warning in item.get("warnings") or []:
        head.append("warning: " + warning + "\n", style="yellow")
    if info["params"]:
        head.append("params: " + ", ".join(f"{k}={v}" for k, v in info["params"].items()) + "\n", style="cyan")
    if item.get("param_help"):
        head.append("  " + "; ".join(f"{k}: {v}" for k, v in item["param_help"].items()) + "\n", style="dim")
    depth = max((h["depth"] for h in info["hops"]), default=0)
    head.append(f"{len(info['hops'])} hops, depth {depth}\n", style="dim")
    nodes = [GraphNode(h["id"], tuple(h["depends_on"]), h["depth"], h["kind"]) for h in info["hops"]]
    graph = Text("\n").join(graph_lines(nodes))
    inst = Text()
    inst.append(f"\nsample instance {index} (seed 0)", style="bold underline")
    inst.append("  [ ] other samples\n", style="dim")
    if info["system"]:
        inst.append("system: ", style="dim")
        inst.append(info["system"].strip() + "\n")
    for h in info["hops"]:
        inst.append(f"\n{h['id']}", style="bold cyan")
        inst.append(f" ({h['kind']}, depth {h['depth']})\n", style="dim")
        inst.append(h["prompt"] + "\n")
        inst.append("expected: ", style="green")
        inst.append(repr(h["expected"]) + "\n")
    return Group(head, graph, inst), info
