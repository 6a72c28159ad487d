"""N* and the scale curves (agentsim.analysis.scale) on runs written straight into a real store.

The runs are synthetic but stored exactly as the engine stores them (Run, instances, hops), with
known per-instance energies and outcomes, so every ratio and crossing has a value we can compute
by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from agentsim.analysis.results import ScaleAnalysis
from agentsim.analysis.scale import crossing, scale_analysis, scale_axis, scale_figure
from agentsim.cli import main
from agentsim.errors import AgentsimError
from agentsim.store import HopRecord, InstanceRecord, Run, Store


def _run(store: Store, *, model: str, params: int | None, precision: str, success: list[bool], energy: list[float],
         scenario: str = "chain-arith-d1", mode: str = "free", batch: int = 1, n_seed: int = 0,
         backend: str = "llama", kind: str = "estimated") -> int:
    run = store.create_run(Run(scenario=scenario, params={"depth": 1}, backend=f"{backend}:{model}@{precision}",
                               backend_name=backend, model=model, precision=precision, precision_mode="native",
                               kernel="llama.cpp ggml-cpu", model_params=params, model_bytes=(params or 0) * 2,
                               mode=mode, seed=n_seed, n_instances=len(success), hops_per_instance=1, batch_size=batch,
                               status="complete"))
    for i, (ok, e) in enumerate(zip(success, energy, strict=True)):
        store.ensure_instance(InstanceRecord(run_id=run.id, index=i, seed=1000 + i))
        store.record_hop(HopRecord(run_id=run.id, instance_index=i, hop_id="h1", depth=1, kind="llm",
                                   correct=ok, error_kind="none" if ok else "local", wall_s=e / 10.0,
                                   energy_j=e, energy_kind=kind, energy_source="test"))
        store.finish_instance(run.id, i, success=ok, final_correct=ok)
    return int(run.id)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "runs.db")


def _two_sizes(store: Store, *, small_ratio: float, large_ratio: float, n: int = 30,
               low_success: float = 1.0) -> list[int]:
    """qwen2.5-coder-0.5b / -1.5b (one catalog family), f16 and q4_0; every task right at f16.

    Energies vary by instance (so the bootstrap has spread) but the pooled q4_0/f16 energy ratio
    is exactly ``small_ratio`` at the small size and ``large_ratio`` at the large one.
    """
    rng = np.random.default_rng(0)
    ids = []
    for model, params, ratio in (("qwen2.5-coder-0.5b", 10**8, small_ratio), ("qwen2.5-coder-1.5b", 10**9, large_ratio)):
        base = list(rng.uniform(5, 15, n))
        ok_low = [i < round(low_success * n) for i in range(n)]
        ids.append(_run(store, model=model, params=params, precision="f16", success=[True] * n, energy=base))
        # scale the q4_0 energies so that (Σ E_low / successes_low) / (Σ E_top / n) == ratio
        k = ratio * sum(ok_low) / n
        ids.append(_run(store, model=model, params=params, precision="q4_0", success=ok_low, energy=[e * k for e in base]))
    return ids


# ------------------------------------------------------------------------------------------
# crossing


def test_crossing_interpolates_in_log_parameters() -> None:
    c = crossing([1e8, 1e9], [1.5, 0.5], 1.0)
    assert c["crossed"] and c["direction"] == "falls below"
    assert c["value"] == pytest.approx(10**8.5)
    c = crossing([1e8, 1e9], [1.25, 0.25], 1.0)  # a quarter of the way in log
    assert c["value"] == pytest.approx(10**8.25)
    assert crossing([1e8, 1e9], [0.5, 2.0], 1.0)["direction"] == "rises above"


def test_crossing_not_in_range_and_undefined_points() -> None:
    assert crossing([1e8, 1e9, 1e10], [1.4, 1.2, 1.1], 1.0) == {"crossed": False, "value": None, "between": None,
                                                               "direction": None}
    # an undefined middle size is skipped: the crossing lies between the outer ones
    c = crossing([1e8, 1e9, 1e10], [2.0, None, 0.0], 1.0)
    assert c["crossed"] and c["value"] == pytest.approx(1e9)
    # the first of several crossings
    assert crossing([1, 10, 100], [2.0, 0.0, 2.0], 1.0)["between"] == [1, 10]


def test_the_threshold_itself_is_not_the_costly_side() -> None:
    # a cost ratio of exactly 1 does not cost more: 1.0 -> 0.8 does not cross
    assert not crossing([1e8, 1e9], [1.0, 0.8], 1.0)["crossed"]
    # 1.2 -> 1.0 crosses, at the larger size
    c = crossing([1e8, 1e9], [1.2, 1.0], 1.0)
    assert c["crossed"] and c["value"] == pytest.approx(1e9)
    # task success: 57/60 is on the tolerance (0.95), not beyond it
    assert not crossing([1e8, 1e9], [57 / 60, 1.0], 1 - 0.05, bad_above=False)["crossed"]
    c = crossing([1e8, 1e9], [0.8, 1.0], 0.95, bad_above=False)
    assert c["crossed"] and c["direction"] == "rises above"
    assert c["value"] == pytest.approx(10 ** (8 + 0.15 / 0.2))


# ------------------------------------------------------------------------------------------
# scale_analysis


def test_energy_ratio_crosses_one_between_the_sizes(store: Store) -> None:
    _two_sizes(store, small_ratio=1.5, large_ratio=0.5)
    res = scale_analysis(store, resamples=400)
    assert len(res["curves"]) == 1
    cv = res["curves"][0]
    assert (cv["family"], cv["precision"], cv["mode"], cv["batch_size"]) == ("qwen2.5-coder", "q4_0", "free", 1)
    small, large = cv["points"]
    assert small["params"] == 10**8 and large["params"] == 10**9
    assert small["energy_per_correct_task_ratio"]["value"] == pytest.approx(1.5)
    assert large["energy_per_correct_task_ratio"]["value"] == pytest.approx(0.5)
    lo, hi = small["energy_per_correct_task_ratio"]["ci95"]
    assert lo <= 1.5 <= hi and hi - lo < 0.5
    ns = cv["n_star"]["energy_per_correct_task"]
    assert ns["crossed"] and ns["value"] == pytest.approx(10**8.5)
    assert ns["ci95"][0] <= ns["value"] <= ns["ci95"][1]
    assert ns["crossing_share"] == 1.0  # every resample crosses: the ratios are far from 1 at both ends
    assert "N* ≈ 316M" in ns["text"]
    # task success is equal at both sizes: no accuracy crossing
    ts = cv["n_star"]["task_success"]
    assert not ts["crossed"] and ts["value"] is None and "not crossed in the measured range" in ts["text"]
    assert cv["points"][0]["task_success_ratio"]["value"] == pytest.approx(1.0)
    json.dumps(res)  # JSON-ready


def test_not_crossed_when_the_low_rung_always_costs_more(store: Store) -> None:
    _two_sizes(store, small_ratio=1.6, large_ratio=1.3)
    ns = scale_analysis(store, resamples=300)["curves"][0]["n_star"]["energy_per_correct_task"]
    assert not ns["crossed"] and ns["value"] is None and ns["ci95"] is None
    assert "stays above 1 at every size" in ns["text"] and ns["measured_range"] == [1e8, 1e9]


def test_task_success_crossing_uses_the_tolerance(store: Store) -> None:
    """q4_0 loses 20 % of the tasks at both sizes: below 1 - 0.05, never crossing; with a 0.3
    tolerance it is within tolerance everywhere, so neither crosses."""
    _two_sizes(store, small_ratio=1.0, large_ratio=1.0, low_success=0.8)
    res = scale_analysis(store, resamples=200)
    pt = res["curves"][0]["points"][0]["task_success_ratio"]
    assert pt["value"] == pytest.approx(0.8) and pt["run"] == pytest.approx(0.8) and pt["baseline"] == 1.0
    assert "stays below 0.95 at every size" in res["curves"][0]["n_star"]["task_success"]["text"]
    res = scale_analysis(store, resamples=200, tolerance=0.3)
    assert res["thresholds"]["task_success"] == pytest.approx(0.7)
    assert "stays at or above 0.7 at every size" in res["curves"][0]["n_star"]["task_success"]["text"]
    with pytest.raises(AgentsimError, match="tolerance"):
        scale_analysis(store, tolerance=1.5)


def test_runs_without_size_and_simulations_are_skipped(store: Store) -> None:
    ids = _two_sizes(store, small_ratio=1.5, large_ratio=0.5)
    old = _run(store, model="qwen2.5-coder-0.5b", params=None, precision="q8_0", success=[True] * 30, energy=[1.0] * 30)
    sim = store.create_run(Run(scenario="chain-arith-d1", backend="oracle", backend_name="oracle", precision_mode="n/a",
                               kernel="simulation", n_instances=1, status="complete"))
    res = scale_analysis(store, [*ids, old, int(sim.id)], resamples=100)
    reasons = {s["run_id"]: s["reason"] for s in res["skipped"]}
    assert "no model_params" in reasons[old] and "simulation" in reasons[int(sim.id)]
    assert [c["precision"] for c in res["curves"]] == ["q4_0"]


def test_cells_only_some_sizes_have_are_dropped_not_pooled(store: Store) -> None:
    _two_sizes(store, small_ratio=1.5, large_ratio=0.5)
    # a depth-2 cell measured only at the small size
    _run(store, model="qwen2.5-coder-0.5b", params=10**8, precision="f16", success=[True] * 30, energy=[1.0] * 30,
         scenario="chain-arith-d2")
    _run(store, model="qwen2.5-coder-0.5b", params=10**8, precision="q4_0", success=[True] * 30, energy=[9.0] * 30,
         scenario="chain-arith-d2")
    cv = scale_analysis(store, resamples=100)["curves"][0]
    assert len(cv["cells_dropped"]) == 1 and "chain-arith-d2" in cv["cells_dropped"][0]
    assert cv["points"][0]["energy_per_correct_task_ratio"]["value"] == pytest.approx(1.5)


def test_one_size_gives_no_n_star(store: Store) -> None:
    _run(store, model="qwen2.5-coder-0.5b", params=10**8, precision="f16", success=[True] * 10, energy=[1.0] * 10)
    _run(store, model="qwen2.5-coder-0.5b", params=10**8, precision="q4_0", success=[True] * 10, energy=[2.0] * 10)
    ns = scale_analysis(store, resamples=50)["curves"][0]["n_star"]["energy_per_correct_task"]
    assert ns["value"] is None and "at least two sizes" in ns["text"]


def test_batch_sizes_and_modes_are_separate_curves(store: Store) -> None:
    for batch in (1, 8):
        for model, params in (("qwen2.5-coder-0.5b", 10**8), ("qwen2.5-coder-1.5b", 10**9)):
            _run(store, model=model, params=params, precision="f16", success=[True] * 10, energy=[1.0] * 10, batch=batch)
            _run(store, model=model, params=params, precision="q4_0", success=[True] * 10,
                 energy=[2.0 if batch == 1 else 0.5] * 10, batch=batch)
    res = scale_analysis(store, resamples=50)
    by_batch = {c["batch_size"]: c for c in res["curves"]}
    assert set(by_batch) == {1, 8}
    assert by_batch[1]["points"][0]["energy_per_correct_task_ratio"]["value"] == pytest.approx(2.0)
    assert by_batch[8]["points"][0]["energy_per_correct_task_ratio"]["value"] == pytest.approx(0.5)


def test_scale_figure_is_an_svg_with_the_curves(store: Store) -> None:
    _two_sizes(store, small_ratio=1.5, large_ratio=0.5)
    svg = scale_figure(scale_axis(store, resamples=100))
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "q4_0" in svg
    empty = scale_figure(ScaleAnalysis(schema=1, tolerance=0.05, resamples=100, seed=1, method="-", runs=0, skipped=[],
                                       curves=[], thresholds={"energy_per_correct_task": 1.0, "task_success": 0.95}))
    assert "<svg" in empty


def test_cli_scale_json_and_svg(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _two_sizes(store, small_ratio=1.5, large_ratio=0.5)
    out_svg = tmp_path / "scale.svg"
    assert main(["scale", *map(str, ids), "--db", store.db, "--json", "--resamples", "200", "--svg", str(out_svg)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert math.isclose(res["curves"][0]["n_star"]["energy_per_correct_task"]["value"], 10**8.5, rel_tol=1e-9)
    assert "<svg" in out_svg.read_text()
    assert main(["scale", "--all", "--db", store.db, "--resamples", "100"]) == 0
    text = capsys.readouterr().out
    assert "N* ≈ 316M" in text and "q4_0" in text
    assert main(["scale", "--db", store.db]) == 2
    assert "RUN_IDS or --all" in capsys.readouterr().err


def test_the_trap_report_carries_the_scale_axis(store: Store, tmp_path: Path) -> None:
    """Runs that span model sizes: the report's JSON holds scale_analysis, its HTML the N* lines
    and the scale plot, its Markdown and terminal text the same lines; one size: none of it."""
    from agentsim.render import build_report, render_html, render_markdown, render_terminal

    ids = _two_sizes(store, small_ratio=1.4, large_ratio=0.6)
    doc = build_report(store, ids, resamples=200)
    assert doc.scale and doc.scale.curves
    html = render_html(doc)
    assert 'id="scale"' in html and "N* ≈" in html and 'id="plot-scale-axis"' in html
    md, _ = render_markdown(doc, plot_dir=None)
    assert "## The scale axis (N*)" in md and "N* ≈" in md
    assert any("N* ≈" in str(getattr(r, "plain", "")) for r in render_terminal(doc))
    one_size = build_report(store, ids[:2], resamples=200)
    assert one_size.scale is None and 'id="scale"' not in render_html(one_size)


def test_measured_and_estimated_energy_are_never_on_one_curve(store: Store) -> None:
    """One size measured, the other estimated: no energy N*, the reason given; seconds still compared."""
    rng = np.random.default_rng(1)
    n = 30
    for model, params, kind in (("qwen2.5-coder-0.5b", 10**8, "measured"), ("qwen2.5-coder-1.5b", 10**9, "estimated")):
        base = list(rng.uniform(5, 15, n))
        _run(store, model=model, params=params, precision="f16", success=[True] * n, energy=base, kind=kind)
        _run(store, model=model, params=params, precision="q4_0", success=[True] * n, energy=[e * 1.2 for e in base],
             kind=kind)
    (cv,) = scale_analysis(store, resamples=200)["curves"]
    ns = cv["n_star"]["energy_per_correct_task"]
    assert ns["value"] is None and "left out" in ns["text"] and "measured" in ns["text"]
    assert cv["n_star"]["seconds_per_correct_task"]["measured_range"] is not None
    # each size on its own keeps its own-kind ratio
    assert [p["energy_per_correct_task_ratio"]["value"] for p in cv["points"]] == [pytest.approx(1.2)] * 2


def test_a_size_whose_cells_differ_in_energy_kind_has_no_energy_ratio(store: Store) -> None:
    rng = np.random.default_rng(2)
    n = 20
    for model, params in (("qwen2.5-coder-0.5b", 10**8), ("qwen2.5-coder-1.5b", 10**9)):
        for scen, kind in (("chain-arith-d1", "measured"), ("chain-linear", "estimated")):
            base = list(rng.uniform(5, 15, n))
            _run(store, model=model, params=params, precision="f16", success=[True] * n, energy=base, kind=kind,
                 scenario=scen)
            _run(store, model=model, params=params, precision="q4_0", success=[True] * n, energy=base, kind=kind,
                 scenario=scen)
    (cv,) = scale_analysis(store, resamples=200)["curves"]
    for p in cv["points"]:
        assert p["energy_kind"] == "mixed"
        assert p["energy_per_correct_task_ratio"]["value"] is None
        assert "never pooled" in p["energy_per_correct_task_ratio"]["reason"]
