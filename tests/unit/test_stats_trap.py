"""The trap detector: direction and calibration of the verdicts, baselines, evaluate()'s JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

import agentsim
from agentsim.analysis import evaluate
from agentsim.analysis.data import table_from_hops
from agentsim.analysis.depth import relative_loss_by_depth
from agentsim.analysis.paired import compare_tables
from agentsim.analysis.verdict import decide
from agentsim.errors import AgentsimError

DEPTHS = [1, 2, 3, 4]


def _verdict(run, base, **kw):
    block, ctx = compare_tables(run, base, seed=kw.pop("seed", 0))
    depth = relative_loss_by_depth(ctx["ta"], ctx["tb"], ctx["w"])
    return decide(block, depth, n=ctx["m"], **kw), block


def _chain(u: np.ndarray, p: float) -> np.ndarray:
    return np.cumprod(u >= p, axis=1).astype(float)


def test_equal_p_gives_no_trap_or_inconclusive_in_90_percent_of_seeds():
    ok = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        # independent error draws at the same p: the hardest case for a false alarm
        base = table_from_hops(_chain(rng.random((100, 4)), 0.1), DEPTHS, energy_j=rng.gamma(20, 0.05, 100),
                               energy_kind="measured")
        run = table_from_hops(_chain(rng.random((100, 4)), 0.1), DEPTHS, energy_j=rng.gamma(20, 0.05, 100),
                              energy_kind="measured")
        v, _ = _verdict(run, base, seed=seed)
        ok += v["verdict"] in ("no trap", "inconclusive")
        if v["verdict"] == "inconclusive":
            assert "instances would" in v["line"] or "no effect observed" in v["line"]
    assert ok >= 45, ok


def test_synthetic_accuracy_trap_and_efficiency_trap_name_their_kind():
    rng = np.random.default_rng(7)
    u = rng.random((200, 4))
    base = table_from_hops(_chain(u, 0.05), DEPTHS, energy_j=np.full(200, 1.0), energy_kind="measured")
    run = table_from_hops(_chain(u, 0.20), DEPTHS, energy_j=np.full(200, 0.9), energy_kind="measured")
    v, block = _verdict(run, base)
    assert v["verdict"] == "accuracy trap and efficiency trap"  # 10 % less energy per task, but far fewer correct ones
    assert "measured energy" in v["line"]
    assert block.differences["task_success"].value < 0
    assert block.ratios["energy_per_correct_task_j"].ci95[0] > 1
    # cheaper per correct answer and no accuracy loss: no trap
    cheap = table_from_hops(_chain(u, 0.05), DEPTHS, energy_j=np.full(200, 0.5), energy_kind="measured")
    v2, _ = _verdict(cheap, base)
    assert v2["verdict"] == "no trap", v2["line"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    db = tmp_path_factory.mktemp("trap") / "runs.db"
    # simulation backends carry no precision: the baseline is the lowest run id of a group (p = 0.05)
    res = agentsim.simulate("chain-arith", ["noisy,p=0.05", "noisy,p=0.2"], params={"depth": 4},
                            instances=120, seed=2, db=str(db), mode="both")
    return res


def _find(out, p, mode):
    return next(b for b in out["runs"] if b["backend"].endswith(f"p={p}") and b["mode"] == mode)


def test_store_runs_low_precision_with_p20_is_an_accuracy_trap(runs):
    ids = [r.id for r in runs.runs]
    out = evaluate(runs.store, ids)
    json.dumps(out, allow_nan=False)
    by_id = {b["run_id"]: b for b in out["runs"]}
    q4_free, f16_free = _find(out, 0.2, "free"), _find(out, 0.05, "free")
    assert q4_free["baseline_run_id"] == f16_free["run_id"] and f16_free["is_baseline"]
    assert f16_free["verdict"]["verdict"] == "baseline"
    assert q4_free["verdict"]["verdict"] == "accuracy trap", q4_free["verdict"]["line"]
    d = q4_free["paired"]["differences"]
    assert d["task_success"]["value"] < 0 and d["task_success"]["ci95"][1] < 0
    assert q4_free["depth"]["interaction"]["ci95"][0] > 0
    assert q4_free["reliability"]["ci95"][0] <= 0.8 <= q4_free["reliability"]["ci95"][1]
    oracle = _find(out, 0.2, "oracle")
    assert oracle["reliability"]["r"] is None  # no r in oracle mode
    assert by_id[oracle["baseline_run_id"]]["mode"] == "oracle"  # same mode
    for key in ("model", "source_precision", "precision_mode", "machine", "energy_kinds", "n", "seed", "agentsim_version"):
        assert key in q4_free
    assert q4_free["propagation"]["p_wrong_given_parent_wrong"]["value"] > 0.9
    assert len(out["verdicts"]) == 4


def test_baseline_choice_by_precision_and_run_id(runs, tmp_path):
    import shutil

    from agentsim.store import Store

    shutil.copy(runs.store.db, tmp_path / "copy.db")
    store = Store(tmp_path / "copy.db")
    ids = [r.id for r in runs.runs]
    # label the runs as rungs of one model: the default baseline is the one with the most bits
    for r in runs.runs:
        store.update_run(r.id, precision="q4_0" if r.backend.endswith("0.05") else "q8_0")
    q8 = {r.id for r in runs.runs if not r.backend.endswith("0.05")}
    out = evaluate(store, ids, resamples=400)
    assert {b["baseline_run_id"] for b in out["runs"]} == q8
    q4 = {r.id for r in runs.runs if r.backend.endswith("0.05")}
    out = evaluate(store, ids, baseline="q4_0", resamples=400)
    assert {b["baseline_run_id"] for b in out["runs"]} == q4
    out = evaluate(runs.store, ids, baseline=str(ids[0]), resamples=400)
    assert {b["baseline_run_id"] for b in out["runs"]} == {ids[0]}
    with pytest.raises(AgentsimError):
        evaluate(runs.store, ids, baseline="fp3")
    with pytest.raises(AgentsimError):
        evaluate(runs.store, ids, baseline="nvfp4")


def test_free_and_oracle_runs_of_one_launch_pair(runs):
    free = next(r for r in runs.runs if r.backend.endswith("0.05") and r.mode == "free")
    orac = next(r for r in runs.runs if r.backend.endswith("0.05") and r.mode == "oracle")
    out = evaluate(runs.store, [free.id, orac.id], baseline=orac.id, resamples=400)
    p = next(b for b in out["runs"] if b["run_id"] == free.id)["paired"]
    assert p["paired"] and p["instances_paired"] == 120
    # free mode compounds errors: task success cannot be higher than in oracle mode... per instance
    assert p["differences"]["task_success"]["discordant"]["run_only"] == 0
