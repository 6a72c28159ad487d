from __future__ import annotations

import math

import pytest

import agentsim
from agentsim.analysis import compare_runs, ratio_ci, summarize_run, wilson
from agentsim.analysis.power import mcnemar_n, se_scaling_n


def test_wilson_contains_the_estimate_and_narrows_with_n():
    lo, hi = wilson(8, 10)
    assert lo < 0.8 < hi
    lo2, hi2 = wilson(80, 100)
    assert hi2 - lo2 < hi - lo
    assert wilson(0, 0) is None


def test_ratio_ci_katz():
    lo, hi = ratio_ci(0.5, 100, 0.8, 100)
    # textbook Katz interval for 50/100 vs 80/100
    se = math.sqrt(1 / 50 - 1 / 100 + 1 / 80 - 1 / 100)
    assert math.isclose(lo, 0.625 * math.exp(-1.96 * se)) and math.isclose(hi, 0.625 * math.exp(1.96 * se))
    same = ratio_ci(0.8, 1000, 0.8, 1000)
    assert same[0] < 1 < same[1] and same[1] - same[0] < 0.1
    assert ratio_ci(0.5, 10, 0.0, 10) is None
    assert ratio_ci(None, 10, 0.5, 10) is None


def test_ratio_ci_point_inside_and_no_false_certainty():
    lo, hi = ratio_ci(0.0, 40, 0.5, 40)
    assert lo == 0.0 < hi  # the observed ratio 0 lies in its interval
    lo, hi = ratio_ci(1.0, 150, 1.0, 150)
    assert lo < 1.0 < hi  # 100 % vs 100 % is not certainty


def test_power_formulas():
    # Connor (1987): p10 = 0.2, p01 = 0.05: [1.96 * 0.5 + 0.8416 * sqrt(0.25 - 0.0225)]^2 / 0.0225 = 84.8
    assert mcnemar_n(0.2, 0.05) == 85
    assert mcnemar_n(0.1, 0.1) is None
    assert se_scaling_n(100, 0.05, -0.05) == math.ceil(100 * ((1.959964 + 0.841621) * 0.05 / 0.05) ** 2)
    assert se_scaling_n(100, 0.05, 0.0) is None


@pytest.fixture(scope="module")
def dag_runs(tmp_path_factory):
    db = tmp_path_factory.mktemp("an") / "r.db"
    return agentsim.simulate("fanin-dag", ["noisy,p=0.3", "oracle"], instances=40, seed=4, db=str(db), mode="both")


def test_summary_model_hop_accuracy_excludes_tool_hops_and_oracle_mode_has_no_r(dag_runs):
    for run in dag_runs.runs:
        s = summarize_run(dag_runs.store, run.id)
        rows = dag_runs.store.hop_rows([run.id], ["kind", "correct"])
        llm = [r for r in rows if r["kind"] != "tool"]
        assert any(r["kind"] == "tool" for r in rows)
        assert s.model_hops == len(llm)
        assert s.model_hop_accuracy == pytest.approx(sum(r["correct"] for r in llm) / len(llm))
        assert s.accuracy == pytest.approx(sum(r["correct"] for r in rows) / len(rows))
        lo, hi = s.model_hop_accuracy_ci95
        assert lo <= s.model_hop_accuracy <= hi
        if run.mode == "oracle":
            assert s.reliability.r is None and s.reliability.reason.startswith("oracle mode")


def test_compare_runs_baseline_against_itself_is_exact(dag_runs):
    ids = [r.id for r in dag_runs.runs]
    rows = compare_runs(dag_runs.store, ids)
    for s in rows:
        if s.run_id == s.baseline_run_id:
            assert s.relative_ci95["accuracy"] == [1.0, 1.0] and s.relative["task_success"] == 1.0
        else:
            assert s.paired.pairing.paired and s.verdict.line
            for k in ("accuracy", "model_hop_accuracy", "task_success"):
                ci = s.relative_ci95[k]
                if ci is not None:
                    assert ci[0] <= s.relative[k] <= ci[1]
    # same group (model, scenario, params, mode, seed): the baseline shares the run's mode
    by_id = {s.run_id: s for s in rows}
    assert all(by_id[s.baseline_run_id].mode == s.mode for s in rows)


def test_an_undefined_cost_ratio_says_which_side_lacks_what(tmp_path):
    """Was: 'undefined (no correct task, no energy reading or no token count on one side)'."""
    from agentsim.analysis import evaluate
    from agentsim.store import Store

    res = agentsim.simulate(["chain-linear"], ["noisy,p=0.9,seed=2", "oracle"], instances=4, seed=1,
                            db=tmp_path / "r.db")
    store = Store(tmp_path / "r.db")
    noisy, oracle = (r.id for r in res.runs)
    doc = evaluate(store, [noisy, oracle], oracle)
    block = next(b for b in doc["runs"] if b["run_id"] == noisy)
    reason = block["paired"]["ratios"]["seconds_per_correct_task"]["reason"]
    assert reason == "undefined (the run has no correct task)", reason
    tokens = block["paired"]["ratios"]["tokens_per_s"]["reason"]
    assert "the run has no token count" in tokens and "the baseline has no token count" in tokens
