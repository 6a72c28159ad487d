"""The decisions of the verdict, by simulation on synthetic paired data (the analysis functions, no engine).

- family-wise false-trap rate over 6 null rungs (Holm) ≤ 5 %, at n = 30 and n = 100, 500 repetitions;
- (the coverage of the intervals a verdict shows: tests/unit/test_intervals.py);
- the exact McNemar power at the n an inconclusive verdict asks for is ≥ 0.8;
- the cases that the issue reproduced: 0 vs 4 discordant of 30 is not a trap, a large uniform loss in
  oracle mode is an "accuracy loss", an identical rung with enough instances reaches "no trap".

The statistics of many repetitions are computed at once (numpy); the decisions are the real
:func:`agentsim.analysis.verdict.decide_all` on the real evidence objects.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from agentsim.analysis.bootstrap import ratio_of_sums, weights
from agentsim.analysis.data import table_from_hops
from agentsim.analysis.depth import relative_loss_by_depth
from agentsim.analysis.inference import (
    exact_mcnemar_n,
    exact_mcnemar_power,
    holm,
    mcnemar_exact,
    paired_noninferiority,
)
from agentsim.analysis.paired import compare_tables
from agentsim.analysis.results import Discordant, PairedEstimate
from agentsim.analysis.verdict import Evidence, decide, decide_all

RUNGS = 6
HARM = ("accuracy loss", "accuracy trap", "efficiency trap", "accuracy trap and efficiency trap",
        "accuracy loss and efficiency trap")


def _null_family(rng: np.random.Generator, reps: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Success (reps, rungs+1, n) and energy (same shape) of a baseline (index 0) and 6 null rungs.

    Instances differ in difficulty (shared by every rung: the runs are correlated, as real rungs are);
    every rung has the baseline's success probability and cost distribution."""
    z = rng.normal(size=(reps, 1, n))
    succ = (0.8 * z + 0.6 * rng.normal(size=(reps, RUNGS + 1, n)) > -0.6).astype(float)
    scale = np.exp(0.3 * z)
    energy = rng.gamma(8.0, 1.0, size=(reps, RUNGS + 1, n)) * scale
    return succ, energy, z, scale


