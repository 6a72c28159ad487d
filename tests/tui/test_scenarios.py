"""Scenarios screen: preview graph and sample instance; invalid files shown inline with the line."""

from __future__ import annotations

from .helpers import SCENARIO_DIR, make_test_app, run_async, screen_text
from .helpers import wait_for as _wait_for


@run_async
async def test_preview_error_graph_samples_and_launch(tmp_path):
    from agentsim.tui.launch_screen import LaunchScreen

    app = make_test_app(tmp_path / "runs.db")  # no database yet: the app opens on Scenarios
    async with app.run_test(size=(80, 24)) as pilot:
        await _wait_for(pilot, lambda: app.current_mode == "scenarios" and "invalid scenario" in screen_text(app))
        text = screen_text(app)
        # the invalid file: file and line, hop and field, and the offending line itself
        assert "broken.yaml:9" in text
        assert "hop 'b', field 'prompt'" in text and "not in depends_on" in text
        assert "▶   9 │     prompt: Add one to {{ a }}." in text

        await pilot.press("down")
        await _wait_for(pilot, lambda: "sample instance 0" in screen_text(app))
        text = screen_text(app)
        assert "4 hops, depth 4" in text
        for line in ("● s1", "└● s2", "└● s3", "└● s4"):
            assert line in text
        first = text[text.index("sample instance 0"):]
        await pilot.press("right_square_bracket")
        await _wait_for(pilot, lambda: "sample instance 1" in screen_text(app))
        assert screen_text(app)[screen_text(app).index("sample instance 1"):] != first

        await pilot.press("enter")
        await _wait_for(pilot, lambda: app.current_mode == "launch")
        launch = app.screen
        assert isinstance(launch, LaunchScreen)
        from textual.widgets import SelectionList

        scenarios = launch.query_one("#launch-scenarios", SelectionList)
        await _wait_for(pilot, lambda: scenarios.selected == [str(SCENARIO_DIR / "tiny-chain.yaml")])
        # the invalid file is not offered for launch
        values = [scenarios.get_option_at_index(i).value for i in range(scenarios.option_count)]
        assert not any(v.endswith("broken.yaml") for v in values)


def test_family_preview_with_params_and_sweep_error():
    from rich.console import Console

    from agentsim.tui.scenarios_screen import render_preview

    item = {"name": "chain-arith", "kind": "family", "path": None, "param_help": {}}
    body, info = render_preview(item, 0, "depth=5")
    assert len(info["hops"]) == 5
    console = Console(width=100, record=True, file=None)
    with console.capture() as cap:
        console.print(body)
    assert "5 hops, depth 5" in cap.get()
    body, info = render_preview(item, 0, "depth=2..3")
    assert info == {} and "single values" in str(body)


@run_async
async def test_a_folder_of_hostile_files_stays_responsive(tmp_path, monkeypatch):
    """Alias bombs, runaway loops and a file whose validation overruns its budget: each file
    shows its error, the good file its preview, and the UI answers keys meanwhile."""
    import time

    from agentsim.tui import scenario_items
    from tests.unit.test_limits import BILLION_LAUGHS, hop_file

    monkeypatch.setattr(scenario_items, "FILE_BUDGET_S", 1.0)
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "a-laughs.yaml").write_text(BILLION_LAUGHS)
    (folder / "b-loops.yaml").write_text(
        hop_file("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"))
    # every hop's render stays under the 2 s render budget, the file as a whole does not
    slow_hop = "{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}"
    hops = "".join(f"  - id: h{i}\n    prompt: {slow_hop!r}\n    expect: 1\n" for i in range(30))
    (folder / "c-slow.yaml").write_text("name: slow\nworld:\n  xs: " + str(list(range(2000))) + "\nhops:\n" + hops)
    (folder / "d-good.yaml").write_text((SCENARIO_DIR / "tiny-chain.yaml").read_text())

    app = make_test_app(tmp_path / "runs.db", scenario_dirs=[str(folder)])
    t0 = time.perf_counter()
    async with app.run_test(size=(100, 30)) as pilot:
        await _wait_for(pilot, lambda: "d-good" in screen_text(app), timeout=60)
        assert time.perf_counter() - t0 < 45
        screen = app.screen
        errors = {it["name"]: it["error"] for it in screen.items}
        assert "yaml_expanded" in errors["a-laughs"] and "a-laughs.yaml:4" in errors["a-laughs"]
        assert "render_bytes" in errors["b-loops"] and "hop 'h', field 'prompt'" in errors["b-loops"]
        assert "c-slow.yaml" in errors["c-slow"] and ("1 s of CPU time" in errors["c-slow"]
                                                      or "abandoned" in errors["c-slow"])
        assert errors["d-good"] is None
        text = screen_text(app)
        assert text.count("✗") == 3
        await _wait_for(pilot, lambda: "yaml_expanded" in screen_text(app))  # the first file's error
        assert "▶   4 │" in screen_text(app)
        for _ in range(3):
            await pilot.press("down")
        await _wait_for(pilot, lambda: "sample instance 0" in screen_text(app))
