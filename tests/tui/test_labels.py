"""The TUI tells two scenarios of one name apart: the runs list shows their labels (cut in the
middle, the cursor row's whole label below the table), Compare names them and charts each
scenario on its own."""

from __future__ import annotations

import pytest

from .helpers import make_test_app, run_async, runs_loaded, screen_text, wait_for

FILE_LABEL = "pointer-chase(depth=4 distractors=8)"
FAMILY_LABEL = "pointer-chase(depth=4)"


@pytest.fixture
def two_of_one_name(tmp_path):
    from agentsim.api import simulate
    from agentsim.scenario import resolve_scenario

    db = tmp_path / "two.db"
    res = simulate(["pointer-chase-d4", resolve_scenario("pointer-chase", {"depth": 4})], ["oracle"],
                   instances=2, db=db)
    assert {r.scenario for r in res.runs} == {"pointer-chase-d4"}
    res.store.close()
    return db


def test_clip_middle_keeps_both_ends():
    from agentsim.tui.runs_screen import clip_middle

    assert clip_middle("tiny-chain", 16) == "tiny-chain"
    cut = [clip_middle(label, 16) for label in (FILE_LABEL, FAMILY_LABEL)]
    assert all(len(c) == 16 and "…" in c for c in cut)
    assert cut[0] != cut[1] and cut[0].startswith("pointer") and cut[0].endswith("ors=8)")


@run_async
async def test_runs_list_and_compare_tell_them_apart(two_of_one_name):
    from agentsim.tui.compare_screen import CompareScreen, chart_group
    from agentsim.tui.runs_screen import clip_middle

    app = make_test_app(two_of_one_name, start="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        runs = await runs_loaded(app, pilot, 2)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert clip_middle(FILE_LABEL, 16) in text and FAMILY_LABEL[:16] in text
        # the cursor is on the newest run (2): its whole label, backend and params below the table
        assert f"run 2: {FAMILY_LABEL} · oracle [free]" in text
        runs.query_one("#runs-table").move_cursor(row=1)
        await wait_for(pilot, lambda: f"run 1: {FILE_LABEL}" in screen_text(app))
        await pilot.press("space")
        runs.query_one("#runs-table").move_cursor(row=0)
        await pilot.press("space")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.summaries)
        compare = app.screen
        await pilot.pause(0.2)
        text = screen_text(app)
        flat = " ".join(text.split())
        assert "2 scenarios:" in flat and FAMILY_LABEL in flat and FILE_LABEL in flat
        first = next(s for s in compare.summaries if s.run_id == 1)
        assert [s.run_id for s in chart_group(compare.summaries, first)] == [1]
        # the cursor row's verdict line starts with its scenario
        order = [s.run_id for s in compare.summaries]
        compare.query_one("#compare-table").move_cursor(row=order.index(1))
        # (run 1 is its own baseline: "base: run 1 oracle [free]: the baseline")
        await wait_for(pilot, lambda: f"{FILE_LABEL}: base: run 1 " in " ".join(screen_text(app).split()))
