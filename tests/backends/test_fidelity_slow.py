"""Fidelity on the default real model (slow tier): the rungs order by KLD as llama.cpp's own
measurements predict for this family (q8_0 < q4_k_m < q4_0, mxfp4 near q4_0), with intervals
that separate q8_0 from q4_0 on the demo scenarios at 12 instances (docs/fidelity.md has the
figures of this run). Needs the prepared ladder in the user's model cache (``agentsim models
prepare``); about 10-20 min on 2 shared cores. Run with ``pytest --runslow``."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsim import fidelity, models
from agentsim.launch import Launch, RunControl, run_launch
from agentsim.measure import UnavailableMeter
from agentsim.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.llama]

RUNGS = ["f16", "q8_0", "q4_k_m", "q4_0", "mxfp4"]


@pytest.mark.timeout(3600)
def test_rungs_order_by_kld_on_the_demo_scenarios(user_model_cache: None, tmp_path: Path) -> None:
    from agentsim.errors import AgentsimError

    missing = []
    for r in RUNGS:
        try:
            models.resolve(models.DEFAULT_MODEL, r)
        except AgentsimError:
            missing.append(r)
    if missing:
        pytest.skip(f"rungs not prepared: {', '.join(missing)} (agentsim models prepare)")
    store = Store(tmp_path / "f.db")
    launch = Launch(scenarios=["chain-linear", "fanin-dag"], backends=[f"llama:{models.DEFAULT_MODEL}@{r}" for r in RUNGS],
                    modes="oracle", instances=12, batch_sizes=8, energy="off", fidelity=True)
    res = run_launch(launch, store=store, control=RunControl(meter=UnavailableMeter()))
    assert not res.failures
    for scenario in ("chain-linear", "fanin-dag"):
        by = {r.precision: fidelity.fidelity_summary(store, r.id) for r in res.runs if r.scenario == scenario
              and r.precision != "f16"}
        k = {p: s.kld_mean for p, s in by.items()}
        assert k["q8_0"] < k["q4_k_m"] < k["q4_0"], (scenario, k)
        assert k["mxfp4"] > k["q4_k_m"], (scenario, k)
        assert by["q8_0"].kld_ci95[1] < by["q4_0"].kld_ci95[0], (scenario, by["q8_0"], by["q4_0"])
        assert all(s.kind == "exact" and s.compared == s.hops for s in by.values())
