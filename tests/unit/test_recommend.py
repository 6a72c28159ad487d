"""``agentsim recommend``: the cheapest rung shown non-inferior, never an established-worse one."""

from __future__ import annotations

import json

import pytest

import agentsim
from agentsim.analysis import analyse, evaluate
from agentsim.analysis.recommend import recommend
from agentsim.cli import main


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "runs.db"
    agentsim.simulate("chain-arith", ["noisy,p=0.0", "noisy,p=0.0,seed=2", "noisy,p=0.3,seed=3"],
                      params={"depth": 3}, instances=120, seed=1, db=str(path))
    return path


def test_recommend_picks_a_non_inferior_rung_and_excludes_the_harmful_one(db):
    from agentsim.store import Store

    store = Store(db)
    ev = analyse(store, [1, 2, 3], resamples=400)
    verdicts = {b.run_id: b.verdict.verdict for b in ev.runs}
    assert verdicts[2] == "no trap" and verdicts[3] in ("accuracy trap", "accuracy loss")
    (rec,) = recommend(ev)
    assert rec.recommended.run_id in (1, 2)
    assert [x.run_id for x in rec.excluded] == [3]
    # a budget nobody meets: none within it
    (tight,) = recommend(ev, max_seconds_per_task=1e-12)
    assert tight.recommended is None and "none shown yet" in tight.line


def test_recommend_cli_json_and_bad_input(db, capsys):
    assert main(["recommend", "1", "2", "3", "--db", str(db), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["recommendations"][0]["recommended"]["run_id"] in (1, 2)
    assert "Holm" in out["multiplicity"]
    assert main(["recommend", "1", "2", "--db", str(db), "--max-loss", "2"]) == 2
    captured = capsys.readouterr()
    assert "max-loss" in captured.err + captured.out
    assert main(["recommend", "1", "2", "--db", str(db)]) == 0
    assert "chain-arith" in capsys.readouterr().out


def test_a_baseline_of_another_scenario_is_refused(tmp_path):
    from agentsim.store import Store

    db = tmp_path / "x.db"
    agentsim.simulate("chain-arith", ["noisy,p=0.0"], params={"depth": 3}, instances=6, seed=1, db=str(db))
    agentsim.simulate("chain-arith", ["noisy,p=0.2"], params={"depth": 4}, instances=6, seed=1, db=str(db))
    doc = evaluate(Store(db), [2], baseline=1, resamples=400)
    (b,) = [x for x in doc["runs"] if x["run_id"] == 2]
    assert b["verdict"]["verdict"] == "not compared" and b["paired"] is None
    assert "one scenario fingerprint" in b["verdict"]["line"]
