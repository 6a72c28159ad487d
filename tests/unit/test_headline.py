"""One home for a run's headline facts: hop accuracy is model-hop accuracy everywhere, one status."""

from __future__ import annotations

import json
from pathlib import Path

import agentsim
from agentsim.analysis import summarize_run
from agentsim.analysis.headline import run_figures, run_status
from agentsim.cli import main
from agentsim.store import Store


def test_hop_accuracy_counts_model_hops_and_every_view_reads_it(tmp_path: Path, capsys) -> None:
    db = tmp_path / "runs.db"
    res = agentsim.simulate(str(Path(__file__).parents[2] / "scenarios" / "fanin-dag.yaml"), ["noisy,p=0.3,seed=2"],
                            instances=12, seed=1, db=str(db))
    store = Store(db)
    run = res.runs[0]
    rows = store.hop_rows([run.id], ["kind", "correct"])
    model = [r for r in rows if r["kind"] != "tool"]
    assert len(model) < len(rows), "the scenario must have tool hops"
    fig = run_figures(store, [store.get_run(run.id)])[run.id]
    assert fig.hop_accuracy == sum(bool(r["correct"]) for r in model) / len(model)
    assert fig.all_hop_accuracy == sum(bool(r["correct"]) for r in rows) / len(rows)
    assert fig.hop_accuracy != fig.all_hop_accuracy  # tool hops are always right: they differ here
    s = summarize_run(store, run.id)
    assert s.model_hop_accuracy == fig.hop_accuracy and s.status == fig.status
    # show --json's r interval is evaluate()'s, clustered by instance, not the profile interval
    assert "clustered by instance" in s.reliability.method
    assert main(["runs", "--db", str(db), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)[0]
    assert listed["hop_accuracy"] == fig.hop_accuracy and listed["status"] == fig.status
    assert main(["runs", "--db", str(db)]) == 0
    assert f"{100 * fig.hop_accuracy:.1f}" in capsys.readouterr().out


def test_a_complete_run_short_of_hops_is_incomplete_in_one_place(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    res = agentsim.simulate("chain-arith", ["oracle"], params={"depth": 2}, instances=3, seed=1, db=str(db))
    store = Store(db)
    r = store.get_run(res.runs[0].id)
    assert run_status(r, r.n_instances * r.hops_per_instance) == "complete"
    assert run_status(r, r.n_instances * r.hops_per_instance - 1) == "incomplete"
