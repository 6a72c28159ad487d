"""Runs and Compare screens; reading while another process writes to the database."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .helpers import SCENARIO_DIR, make_test_app, run_async, runs_loaded, screen_text
from .helpers import wait_for as _wait_for


@run_async
async def test_mark_and_compare_with_baseline(fixed_db):
    from agentsim.tui.compare_screen import CompareScreen
    from agentsim.tui.runs_screen import RunsScreen

    app = make_test_app(fixed_db, start="runs")
    async with app.run_test(size=(100, 30)) as pilot:
        runs = await runs_loaded(app, pilot, 8)
        # newest first: 8 7 6 5 ...; mark noisy free (5) and oracle free (1) of tiny-chain
        ids = [r.run.id for r in runs.rows]
        for target in (1, 5):
            runs.query_one("#runs-table").move_cursor(row=ids.index(target))
            await pilot.press("space")
        assert runs.marked == [1, 5]
        await pilot.press("c")
        await _wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.summaries)
        compare = app.screen
        text = screen_text(app)
        assert "baseline run 1" in text
        assert "est." in text and "estimated (model, not measured)" in text
        assert "meas." not in text
        noisy = next(s for s in compare.summaries if s.run_id == 5)
        assert noisy.relative["accuracy"] == pytest.approx(noisy.accuracy / 1.0)
        assert f"{noisy.relative['accuracy']:.2f}x" in text
        assert "hop accuracy by depth" in text
        # make the noisy run the baseline
        compare.query_one("#compare-table").move_cursor(row=1)
        await pilot.press("b")
        await _wait_for(pilot, lambda: "baseline run 5" in screen_text(app))
        assert all(s.baseline_run_id == 5 for s in compare.summaries)
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


@run_async
async def test_reads_while_another_process_writes(fixed_db):

    app = make_test_app(fixed_db, start="runs", refresh_s=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        runs = await runs_loaded(app, pilot, 8)
        writer = subprocess.Popen(
            [sys.executable, "-m", "agentsim.cli", "run", str(SCENARIO_DIR / "tiny-chain.yaml"), "-b",
             "noisy,p=0.2,latency_ms=20", "-n", "30", "--db", str(fixed_db)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            def new_row():
                return next((r for r in runs.rows if r.run.id == 9), None)

            await _wait_for(pilot, lambda: new_row() is not None and new_row().status == "running"
                            and 0 < new_row().hops_recorded < 120)
            seen_partial = new_row().hops_recorded
            # the Trace inspector follows the run while it is written
            await app.open_trace(9)
            trace = app.screen
            await _wait_for(pilot, lambda: trace.run is not None and trace.run.id == 9 and trace.page is not None)
            first_total = trace.page.total
            await _wait_for(pilot, lambda: trace.run.status == "complete" and trace.page.total == 30, timeout=60)
            assert first_total < 30
            await pilot.press("3")
            await _wait_for(pilot, lambda: new_row().status == "complete", timeout=60)
            assert new_row().hops_recorded == 120 and seen_partial < 120
        finally:
            _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err.decode()
        assert "database is locked" not in err.decode()
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors == []
