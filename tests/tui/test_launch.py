"""Launch screen: a noisy run completes, is written exactly as the CLI writes it, and cancels."""

from __future__ import annotations

from agentsim.cli import main as cli_main
from agentsim.store import Store

from .helpers import SCENARIO_DIR, make_test_app, run_async, screen_text
from .helpers import wait_for as _wait_for

TINY = str(SCENARIO_DIR / "tiny-chain.yaml")



async def _fill_form(app, pilot, spec: str, instances: str, mode: str = "free") -> None:
    from textual.widgets import Input, RadioButton, SelectionList

    screen = app.screen
    await _wait_for(pilot, lambda: screen.query_one("#launch-scenarios", SelectionList).option_count > 0)
    scenarios = screen.query_one("#launch-scenarios", SelectionList)
    scenarios.select(TINY)
    screen.query_one("#launch-specs", Input).value = spec
    screen.query_one("#launch-instances", Input).value = instances
    screen.query_one(f"#mode-{mode}", RadioButton).value = True
    scenarios.focus()
    await pilot.pause()


@run_async
async def test_launch_noisy_run_completes(tmp_path):
    from agentsim.tui.launch_screen import LaunchScreen

    db = tmp_path / "runs.db"  # does not exist yet: the launch creates it
    messages: list = []
    app = make_test_app(db, start="launch")
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        await _fill_form(app, pilot, "noisy,p=0.2,latency_ms=5", "5")
        await pilot.press("ctrl+r")
        await _wait_for(pilot, lambda: any(isinstance(m, LaunchScreen.LaunchFinished) for m in messages))
        await pilot.pause(0.1)
        finished = next(m for m in messages if isinstance(m, LaunchScreen.LaunchFinished))
        assert not finished.cancelled and finished.error is None and finished.failures == []
        assert [m.run_id for m in messages if isinstance(m, LaunchScreen.RunCreated)] == finished.run_ids == [1]
        text = screen_text(app)
        assert "20/20 hops" in text and "complete" in text
        assert "done: runs 1" in text

    # the same run made by the CLI gives the same hop records
    other = tmp_path / "cli.db"
    assert cli_main(["run", TINY, "-b", "noisy,p=0.2,latency_ms=5", "-n", "5", "--db", str(other)]) == 0
    keys = ("instance_index", "hop_id", "prompt", "completion", "parsed", "expected", "correct", "error_kind",
            "root_cause")
    tui_store, cli_store = Store(db, readonly=True), Store(other, readonly=True)
    tui_run, cli_run = tui_store.get_run(1), cli_store.get_run(1)
    assert tui_run.status == cli_run.status == "complete"
    for field in ("scenario", "scenario_fingerprint", "backend", "mode", "seed", "n_instances", "hops_per_instance"):
        assert getattr(tui_run, field) == getattr(cli_run, field), field
    assert tui_run.energy_meter["name"] == "estimate" and tui_run.launch_id
    tui_hops = [{k: getattr(h, k) for k in keys} for h in tui_store.hops(1)]
    cli_hops = [{k: getattr(h, k) for k in keys} for h in cli_store.hops(1)]
    assert tui_hops == cli_hops and len(tui_hops) == 20


@run_async
async def test_launch_stays_responsive_and_cancels(tmp_path):
    from agentsim.tui.launch_screen import LaunchScreen

    db = tmp_path / "runs.db"
    messages: list = []
    app = make_test_app(db, start="launch", refresh_s=0.2)
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        await _fill_form(app, pilot, "noisy,p=0.2,latency_ms=20", "200")
        launch = app.screen
        await pilot.press("ctrl+r")
        await _wait_for(pilot, lambda: any(isinstance(m, LaunchScreen.RunProgressed) and m.progress.hops_done > 2
                                           for m in messages))
        # the UI answers keys while the worker runs: switch to Runs and see the run being written
        await pilot.press("3")
        assert app.current_mode == "runs"
        await _wait_for(pilot, lambda: "running" in screen_text(app))
        assert launch.running
        await pilot.press("2")
        await pilot.press("ctrl+t")
        await _wait_for(pilot, lambda: any(isinstance(m, LaunchScreen.LaunchFinished) for m in messages))
        finished = next(m for m in messages if isinstance(m, LaunchScreen.LaunchFinished))
        assert finished.cancelled
        await pilot.pause(0.1)
        assert "cancelled" in screen_text(app)
    # progress messages coalesce: far fewer handled than hops written is fine, but never more
    store = Store(db, readonly=True)
    run = store.get_run(1)
    recorded = len(store.hops(1))
    assert run.status == "interrupted"
    assert 0 < recorded < 800
    handled = sum(1 for m in messages if isinstance(m, LaunchScreen.RunProgressed))
    assert handled <= recorded + 2


@run_async
async def test_launch_form_errors_are_shown(tmp_path):
    app = make_test_app(tmp_path / "runs.db", start="launch")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("ctrl+r")
        await pilot.pause(0.1)
        assert "choose at least one scenario" in screen_text(app)
        await _fill_form(app, pilot, "nosuchbackend", "3")
        await pilot.press("ctrl+r")
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "unknown backend 'nosuchbackend'" in text
        assert not (tmp_path / "runs.db").exists() or Store(tmp_path / "runs.db", readonly=True).list_runs() == []


@run_async
async def test_unchecked_boxes_are_empty(tmp_path):
    """Textual draws X in every box (checked or not, told apart by colour only); only a checked
    box shows X here."""
    from textual.widgets import SelectionList

    app = make_test_app(tmp_path / "runs.db", start="launch")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await _wait_for(pilot, lambda: screen.query_one("#launch-scenarios", SelectionList).option_count > 1)
        scenarios = screen.query_one("#launch-scenarios", SelectionList)
        scenarios.deselect_all()
        scenarios.select(TINY)
        await pilot.pause(0.2)
        lines = [line for line in screen_text(app).splitlines() if "▐" in line]
        checked = [line for line in lines if "▐X▌" in line]
        assert lines and len(checked) == 1 and "tiny-chain" in checked[0], "\n".join(lines)
