"""Trace inspector: open a failed instance, jump to its root cause, step to the oracle run."""

from __future__ import annotations

from agentsim.store import Store

from .helpers import make_test_app, run_async, screen_text
from .helpers import wait_for as _wait_for


def _propagated_failure(db):
    """A noisy free-mode run and an instance whose final hop failed because of an earlier hop."""
    store = Store(db, readonly=True)
    run = next(r for r in store.list_runs() if r.backend.startswith("noisy") and r.mode == "free"
               and r.scenario == "tiny-chain")
    for inst in store.instances(run.id):
        hops = store.hops(run.id, inst.index)
        final = hops[-1]
        if final.error_kind == "propagated" and final.root_cause and final.root_cause[0] != final.hop_id:
            return run, inst.index, final, hops
    raise AssertionError("the fixture has no propagated failure")


@run_async
async def test_open_failed_instance_and_jump_to_root_cause(fixed_db):
    from agentsim.tui.hop_graph import HopGraph
    from agentsim.tui.runs_screen import RunsScreen

    run, index, final, _hops = _propagated_failure(fixed_db)
    root = final.root_cause[0]
    app = make_test_app(fixed_db, start="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await _wait_for(pilot, lambda: screen.rows)
        # runs are listed newest first: move the cursor to the run and open it
        position = [r.run.id for r in screen.rows].index(run.id)
        for _ in range(position):
            await pilot.press("down")
        await pilot.press("enter")
        await _wait_for(pilot, lambda: app.current_mode == "trace")
        trace = app.screen
        await _wait_for(pilot, lambda: trace.run is not None and trace.run.id == run.id and trace.hops)
        # pick the failed instance in the instance list
        trace.query_one("#trace-instances").focus()
        await pilot.press("home")
        for _ in range(index):
            await pilot.press("down")
        await _wait_for(pilot, lambda: trace.instance_index == index and set(trace.hops) and
                        trace.query_one(HopGraph).selected_hop == final.hop_id)
        text = screen_text(app)
        assert f"instance {index} ✗" in text
        assert "propagated" in text and f"root cause: {root}" in text
        # from the failed final hop to its root cause
        await pilot.press("r")
        await pilot.pause(0.1)
        graph = trace.query_one(HopGraph)
        assert graph.selected_hop == root
        assert trace.hops[root].error_kind in ("local", "parse", "backend")
        assert f"{root} (this hop)" in screen_text(app)
        # pressing r on the root cause says so instead of moving
        await pilot.press("r")
        await pilot.pause(0.1)
        assert graph.selected_hop == root

        # the same hop of the same instance in oracle mode (same batch)
        await pilot.press("o")
        await _wait_for(pilot, lambda: trace.run.mode == "oracle" and trace.instance_index == index
                        and graph.selected_hop == root and trace.hops.get(root) is not None
                        and trace.hops[root].run_id == trace.run.id)
        assert trace.run.launch_id == run.launch_id and trace.run.scenario == run.scenario
        # noisy errs on the same hop in both modes: the root cause is local in oracle mode too
        assert trace.hops[root].error_kind == "local"
        # in oracle mode nothing propagates: the final hop sees right inputs
        assert all(h.error_kind != "propagated" for h in trace.hops.values())
        await pilot.press("o")
        await _wait_for(pilot, lambda: trace.run.id == run.id and graph.selected_hop == root)


@run_async
async def test_failed_only_filter_and_next_failed(fixed_db):
    run, _index, _final, _hops = _propagated_failure(fixed_db)
    store = Store(fixed_db, readonly=True)
    failed = [i.index for i in store.instances(run.id) if not i.success]
    app = make_test_app(fixed_db, start="trace")
    async with app.run_test(size=(80, 24)) as pilot:
        from agentsim.tui.trace_screen import TraceScreen

        await _wait_for(pilot, lambda: isinstance(app.screen, TraceScreen))
        trace = app.screen
        trace.show_run(run.id)
        await _wait_for(pilot, lambda: trace.run is not None and trace.run.id == run.id and trace.page is not None)
        await pilot.press("f")
        await _wait_for(pilot, lambda: trace.page.failed_only)
        assert [i.index for i in trace.page.items] == failed
        assert f"{len(failed)} failed instances" in screen_text(app)
        await _wait_for(pilot, lambda: trace.instance_index == failed[0])
        await pilot.press("n")
        await _wait_for(pilot, lambda: trace.instance_index == failed[1])


@run_async
async def test_system_prompt_is_shown_collapsed_and_opens_with_s(fixed_db):
    """The system prompt holds context every hop saw (e.g. chain-linear's price list)."""
    from textual.widgets import Collapsible

    from agentsim.tui.trace_screen import TraceScreen

    run, index, _final, _hops = _propagated_failure(fixed_db)
    system = Store(fixed_db, readonly=True).instances(run.id)[index].system_prompt
    assert system
    app = make_test_app(fixed_db, start="trace")
    async with app.run_test(size=(100, 30)) as pilot:
        await _wait_for(pilot, lambda: isinstance(app.screen, TraceScreen))
        trace = app.screen
        trace.show_run(run.id, instance=index)
        await _wait_for(pilot, lambda: trace.instance_index == index and trace.hops)
        box = trace.query_one("#trace-system", Collapsible)
        assert box.display and box.collapsed
        await _wait_for(pilot, lambda: "system prompt (1 line" in screen_text(app))
        assert system not in screen_text(app)  # collapsed by default: the hop stays in view
        await pilot.press("s")
        await _wait_for(pilot, lambda: not box.collapsed and system in screen_text(app))
        await pilot.press("s")
        await _wait_for(pilot, lambda: box.collapsed and system not in screen_text(app))


def test_hop_detail_shows_brackets_verbatim():
    """Prompts and completions with [...] are data, not rich markup."""
    from rich.console import Console

    from agentsim.store import HopRead
    from agentsim.tui.trace_screen import hop_detail

    h = HopRead(id=1, run_id=1, instance_index=0, hop_id="tag", prompt="Reply [bold]x[/bold] as [tag1].",
                completion="[tag1] [red]", parsed="[tag1]", expected="[tag1]", correct=True, error_kind="none",
                error_detail=None)
    con = Console(width=100, record=True, color_system=None)
    con.print(hop_detail(h))
    out = con.export_text()
    assert "Reply [bold]x[/bold] as [tag1]." in out
    assert "[tag1] [red]" in out


def test_the_header_names_the_precision_once():
    """Was: 'llama:qwen2.5-coder-0.5b@q4_0 @q4_0'."""
    from agentsim.tui.trace_screen import backend_text

    assert backend_text("llama:qwen2.5-coder-0.5b@q4_0", "q4_0") == "llama:qwen2.5-coder-0.5b@q4_0"
    assert backend_text("llama:m@q4_0,n_threads=2", "q4_0") == "llama:m@q4_0,n_threads=2"
    assert backend_text("llama", "q4_k_m") == "llama @q4_k_m"  # the default rung, not in the spec
    assert backend_text("llama:m@q4_0_x", "q4_0") == "llama:m@q4_0_x @q4_0"
    assert backend_text("oracle", None) == "oracle"
