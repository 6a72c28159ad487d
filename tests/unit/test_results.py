"""The one JSON mechanism of the typed analysis results (agentsim.analysis.results.to_json)."""

from __future__ import annotations

import json
import math

import numpy as np

from agentsim.analysis.results import (
    ABSENT,
    Discordant,
    Estimate,
    IdentityDifference,
    PairedComparison,
    PairedEstimate,
    Pairing,
    Verdict,
    present,
    to_json,
)


def test_absent_is_left_out_and_none_is_written():
    e = Estimate(value=None, ci95=None, reason="no correct task")
    assert e.to_json() == {"value": None, "ci95": None, "reason": "no correct task"}
    assert not ABSENT and not present(ABSENT) and present(None)
    assert list(PairedEstimate(1.0, [0.5, 2.0], se_log=None).to_json()) == ["value", "ci95", "se_log"]


def test_numpy_and_non_finite_floats_become_plain_json():
    out = to_json({"a": np.float64(0.25), "b": [np.int64(3), math.nan], "c": (math.inf,)})
    assert out == {"a": 0.25, "b": [3, None], "c": [None]}
    json.dumps(out, allow_nan=False)


def test_flatten_writes_the_pairing_first_and_json_order_keeps_the_identity_keys_in_their_order():
    pairing = Pairing(True, 10, 30, 20, 0, 0, False)
    diff = IdentityDifference(value=0.0, ci95=[0.0, 0.0], p_value=1.0, method="identity", run=0.5, baseline=0.5)
    cmp = PairedComparison(pairing=pairing, identity=True, differences={"task_success": diff}, ratios={})
    out = cmp.to_json()
    assert list(out)[:2] == ["paired", "instances_paired"] and "pairing" not in out
    assert list(out["differences"]["task_success"]) == ["value", "ci95", "p_value", "method", "run", "baseline"]
    computed = PairedEstimate(value=-0.1, ci95=[-0.2, 0.0], se=0.05, method="m", run=0.4, baseline=0.5,
                              p_value=0.03, test="t", discordant=Discordant(1, 4))
    assert list(computed.to_json()) == ["value", "ci95", "se", "method", "run", "baseline", "p_value", "test",
                                        "discordant"]


def test_a_verdict_with_no_tests_has_three_keys():
    assert Verdict.short("not compared", "why").to_json() == {"verdict": "not compared", "line": "why",
                                                               "instances_needed": None}
