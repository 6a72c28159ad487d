"""Compare screen: the default baseline is the top rung of each group (not the cursor row), the
verdict line and the paired interval columns are shown, the chart draws only the cursor row's
scenario and mode, each line named in its legend."""

from __future__ import annotations

from types import SimpleNamespace

from .helpers import make_test_app, run_async, screen_text, wait_for


async def _open(pilot, app, targets):
    from agentsim.tui.compare_screen import CompareScreen

    runs = app.screen
    await wait_for(pilot, lambda: len(getattr(runs, "rows", [])) == 8)
    ids = [r.run.id for r in runs.rows]
    for target in targets:
        runs.query_one("#runs-table").move_cursor(row=ids.index(target))
        await pilot.press("space")
    await pilot.press("c")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.summaries)
    await pilot.pause(0.2)
    return app.screen


def _flat(text: str) -> str:
    return " ".join(text.split())


@run_async
async def test_default_baseline_verdict_line_and_interval_columns(fixed_db):
    from agentsim.tui.compare_screen import ci_cell

    app = make_test_app(fixed_db, start="runs")
    async with app.run_test(size=(120, 34)) as pilot:
        # runs are listed newest first, so the noisy run (5) comes before the oracle run (1)
        compare = await _open(pilot, app, (5, 1))
        assert compare.baseline is None
        # evaluate()'s default: the top rung of the group (simulation backends: the lowest run id),
        # whichever row the cursor is on
        assert {s.baseline_run_id for s in compare.summaries} == {1}
        text = screen_text(app)
        assert "baseline run 1" in text and "top rung" in text
        noisy = next(s for s in compare.summaries if s.run_id == 5)
        assert noisy.verdict.verdict == "accuracy trap"
        assert ci_cell(noisy.relative_ci95["model_hop_accuracy"], False) in text
        assert ci_cell(noisy.relative_ci95["task_success"], False) in text
        assert "acc trap" in text
        # what to deploy, with the multiplicity line (agentsim.analysis.recommend)
        assert "recommend:" in text and "Holm" in _flat(text)
        # the verdict line of the cursor row, with its evidence
        table = compare.query_one("#compare-table")
        table.move_cursor(row=[s.run_id for s in compare.summaries].index(5))
        await pilot.pause(0.2)
        flat = _flat(screen_text(app))
        assert _flat(noisy.verdict.line)[:90] in flat
        # b: the cursor row becomes every run's baseline; d: back to the default
        await pilot.press("b")
        await wait_for(pilot, lambda: all(s.baseline_run_id == 5 for s in compare.summaries))
        assert "chosen with b" in screen_text(app)
        await pilot.press("d")
        await wait_for(pilot, lambda: all(s.baseline_run_id == 1 for s in compare.summaries))


@run_async
async def test_chart_draws_the_cursor_rows_group_with_a_legend(fixed_db):
    from agentsim.tui.compare_screen import chart_group, series_label

    app = make_test_app(fixed_db, start="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        compare = await _open(pilot, app, (1, 2, 3, 4, 5, 6, 7, 8))
        assert len(compare.summaries) == 8
        table = compare.query_one("#compare-table")
        order = [s.run_id for s in compare.summaries]
        table.move_cursor(row=order.index(1))  # tiny-chain, free mode
        await pilot.pause(0.3)
        current = compare.summaries[order.index(1)]
        group = chart_group(compare.summaries, current)
        assert [s.run_id for s in group] == [1, 5]
        text = screen_text(app)
        assert "tiny-chain [free]" in text
        for s in group:
            assert series_label(s) in text  # the legend names every line
        others = [s for s in compare.summaries if s not in group]
        assert not any(series_label(s) in text for s in others)
        # the oracle-mode group of the other scenario
        table.move_cursor(row=order.index(8))
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "tiny-dag [oracle]" in text
        assert all(series_label(s) in text for s in chart_group(compare.summaries, compare.summaries[order.index(8)]))


@run_async
async def test_verdict_visible_at_80x24_and_a_failing_baseline_is_said(fixed_db):
    """At 80 x 24 the verdict column is on screen (it was off to the right); with the noisy run
    (which fails most tasks) as baseline, the screen says the comparison says little."""
    app = make_test_app(fixed_db, start="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        compare = await _open(pilot, app, (5, 1))
        from agentsim.tui.compare_screen import verdict_cell

        text = screen_text(app)
        noisy = next(s for s in compare.summaries if s.run_id == 5)
        row = next(line for line in text.splitlines() if line.split()[:1] == ["5"])
        assert "verdict" in text and verdict_cell(compare.verdicts[5]).plain in row, text
        assert noisy.task_success < 0.5
        assert "fails most tasks" not in text
        table = compare.query_one("#compare-table")
        table.move_cursor(row=[s.run_id for s in compare.summaries].index(5))
        await pilot.press("b")
        await wait_for(pilot, lambda: all(s.baseline_run_id == 5 for s in compare.summaries))
        await pilot.pause(0.2)
        assert "fails most tasks" in _flat(screen_text(app))


def test_the_precision_column_shows_the_precision():
    """It was the backend spec cut to 11 characters: 'llama:qwen2' for every rung."""
    from agentsim.tui.compare_screen import precision_cell

    row = SimpleNamespace(backend="llama:qwen2.5-coder-0.5b@q4_0", precision="q4_0", model="qwen2.5-coder-0.5b")
    assert precision_cell(row, one_model=True) == "q4_0"
    assert precision_cell(row, one_model=False) == "qwen2.5-coder-0.5b@q4_0"
    assert precision_cell(SimpleNamespace(backend="noisy,p=0.3", precision=None, model=None), one_model=True) == "noisy,p=0.3"


@run_async
async def test_cut_hops_are_marked_and_the_mark_explained(tmp_path):
    # issue 27: a hop cut by the token budget is its own outcome in the compare screen too
    from agentsim.backends.base import Completion
    from agentsim.launch import execute
    from agentsim.scenario import load_scenario
    from agentsim.store import Store
    from agentsim.tui.compare_screen import CompareScreen
    from tests.helpers import ScriptedBackend, write
    from tests.unit.test_engine import CHAIN

    store = Store(tmp_path / "cut.db")
    sc = load_scenario(write(tmp_path, CHAIN))
    try:
        execute([sc], ["scripted"], store=store, instances=3, seed=0, modes=("free",))
        ScriptedBackend.SCRIPT = {"b": Completion(text="Adding one to it gives 1", finish_reason="length"),
                                  "c": lambda r: r.expected}
        execute([sc], ["scripted"], store=store, instances=3, seed=0, modes=("free",))
    finally:
        ScriptedBackend.SCRIPT = {}
    app = make_test_app(tmp_path / "cut.db", start="runs")
    async with app.run_test(size=(150, 34)) as pilot:
        runs = app.screen
        await wait_for(pilot, lambda: len(getattr(runs, "rows", [])) == 2)
        for row in range(2):
            runs.query_one("#runs-table").move_cursor(row=row)
            await pilot.press("space")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.summaries)
        await pilot.pause(0.2)
        text = _flat(screen_text(app))
        assert "0/3 ✂3" in text and "✂N in loc/prop: N hops cut by the token budget" in text
