"""Root causes and the propagation factor on noisy free-mode runs."""

from __future__ import annotations

import agentsim
from agentsim.analysis.data import load_run
from agentsim.analysis.propagation import propagation


def test_propagation_on_a_noisy_chain(tmp_path):
    res = agentsim.simulate("chain-arith", "noisy,p=0.2", params={"depth": 4}, instances=80, seed=6,
                            db=str(tmp_path / "r.db"), mode="both")
    free = next(r for r in res.runs if r.mode == "free")
    orac = next(r for r in res.runs if r.mode == "oracle")
    out = propagation(load_run(res.store, free.id), resamples=500)
    rc = out.root_causes
    failed = sum(1 for i in res.store.instances(free.id) if not i.success)
    assert rc.instances_failed == failed
    assert sum(rc.by_hop.values()) >= failed and set(rc.by_kind) == {"llm"}
    # the noisy backend is right given its inputs: a wrong parent makes the child wrong
    pw = out.p_wrong_given_parent_wrong
    pr = out.p_wrong_given_parents_right
    assert pw.value > 0.9 and pr.ci95[0] <= 0.2 <= pr.ci95[1]
    assert out.factor.ci95[0] > 2 and out.factor.ci95[0] <= out.factor.value
    assert propagation(load_run(res.store, orac.id)).applicable is False
