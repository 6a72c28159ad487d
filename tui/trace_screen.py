"""Trace inspector: pick a run and an instance; the hop graph coloured by outcome; per hop the
prompt, completion, parsed vs expected answer, error kind, timings and energy. The instance's
system prompt (the context every hop saw, e.g. a price list) sits above the hop, collapsed; ``s``
opens it. ``r`` jumps from a failed hop to its root-cause hop; ``o`` steps to the same hop in the
other mode (free/oracle)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Collapsible, OptionList, Select, Static
from textual.widgets.option_list import Option

from agentsim.console import clip
from agentsim.store import HopRead, InstanceRead, RunRead, scenario_label_of

from .base import AgentsimScreen
from .data import (
    ERROR_MARK,
    ERROR_STYLE,
    InstancePage,
    counterpart_run,
    energy_text,
    get_run,
    instance_fidelity,
    instance_hops,
    instance_page,
)
from .hop_graph import GraphNode, HopGraph

__all__ = ["TraceScreen", "hop_detail"]

PAGE = 200


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.1f} ms" if v < 1 else f"{v:.2f} s"


_clip = clip


def _value(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else repr(v)


def fidelity_text(f: Any) -> Text:
    """One hop's fidelity row (agentsim.fidelity): KLD, same-top share and where the reference's
    and this rung's distributions parted along the completion."""
    if f.status not in ("exact", "topk"):
        return Text(f"{f.status}: {f.reason or '-'} (vs run {f.reference_run_id})", style="dim")
    where = ("never parted" if f.parted_at is None
             else f"parted at token {f.parted_at + 1} of {f.positions}")
    est = " (top-k estimate)" if f.status == "topk" else ""
    return Text(f"KLD {f.kld_mean:.3g}{est} (max {f.kld_max:.3g} at token {(f.kld_max_at or 0) + 1}) · same top "
                f"{100 * (f.same_top or 0):.0f}% · {where} · vs run {f.reference_run_id}",
                style="" if f.parted_at is None else "yellow")


def hop_detail(h: HopRead, counterpart: RunRead | None = None, fidelity: Any = None) -> RenderableType:
    """Everything recorded for one hop, as text (no markup: completions are shown verbatim)."""
    style = ERROR_STYLE.get(h.error_kind, "")
    head = Text()
    head.append(f"{ERROR_MARK.get(h.error_kind, '·')} {h.hop_id}", style="bold " + style)
    head.append(f"  {h.kind}, depth {h.depth}", style="dim")
    if h.parents:
        head.append("  ← " + ", ".join(h.parents), style="dim")
        if h.inputs is not None and list(h.inputs) != list(h.parents):
            # attribution judged it by these only; the rest of depends_on is prompting context
            head.append("  (uses " + (", ".join(h.inputs) or "none") + ")", style="dim")
    head.append("\noutcome: ")
    head.append(h.error_kind, style=style)
    head.append("  correct: " + ("yes" if h.correct else "no"))
    if h.root_cause:
        roots = ", ".join(h.root_cause)
        head.append("\nroot cause: ")
        head.append(roots if h.root_cause != [h.hop_id] else f"{roots} (this hop)", style="bold")
        if h.root_cause != [h.hop_id]:
            head.append("  (r: jump)", style="dim")
    if h.error_detail:
        head.append("\ndetail: ", style="dim")
        head.append(h.error_detail)
    answers = Table.grid(padding=(0, 1))
    answers.add_column(style="dim", no_wrap=True)
    answers.add_column()
    answers.add_row("parsed", Text(_value(h.parsed) if h.parse_error is None else f"(parse failed: {h.parse_error})",
                                   style="" if h.correct else "red"))
    answers.add_row("expected", Text(_value(h.expected), style="green"))
    if not h.parents_ok:
        cgi = {True: "yes", False: "no", None: "-"}[h.correct_given_inputs]
        answers.add_row("given inputs", Text(f"{_value(h.expected_given_inputs)} (right given its inputs: {cgi})"))
    figures = Table.grid(padding=(0, 1))
    figures.add_column(style="dim", no_wrap=True)
    figures.add_column()
    figures.add_row("tokens", f"prompt {_fmt(h.prompt_tokens)} · completion {_fmt(h.completion_tokens)} · "
                              f"cached {_fmt(h.cached_tokens)}"
                              + (f" · stopped: {h.stop_reason}" if h.stop_reason else ""))
    figures.add_row("time", f"prefill {_secs(h.prefill_s)} · decode {_secs(h.decode_s)} · "
                            f"ttft {_secs(h.ttft_s)} · wall {_secs(h.wall_s)}")
    figures.add_row("energy", Text(energy_text(h.energy_j, h.energy_kind, h.energy_source),
                                   style="green" if h.energy_kind == "measured" else
                                   "yellow" if h.energy_kind == "estimated" else "dim"))
    if h.peak_mem_bytes:
        figures.add_row("peak mem", f"{h.peak_mem_bytes / 2**20:.1f} MiB")
    if fidelity is not None:
        figures.add_row("fidelity", fidelity_text(fidelity))
    prompt = Text()
    prompt.append("prompt\n", style="bold underline")
    prompt.append((h.prompt or "(none)") + "\n")
    prompt.append("completion\n", style="bold underline")
    prompt.append(h.completion if h.completion is not None else "(none)")
    parts: list[RenderableType] = [head, Text(""), answers, Text(""), prompt, Text(""), figures]
    if counterpart is not None:
        parts.append(Text(f"\no: same hop in {counterpart.mode} mode (run {counterpart.id})", style="dim"))
    return Group(*parts)


