"""End-to-end: the bundled families through the engine and the store.

``oracle`` must score 100% on every family at several depths; ``noisy,p=P`` must lose whole
tasks as (1-P)^(model hops) in free mode (tool hops never err) while each model hop keeps about
1-P in oracle mode. The noisy backend's draws are seeded, so these statistical checks are
deterministic; the tolerances (about three standard errors) only guard against reseeding.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from agentsim.analysis import summarize_run
from agentsim.api import simulate
from agentsim.scenario import resolve_scenario
from agentsim.scenario.listing import scenario_shape
from tests.helpers import run_cli

FAMILIES = [
    "chain-arith", "var-track", "pointer-chase", "relation-compose", "fan-in", "agent-workflow",
    "weekday-arith",
]


def _cli(*args: str) -> subprocess.CompletedProcess:
    proc = run_cli(*args)
    assert "Traceback" not in proc.stderr
    return proc


@pytest.mark.parametrize("name", FAMILIES)
def test_oracle_scores_everything_at_several_depths(name):
    res = simulate(name, "oracle", instances=3, seed=11, mode="both", db="sqlite://",
                   params={"depth": [1, 3, 6] if name != "agent-workflow" else [1, 2, 4],
                           "answer": ["plain", "json"]})
    assert len(res.runs) == 3 * 2 * 2
    for run in res.runs:
        s = summarize_run(res.store, run.id)
        assert s.status == "complete"
        assert s.accuracy == 1.0 and s.task_success == 1.0, (run.scenario, run.params, run.mode)
        assert s.error_kinds["none"] == s.hops_recorded > 0


@pytest.fixture(scope="module")
def noisy_runs():
    """chain-arith at depths 1 and 4, and relation-compose (tool hops) at depth 2, p = 0.3."""
    out = []
    for name, depths, n in (("chain-arith", [1, 4], 120), ("relation-compose", [2], 100)):
        res = simulate(name, "noisy,p=0.3,seed=2", instances=n, seed=5, mode="both",
                       db="sqlite://", params={"depth": depths})
        for run in res.runs:
            sc = resolve_scenario(name, dict(run.params))
            out.append((name, run.params["depth"], run.mode, scenario_shape(sc)["llm_hops"],
                        summarize_run(res.store, run.id), res.store, run))
    return out


def test_noisy_free_mode_task_success_falls_as_power_of_depth(noisy_runs):
    p = 0.3
    success = {}
    for name, depth, mode, llm_hops, s, _, _ in noisy_runs:
        if mode != "free":
            continue
        predicted = (1 - p) ** llm_hops
        assert abs(s.task_success - predicted) < 0.12, (name, depth, s.task_success, predicted)
        success[(name, depth)] = s.task_success
        # errors really propagate: some hop is wrong only because its parent was
        if depth > 1:
            assert s.error_kinds["propagated"] > 0
    assert success[("chain-arith", 4)] < success[("chain-arith", 1)] - 0.3


def test_noisy_oracle_mode_keeps_per_hop_accuracy(noisy_runs):
    p = 0.3
    for name, depth, mode, _, s, store, run in noisy_runs:
        if mode != "oracle":
            continue
        rows = [r for r in store.hop_rows([run.id]) if r["kind"] == "llm"]
        acc = sum(bool(r["correct"]) for r in rows) / len(rows)
        assert abs(acc - (1 - p)) < 0.08, (name, depth, acc)
        # in oracle mode nothing propagates: every error is the hop's own
        assert s.error_kinds["propagated"] == 0
        # and the accuracy does not fall with a hop's depth in the graph
        by_depth = s.accuracy_by_depth
        llm_depths = sorted({int(r["depth"]) for r in rows})
        first, last = by_depth[str(llm_depths[0])].accuracy, by_depth[str(llm_depths[-1])].accuracy
        assert abs(first - last) < 0.2


def test_cli_lists_families_as_json():
    items = json.loads(_cli("scenarios", "list", "--json").stdout)
    by_name = {i["name"]: i for i in items}
    for name in FAMILIES:
        assert {"name", "description", "params"} <= set(by_name[name])
        assert "depth" in by_name[name]["params"]
    assert by_name["agent-workflow-d2"]["family"] == "agent-workflow"


def test_cli_show_is_deterministic_and_takes_params():
    args = ("scenarios", "show", "pointer-chase", "--seed", "4", "--param", "depth=5",
            "--param", "distractors=3", "--json")
    a, b = json.loads(_cli(*args).stdout), json.loads(_cli(*args).stdout)
    assert a == b
    assert len(a["hops"]) == 5 and a["params"]["distractors"] == 3
    assert all(h["expected"] for h in a["hops"]) and all(h["prompt"] for h in a["hops"])
    other = json.loads(_cli("scenarios", "show", "pointer-chase", "--seed", "5", "--param",
                            "depth=5", "--json").stdout)
    assert other["vars"] != a["vars"]
    text = _cli("scenarios", "show", "agent-workflow", "--param", "answer=json").stdout
    assert "verify" in text and "JSON" in text


def test_cli_runs_a_family_file_and_a_sweep(tmp_path):
    from agentsim.store import Store

    db = str(tmp_path / "f.db")
    _cli("run", "scenarios/relation-compose-d3.yaml", "weekday-arith", "-p", "depth=2..3",
         "-b", "oracle", "-n", "2", "--db", db)
    store = Store(db)
    shows = [summarize_run(store, r.id) for r in store.list_runs()]
    assert len(shows) == 4
    assert sorted(s.params["depth"] for s in shows) == [2, 2, 3, 3]
    assert all(s.accuracy == 1.0 for s in shows)
