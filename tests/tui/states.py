"""App states shown by the snapshot tests and by the documentation screenshots.

Each state is an async ``run_before(pilot)`` that drives the app with keys and waits until the
screen is settled (workers done, data shown), so the picture is the same on every run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .helpers import SCENARIO_DIR, wait_for

State = Callable[[Any], Awaitable[None]]



async def settle(pilot: Any) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.2)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.1)


async def scenarios_preview(pilot: Any) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.current_mode == "scenarios" and getattr(app.screen, "items", None))
    await settle(pilot)
    await pilot.press("down")  # tiny-chain
    await wait_for(pilot, lambda: "sample instance 0" in _text(app))
    await settle(pilot)


async def scenarios_error(pilot: Any) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.current_mode == "scenarios" and "invalid scenario" in _text(app))
    await settle(pilot)


async def launch_form(pilot: Any) -> None:
    from textual.widgets import Input, SelectionList

    app = pilot.app
    await wait_for(pilot, lambda: app.current_mode == "launch")
    screen = app.screen
    await wait_for(pilot, lambda: screen.query_one("#launch-scenarios", SelectionList).option_count > 0)
    screen.query_one("#launch-scenarios", SelectionList).select(str(SCENARIO_DIR / "tiny-chain.yaml"))
    screen.query_one("#launch-backends", SelectionList).select("noisy,p=0.3")
    screen.query_one("#launch-specs", Input).value = "noisy,p=0.1"
    screen.query_one("#launch-instances", Input).value = "5"
    screen.query_one("#launch-scenarios", SelectionList).focus()
    await settle(pilot)


async def launch_done(pilot: Any) -> None:
    from agentsim.tui.launch_screen import LaunchScreen

    await launch_form(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, LaunchScreen)
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: not screen.running and "done: runs" in _text(pilot.app))
    await settle(pilot)


async def runs_list(pilot: Any) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.current_mode == "runs" and len(getattr(app.screen, "rows", [])) == 8)
    await pilot.press("down", "down", "space", "down", "space")  # mark runs 6 and 5
    await settle(pilot)


async def compare(pilot: Any) -> None:
    from agentsim.tui.compare_screen import CompareScreen

    app = pilot.app
    await wait_for(pilot, lambda: app.current_mode == "runs" and len(getattr(app.screen, "rows", [])) == 8)
    runs = app.screen
    ids = [r.run.id for r in runs.rows]
    for target in (1, 2, 5, 6):  # tiny-chain: oracle and noisy, free and oracle mode
        runs.query_one("#runs-table").move_cursor(row=ids.index(target))
        await pilot.press("space")
    await pilot.press("c")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.summaries)
    await settle(pilot)


async def trace_root_cause(pilot: Any) -> None:
    """Run 5 (tiny-chain, noisy, free): the first instance whose final hop failed by propagation."""
    from agentsim.tui.hop_graph import HopGraph
    from agentsim.tui.trace_screen import TraceScreen

    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, TraceScreen))
    trace = app.screen
    trace.show_run(5)
    await wait_for(pilot, lambda: trace.run is not None and trace.run.id == 5 and trace.hops)
    await pilot.press("f")  # failed instances only
    await wait_for(pilot, lambda: trace.page is not None and trace.page.failed_only and trace.hops)
    graph = trace.query_one(HopGraph)
    for _ in range(12):
        last = list(trace.hops.values())[-1]
        if last.error_kind == "propagated":
            break
        await pilot.press("n")
        await settle(pilot)
    await wait_for(pilot, lambda: graph.selected_hop == list(trace.hops)[-1])
    await pilot.press("r")
    await settle(pilot)


async def help_screen(pilot: Any) -> None:
    await pilot.pause(0.3)
    await pilot.press("question_mark")
    await settle(pilot)


def _text(app: Any) -> str:
    from .helpers import screen_text

    return screen_text(app)
