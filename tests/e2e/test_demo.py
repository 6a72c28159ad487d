"""``agentsim demo`` (what ``make demo`` runs): the whole main job end to end, on the noisy
fallback (fast tier) and on the real default model at the quick settings (slow tier)."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest

from agentsim.demo import DEMO_SCENARIOS, run_demo


def _args(db: Path, **kw) -> argparse.Namespace:
    return argparse.Namespace(db=str(db), instances=kw.get("instances"), quick=kw.get("quick", False),
                              batch=kw.get("batch"), report=str(db.with_suffix(".html")))


def _runs(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute("select scenario, backend, mode, batch_size, status from run order by id").fetchall()


def test_demo_without_llama_runs_the_noisy_ladder_and_writes_table_verdicts_and_report(tmp_path, monkeypatch, capsys):
    """Without llama-cpp-python the demo says so and runs the model-free ladder: every run
    complete, the comparison table, verdicts and the HTML report, exit 0."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    db = tmp_path / "demo.db"
    assert run_demo(_args(db, instances=6, batch=4)) == 0
    out = capsys.readouterr().out
    assert "llama-cpp-python is not installed" in out and "batch 4" in out
    runs = _runs(db)
    assert len(runs) == len(DEMO_SCENARIOS) * 3 * 2
    assert {r[3] for r in runs} == {4} and {r[4] for r in runs} == {"complete"}
    assert "verdicts" in out and "Browse it" in out
    assert db.with_suffix(".html").stat().st_size > 10_000
    # the fidelity pass is on: simulations have no distributions (stored unavailable, with the
    # reason), and the flips against the top rung are shown beside accuracy
    assert "flips and fidelity against the baseline" in out and "fidelity pass: 8 passes" in out
    with sqlite3.connect(db) as c:
        statuses = {r[0] for r in c.execute("select distinct status from hop_fidelity")}
    assert statuses <= {"unavailable", "diverged"} and "unavailable" in statuses


def test_demo_refuses_a_batch_below_one(tmp_path):
    from agentsim.errors import AgentsimError

    with pytest.raises(AgentsimError, match="--batch"):
        run_demo(_args(tmp_path / "d.db", instances=2, batch=-1))


@pytest.mark.slow
@pytest.mark.llama
def test_quick_demo_on_the_real_model_batched_equals_batch_1(tmp_path, user_model_cache):
    """The quick demo (f16, q4_k_m, mxfp4) at batch 4 stores the same answers as at batch 1."""
    from agentsim import models

    if not all(models.resolve(None, r).path.exists() for r in ("f16", "q4_k_m", "mxfp4")):
        pytest.skip("the default model's quick rungs are not prepared (make demo prepares them)")
    dbs = [tmp_path / f"b{b}.db" for b in (1, 4)]
    for db, b in zip(dbs, (1, 4), strict=True):
        assert run_demo(_args(db, instances=4, quick=True, batch=b)) == 0
    rows = []
    for db, b in zip(dbs, (1, 4), strict=True):
        with sqlite3.connect(db) as c:
            # the demo's own runs (at batch 4 it also runs one rung at batch 1: its noise floor)
            rows.append(c.execute("select r.backend, r.mode, r.scenario, h.instance_index, h.hop_id, h.completion, "
                                  "h.error_kind from hop h join run r on r.id = h.run_id where r.batch_size = ? "
                                  "order by r.backend, r.mode, r.scenario, h.instance_index, h.hop_id", (b,)).fetchall())
    assert rows[0] == rows[1]
    with sqlite3.connect(dbs[1]) as c:  # the floor: one batch-4 run scored against its batch-1 twin
        floor = c.execute("select count(*) from fidelity_pass p join run a on a.id = p.run_id "
                          "join run b on b.id = p.reference_run_id where a.backend = b.backend "
                          "and a.batch_size = 4 and b.batch_size = 1").fetchone()[0]
    assert floor == 1