def backend_text(backend: str, precision: str | None) -> str:
    """The run's backend spec, with ``@precision`` added only where the spec does not say it
    (a default rung): ``llama:m@q4_0`` once, not ``llama:m@q4_0 @q4_0``."""
    if not precision or re.search(rf"@{re.escape(precision)}(,|$)", backend):
        return backend
    return f"{backend} @{precision}"


class TraceScreen(AgentsimScreen):
    MODE = "trace"
    BINDINGS = [
        Binding("r", "root_cause", "Root cause"),
        Binding("o", "other_mode", "Free/oracle"),
        Binding("f", "failed_only", "Failed only"),
        Binding("n", "next_failed", "Next failed"),
        Binding("s", "toggle_system", "System prompt"),
        Binding("left_square_bracket", "page(-1)", "Prev page", key_display="[", show=False),
        Binding("right_square_bracket", "page(1)", "Next page", key_display="]", show=False),
    ]

    @dataclass
    class RunsListed(Message, bubble=False):
        runs: list[RunRead]

    @dataclass
    class RunLoaded(Message, bubble=False):
        run: RunRead
        page: InstancePage
        counterpart: RunRead | None
        instance: int | None
        hop: str | None
        token: int = 0

    @dataclass
    class InstanceLoaded(Message, bubble=False):
        run_id: int
        instance: InstanceRead | None
        index: int
        hops: list[HopRead]
        hop: str | None
        token: int = 0
        fidelity: dict[str, Any] = field(default_factory=dict)

    def __init__(self) -> None:
        super().__init__()
        self.run: RunRead | None = None
        self.counterpart: RunRead | None = None
        self.page: InstancePage | None = None
        self.instance: InstanceRead | None = None
        self.instance_index: int | None = None
        self.hops: dict[str, HopRead] = {}
        self.fidelity: dict[str, Any] = {}
        self.failed_only = False
        self._listing = False
        self._loading = False
        self._pending: tuple[int, int | None, str | None] | None = None
        self._run_token = 0
        self._instance_token = 0
        self._options: list[tuple[str, int]] = []

    def compose_body(self) -> ComposeResult:
        yield Static("pick a run (or press enter on one in Runs)", id="trace-head")
        with Horizontal(id="trace-body"):
            with Vertical(id="trace-left"):
                yield Select[int]([], prompt="run", id="trace-run", compact=True, allow_blank=True)
                yield OptionList(id="trace-instances")
                yield HopGraph(id="trace-graph")
            with VerticalScroll(id="trace-detail"):
                # the context every hop of the instance saw; collapsed so the hop stays in view
                with Collapsible(title="system prompt", collapsed=True, id="trace-system"):
                    yield Static("", id="trace-system-text")
                yield Static("", id="trace-hop")

    def on_screen_resume(self) -> None:
        self.list_runs()

    # loading ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="trace-runs")
    def list_runs(self) -> None:
        store = self.ctx.read_store()
        self.post_message(self.RunsListed(store.list_runs(limit=1000) if store is not None else []))

    @on(RunsListed)
    def _runs_listed(self, message: RunsListed) -> None:
        select = self.query_one("#trace-run", Select)
        # Text, not str: a name such as "shop [v2]" is shown as it is, never read as markup
        options = [(Text(_clip(f"{r.id} {scenario_label_of(r)} {r.mode} {r.backend}", 26)), r.id)
                   for r in message.runs]
        if [o[1] for o in options] == [o[1] for o in self._options]:
            return
        self._options = options
        self._listing = True
        current = self.run.id if self.run is not None else None
        select.set_options(options)
        if current is not None and any(v == current for _, v in options):
            select.value = current
        self._listing = False
        if self.run is None and message.runs and not self._loading:
            self.show_run(message.runs[0].id)  # nothing picked yet: open the newest run

    @on(Select.Changed, "#trace-run")
    def _run_chosen(self, event: Select.Changed) -> None:
        if self._listing or not isinstance(event.value, int):
            return
        if self.run is None or event.value != self.run.id:
            self.show_run(event.value)

    def show_run(self, run_id: int, *, instance: int | None = None, hop: str | None = None) -> None:
        """Load a run (first page of instances) and show ``instance`` (or the first one)."""
        self._loading = True
        if not self.is_mounted:
            self._pending = (run_id, instance, hop)  # loaded once the widgets exist
            return
        self._request_run(run_id, instance, hop)

    def _refresh_running(self) -> None:
        from agentsim.store import effective_status

        if self.run is None or effective_status(self.run) != "running" or self.app.screen is not self:
            return
        self._request_run(self.run.id, self.instance_index, self.query_one(HopGraph).selected_hop)

    def _request_run(self, run_id: int, instance: int | None, hop: str | None) -> None:
        """Start loading a run; only the newest request's result is shown."""
        self._run_token += 1
        self.load_run(run_id, instance, hop, self.failed_only, self._run_token)

    def _request_instance(self, run_id: int, index: int, hop: str | None) -> None:
        self._instance_token += 1
        self.load_instance(run_id, index, hop, self._instance_token)

    def on_mount(self) -> None:
        # a run still being written is re-read every few seconds (new hops, finished instances)
        self.set_interval(self.ctx.refresh_s, self._refresh_running)
        if self._pending is not None:
            run_id, instance, hop = self._pending
            self._pending = None
            self._request_run(run_id, instance, hop)

    @work(thread=True, exclusive=True, exit_on_error=False, group="trace-run")
    def load_run(self, run_id: int, instance: int | None, hop: str | None, failed_only: bool, token: int) -> None:
        store = self.ctx.read_store()
        if store is None:
            return
        run = get_run(store, run_id)
        if run is None:
            self.app.call_from_thread(self.notify, f"no run {run_id}", severity="error")
            return
        offset = 0
        if instance is not None and not failed_only:
            offset = (instance // PAGE) * PAGE
        page = instance_page(store, run_id, offset=offset, limit=PAGE, failed_only=failed_only)
        self.post_message(self.RunLoaded(run, page, counterpart_run(store, run), instance, hop, token))

    @on(RunLoaded)
    def _run_loaded(self, message: RunLoaded) -> None:
        if message.token != self._run_token:
            return  # a newer request superseded this one (thread workers cannot be interrupted)
        self.run = message.run
        self.counterpart = message.counterpart
        self.page = message.page
        self._listing = True
        select = self.query_one("#trace-run", Select)
        if any(v == self.run.id for _, v in self._options):
            select.value = self.run.id
        self._listing = False
        self._fill_instances()
        index = message.instance
        if index is None and message.page.items:
            index = message.page.items[0].index
        if index is not None:
            self._request_instance(self.run.id, index, message.hop)
        else:
            self.query_one(HopGraph).clear_options()
            self.query_one("#trace-hop", Static).update("no instances recorded yet")
        self._head()

    def _fill_instances(self) -> None:
        ol = self.query_one("#trace-instances", OptionList)
        ol.clear_options()
        page = self.page
        if page is None:
            return
        for inst in page.items:
            ol.add_option(Option(self._instance_label(inst), id=str(inst.index)))
        if page.offset + len(page.items) < page.total:
            ol.add_option(Option(Text(f"… {page.total - page.offset - len(page.items)} more (])", style="dim"),
                                 id="more", disabled=True))

    @staticmethod
    def _instance_label(inst: InstanceRead) -> Text:
        t = Text()
        if not inst.finished:
            t.append(f"· #{inst.index} unfinished", style="grey50")
            return t
        if inst.success:
            t.append(f"✓ #{inst.index}", style="green")
        else:
            t.append(f"✗ #{inst.index}", style="red")
            if inst.root_causes:
                t.append(" root " + ",".join(inst.root_causes), style="dim")
        return t

    @on(OptionList.OptionHighlighted, "#trace-instances")
    def _instance_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if self.run is None or event.option.id in (None, "more"):
            return
        index = int(event.option.id)
        if index != self.instance_index:
            self._request_instance(self.run.id, index, None)

    @work(thread=True, exclusive=True, exit_on_error=False, group="trace-instance")
    def load_instance(self, run_id: int, index: int, hop: str | None, token: int) -> None:
        store = self.ctx.read_store()
        if store is None:
            return
        page = instance_page(store, run_id, offset=index, limit=1)
        inst = page.items[0] if page.items and page.items[0].index == index else None
        self.post_message(self.InstanceLoaded(run_id, inst, index, instance_hops(store, run_id, index), hop, token,
                                              instance_fidelity(store, run_id, index)))

    @on(InstanceLoaded)
    def _instance_loaded(self, message: InstanceLoaded) -> None:
        if message.token != self._instance_token:
            return
        if self.run is None or message.run_id != self.run.id:
            return
        self.instance = message.instance
        self.instance_index = message.index
        self.hops = {h.hop_id: h for h in message.hops}
        self.fidelity = message.fidelity
        nodes = [GraphNode(h.hop_id, tuple(h.parents), h.depth, h.kind, h.error_kind) for h in message.hops]
        graph = self.query_one(HopGraph)
        keep = message.hop if message.hop in self.hops else None
        if keep is None and message.hops:
            # open on the final hop: that is where a failure shows; r walks back to its cause
            keep = message.hops[-1].hop_id
        graph.set_nodes(nodes, keep=keep)
        ol = self.query_one("#trace-instances", OptionList)
        try:
            ol.highlighted = ol.get_option_index(str(message.index))
        except Exception:  # noqa: BLE001 - the instance is on another page
            pass
        self._head()
        self._show_system()
        self._show_hop()

    def _show_system(self) -> None:
        """The instance's system prompt, verbatim, in the collapsed section (hidden when none)."""
        box = self.query_one("#trace-system", Collapsible)
        text = self.instance.system_prompt if self.instance is not None else None
        box.display = bool(text)
        if not text:
            return
        lines = text.count("\n") + 1
        box.title = f"system prompt ({lines} line{'s' if lines > 1 else ''}, {len(text):,} chars) · s"
        self.query_one("#trace-system-text", Static).update(Text(text))

    def action_toggle_system(self) -> None:
        box = self.query_one("#trace-system", Collapsible)
        if box.display:
            box.collapsed = not box.collapsed

    @on(OptionList.OptionHighlighted, "#trace-graph")
    def _hop_highlighted(self, _event: OptionList.OptionHighlighted) -> None:
        self._show_hop()

    def _show_hop(self) -> None:
        hop_id = self.query_one(HopGraph).selected_hop
        body = self.query_one("#trace-hop", Static)
        if hop_id is None or hop_id not in self.hops:
            body.update("no hops recorded for this instance yet")
            return
        body.update(hop_detail(self.hops[hop_id], self.counterpart, self.fidelity.get(hop_id)))

    def _head(self) -> None:
        run = self.run
        if run is None:
            return
        t = Text()
        t.append(f"run {run.id}", style="bold")
        t.append(f" {scenario_label_of(run)} [{run.mode}] {backend_text(run.backend, run.precision)}")
        if self.instance_index is not None:
            t.append(f" · instance {self.instance_index}")
            if self.instance is not None and self.instance.finished:
                t.append(" ✓" if self.instance.success else " ✗", style="green" if self.instance.success else "red")
        if self.page is not None:
            t.append(f" · {self.page.total} {'failed ' if self.page.failed_only else ''}instances", style="dim")
        self.query_one("#trace-head", Static).update(t)

    # actions ------------------------------------------------------------------------------

    def action_root_cause(self) -> None:
        graph = self.query_one(HopGraph)
        hop_id = graph.selected_hop
        if hop_id is None or hop_id not in self.hops:
            return
        h = self.hops[hop_id]
        roots = list(h.root_cause) if not h.correct else list(self.instance.root_causes if self.instance else [])
        roots = [r for r in roots if r in self.hops]
        if not roots:
            self.notify("no failure to trace from this hop", severity="information")
            return
        if roots == [hop_id]:
            self.notify(f"{hop_id} is itself the root cause ({h.error_kind} error)")
            return
        target = roots[0]
        graph.select_hop(target)
        graph.focus()
        more = f" (also: {', '.join(roots[1:])})" if len(roots) > 1 else ""
        self.notify(f"root cause of {hop_id}: {target}{more}")

    def action_other_mode(self) -> None:
        if self.run is None:
            return
        if self.counterpart is None:
            other = "oracle" if self.run.mode == "free" else "free"
            self.notify(f"no {other}-mode run of this scenario and backend (launch with mode both)",
                        severity="warning")
            return
        self.show_run(self.counterpart.id, instance=self.instance_index, hop=self.query_one(HopGraph).selected_hop)

    def action_failed_only(self) -> None:
        self.failed_only = not self.failed_only
        if self.run is not None:
            self._request_run(self.run.id, None, None)

    def action_next_failed(self) -> None:
        """The next failed instance after the current one (on this page)."""
        if self.page is None:
            return
        after = [i for i in self.page.items if i.finished and not i.success
                 and (self.instance_index is None or i.index > self.instance_index)]
        if not after:
            self.notify("no further failed instance on this page")
            return
        assert self.run is not None
        self._request_instance(self.run.id, after[0].index, None)

    def action_page(self, step: int) -> None:
        if self.run is None or self.page is None:
            return
        offset = self.page.offset + step * PAGE
        if offset < 0 or offset >= self.page.total:
            return
        self._run_token += 1
        self.load_page(self.run.id, offset, self.failed_only, self._run_token)

    @work(thread=True, exclusive=True, exit_on_error=False, group="trace-run")
    def load_page(self, run_id: int, offset: int, failed_only: bool, token: int) -> None:
        store = self.ctx.read_store()
        if store is None:
            return
        run = get_run(store, run_id)
        if run is None:
            return
        page = instance_page(store, run_id, offset=offset, limit=PAGE, failed_only=failed_only)
        first = page.items[0].index if page.items else None
        self.post_message(self.RunLoaded(run, page, counterpart_run(store, run), first, None, token))