def _family_evidence(succ: np.ndarray, energy: np.ndarray, w: np.ndarray) -> list[list[Evidence]]:
    """The evidence of each rung against the baseline, per repetition, statistics vectorised."""
    reps, _, n = succ.shape
    base = succ[:, :1, :]
    b = np.sum((succ[:, 1:] == 1) & (base == 0), axis=2)
    c = np.sum((succ[:, 1:] == 0) & (base == 1), axis=2)
    p = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(b, c), b + c, 0.5))
    p[(b + c) == 0] = 1.0
    # energy per correct task: Σ energy / Σ success, paired bootstrap of the log ratio (as compare_tables)
    e2 = energy.transpose(2, 0, 1).reshape(n, -1)
    s2 = succ.transpose(2, 0, 1).reshape(n, -1)
    r = ratio_of_sums(w, e2, s2).reshape(w.shape[0], reps, RUNGS + 1)
    point = (energy.sum(axis=2) / np.maximum(succ.sum(axis=2), 1))
    ratio = point[:, 1:] / point[:, :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log(r[:, :, 1:] / r[:, :, :1])
    se_log = np.nanstd(np.where(np.isfinite(lr), lr, np.nan), axis=0, ddof=1)
    out = []
    for i in range(reps):
        evs = []
        for k in range(RUNGS):
            ts = PairedEstimate(value=float((b[i, k] - c[i, k]) / n), ci95=None, p_value=float(p[i, k]),
                                discordant=Discordant(run_only=int(b[i, k]), baseline_only=int(c[i, k])))
            cost = PairedEstimate(value=float(ratio[i, k]), ci95=[0.0, 0.0], se_log=float(se_log[i, k]))
            evs.append(Evidence(label=f"rung {k}", baseline_label="base", mode="oracle", n=n, ts=ts, cost=cost,
                                cost_metric="energy_per_correct_task_j", cost_kind="measured"))
        out.append(evs)
    return out


@pytest.mark.parametrize("n", [30, 100])
def test_family_wise_false_trap_rate_over_six_null_rungs_is_at_most_5_percent(n: int) -> None:
    rng = np.random.default_rng(2026 + n)
    reps = 500
    succ, energy, _, _ = _null_family(rng, reps, n)
    w = weights(n, 400, 11)
    false_trap = 0
    for evs in _family_evidence(succ, energy, w):
        verdicts = decide_all(evs)
        false_trap += any(v.verdict in HARM for v in verdicts)
    rate = false_trap / reps
    print(f"n={n}: family-wise false-trap rate over {RUNGS} null rungs = {rate:.3f} ({reps} repetitions)")
    # 500 repetitions: the binomial SE at 5 % is 1 %; the exact test and Holm make it conservative
    assert rate <= 0.05, rate
    # not vacuous: without any adjustment, six rungs' harm tests raise far more false alarms
    raw = 0
    for evs in _family_evidence(succ[:100], energy[:100], w):
        raw += any((e.p_loss or 1) <= 0.05 and e.discordant[1] > e.discordant[0]
                   or (e.cost_tests["costlier"] or 1) <= 0.05 for e in evs)
    assert raw / 100 > rate


def test_null_rungs_that_rarely_differ_mostly_reach_no_trap_at_n_300() -> None:
    """Without an effect, the no-trap path is reachable: rungs that flip 2 % of instances either way."""
    rng = np.random.default_rng(5)
    reps, n = 40, 300
    base = (rng.random((reps, 1, n)) < 0.8).astype(float)
    flip = rng.random((reps, RUNGS, n)) < 0.02
    succ = np.concatenate([base, np.where(flip, 1 - base, base)], axis=1)
    verdicts = []
    for i in range(reps):
        evs = []
        for k in range(RUNGS):
            b = int(np.sum((succ[i, k + 1] == 1) & (succ[i, 0] == 0)))
            c = int(np.sum((succ[i, k + 1] == 0) & (succ[i, 0] == 1)))
            ts = PairedEstimate(value=(b - c) / n, ci95=None, p_value=mcnemar_exact(b, c),
                                discordant=Discordant(run_only=b, baseline_only=c))
            evs.append(Evidence(label=f"rung {k}", baseline_label="base", mode="free", n=n, ts=ts,
                                cost_reason="not assessed"))
        verdicts += [v.verdict for v in decide_all(evs)]
    share = verdicts.count("no trap") / len(verdicts)
    print(f"null rungs flipping 2 %, n = {n}: no trap in {share:.2f}")
    assert share >= 0.8, share


def test_exact_power_at_the_asked_n_is_at_least_0_8() -> None:
    # the verdict's own ask: a 0 vs 4 loss among 30 instances, inconclusive
    run, base = _tables(b=0, c=4, n=30)
    v = _decide(run, base, simulated=True)
    assert v["verdict"] == "inconclusive" and v["instances_needed"], v["line"]
    n = v["instances_needed"]
    p10, p01 = 0 / 30, 4 / 30
    assert exact_mcnemar_power(n, p10, p01) >= 0.8 > exact_mcnemar_power(n - 1, p10, p01) - 0.02
    rng = np.random.default_rng(3)
    sims = rng.multinomial(n, [p10, p01, 1 - p10 - p01], size=4000)
    rej = np.mean([mcnemar_exact(int(b), int(c)) <= 0.05 for b, c, _ in sims])
    assert rej >= 0.8 - 2.5 * np.sqrt(0.16 / 4000), rej
    # Connor's asymptotic n would fall short of the exact test's power
    for p10, p01 in ((0.02, 0.12), (0.05, 0.15), (0.0, 0.1)):
        m = exact_mcnemar_n(p10, p01)
        assert m is not None and exact_mcnemar_power(m, p10, p01) >= 0.8


def _tables(b: int, c: int, n: int, hops: int = 4, both_wrong: int = 0):
    """Chains of ``hops`` model hops: b instances right only in the run, c only in the baseline."""
    rb = np.ones((n, hops))
    rr = np.ones((n, hops))
    for i in range(b):
        rb[i, -1] = 0
    for i in range(b, b + c):
        rr[i, -1] = 0
    for i in range(b + c, b + c + both_wrong):
        rb[i, -1] = rr[i, -1] = 0
    depths = list(range(1, hops + 1))
    return table_from_hops(rr, depths), table_from_hops(rb, depths)


def _decide(run, base, mode: str = "free", **kw):
    block, ctx = compare_tables(run, base, seed=1, resamples=1000)
    depth = relative_loss_by_depth(ctx["ta"], ctx["tb"], ctx["w"])
    return decide(block, depth, n=ctx["m"], mode=mode, **kw)


def test_zero_vs_four_discordant_of_30_is_not_a_trap() -> None:
    run, base = _tables(b=0, c=4, n=30)
    v = _decide(run, base, simulated=True)
    assert v["verdict"] == "inconclusive", v["line"]
    assert "trap" not in v["verdict"] and not v["accuracy"]["loss"]
    assert v["accuracy"]["p_value"] == pytest.approx(0.125)
    assert "instances would decide the observed loss" in v["line"]
    run5, base5 = _tables(b=0, c=5, n=30)
    assert _decide(run5, base5, simulated=True)["verdict"] == "inconclusive"  # p = 0.0625


def test_a_large_uniform_loss_in_oracle_mode_is_an_accuracy_loss() -> None:
    # demo run 18's shape: -66.7 pp on 12 instances, p = 0.0078 (8 vs 0 discordant), oracle mode
    run, base = _tables(b=0, c=8, n=12)
    v = _decide(run, base, mode="oracle", simulated=True)
    assert v["verdict"] == "accuracy loss", v["line"]
    assert v["accuracy"]["difference"] == pytest.approx(-8 / 12)
    assert "inconclusive" not in v["line"]


def test_a_rung_identical_to_its_baseline_reaches_no_trap() -> None:
    run, base = _tables(b=0, c=0, n=120, both_wrong=20)
    v = _decide(run, base, simulated=True)
    assert v["verdict"] == "no trap", v["line"]
    assert v["accuracy"]["non_inferior"]
    # too few instances to show it: inconclusive, with the n that would (no loss observed)
    small, sbase = _tables(b=0, c=0, n=30, both_wrong=5)
    v2 = _decide(small, sbase, simulated=True)
    assert v2["verdict"] == "inconclusive" and "no loss observed" in v2["line"]
    assert v2["instances_needed"] and v2["instances_needed"] > 30


@pytest.mark.parametrize(("factor", "verdict"), [(1.03, "no trap"), (1.15, "efficiency trap")])
def test_a_cost_shown_within_the_margin_is_no_trap(factor: float, verdict: str) -> None:
    """Costlier and within +5 % both established (the demo's q8_0 on fanin-dag: x1.03 [1.02, 1.03]):
    the margin is what "as cheap" means, so it is no trap; +15 % beyond the margin is one."""
    rr = np.ones((120, 4))
    rr[:20, -1] = 0
    rng = np.random.default_rng(5)
    e_base = rng.gamma(8.0, 1 / 8.0, 120)
    e_run = e_base * factor * np.exp(0.005 * rng.normal(size=120))
    depths = [1, 2, 3, 4]
    run = table_from_hops(rr, depths, energy_j=e_run, energy_kind="measured")
    base = table_from_hops(rr.copy(), depths, energy_j=e_base, energy_kind="measured")
    v = _decide(run, base)
    assert v["efficiency"]["p_costlier_adjusted"] < 0.05, v["line"]
    assert v["verdict"] == verdict, v["line"]
    assert v["efficiency"]["not_costlier"] == (factor < 1.05)
    if factor < 1.05:  # on 30 instances: inconclusive, and what decides it is non-inferiority, not the cost
        small = _decide(table_from_hops(rr[:30], depths, energy_j=e_run[:30], energy_kind="measured"),
                        table_from_hops(rr[:30].copy(), depths, energy_j=e_base[:30], energy_kind="measured"))
        assert small["verdict"] == "inconclusive", small["line"]
        assert "cost increase" not in small["line"] and small["instances_needed"] > 30, small["line"]


def test_tango_noninferiority_and_holm_against_references() -> None:
    # Holm: statsmodels' multipletests(method="holm") gives these for [0.01, 0.04, 0.03, 0.005]
    assert holm([0.01, 0.04, 0.03, None, 0.005]) == pytest.approx([0.03, 0.06, 0.06, None, 0.02], abs=1e-12)
    # Tango's score test at zero discordance: Z = sqrt(n δ / (1 − δ))
    assert paired_noninferiority(0, 0, 100, 0.05) == pytest.approx(stats.norm.sf(np.sqrt(100 * 0.05 / 0.95)))
    # more losses than gains can still be non-inferior when the margin is wide enough
    assert paired_noninferiority(2, 4, 200, 0.05) < 0.05 < paired_noninferiority(2, 4, 200, 0.005)
