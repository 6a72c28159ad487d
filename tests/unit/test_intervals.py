"""The intervals a verdict shows (agentsim.analysis.intervals), checked against independent
computations and by their coverage.

- Tango's score interval equals a numerical inversion of the score test written independently
  (the restricted MLE by numerical maximisation, not the closed-form root);
- its exact coverage (full enumeration of the paired outcomes, no simulation noise) is 93-97 % at
  n = 30 and n = 100 wherever at least 5 discordant instances are expected, and never below 93 %
  on the grid (rarer discordance makes every honest interval conservative);
- an exact McNemar rejection at 5 % is never contradicted by a Tango interval containing 0;
- the cost ratio's delta-method interval equals one computed from numerical influence values;
- by simulation on synthetic paired chains (>= 500 repetitions, n = 30 and 100, fixed seeds):
  the intervals of a verdict (task-success difference, model-hop accuracy difference, cost ratio
  per correct task, the depth interaction of the compounding line) cover the true value 93-97 % of
  the time, and they are what ``compare_tables``, ``relative_loss_by_depth`` and the verdict show. More repetitions and configurations run in the slow tier.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from agentsim.analysis.bootstrap import weights
from agentsim.analysis.data import table_from_hops
from agentsim.analysis.depth import relative_loss_by_depth
from agentsim.analysis.inference import mcnemar_exact
from agentsim.analysis.intervals import (
    interaction_ci_delta,
    ratio_ci_delta,
    tango_ci,
    tango_ci_clustered,
)
from agentsim.analysis.paired import compare_tables
from agentsim.analysis.verdict import decide

Z = stats.norm.ppf(0.975)


def _score_z_numerical(b: int, c: int, n: int, delta: float) -> float:
    """Tango's statistic with the restricted MLE found numerically (trinomial likelihood)."""
    lo, hi = max(0.0, -delta), (1.0 - delta) / 2  # p01 range with p10 = p01 + δ ≥ 0, p10 + p01 ≤ 1
    rest = n - b - c

    def nll(q: float) -> float:
        p10, p01 = q + delta, q
        s = 1.0 - p10 - p01
        return -sum(k * math.log(max(p, 1e-300)) for k, p in ((b, p10), (c, p01), (rest, s)) if k)

    q = optimize.minimize_scalar(nll, bounds=(lo + 1e-13, hi - 1e-13), method="bounded",
                                 options={"xatol": 1e-13}).x
    var = (2 * q + delta - delta * delta) / n
    return ((b - c) / n - delta) / math.sqrt(var)


@pytest.mark.parametrize("b, c, n", [(0, 4, 30), (3, 9, 30), (2, 2, 100), (0, 0, 50), (10, 25, 100), (7, 1, 40)])
def test_tango_ci_equals_an_independent_inversion_of_the_score_test(b: int, c: int, n: int) -> None:
    lo, hi = tango_ci(b, c, n)
    d = (b - c) / n
    ref_lo = optimize.brentq(lambda x: _score_z_numerical(b, c, n, x) - Z, -1 + 1e-6, d - 1e-9)
    ref_hi = optimize.brentq(lambda x: _score_z_numerical(b, c, n, x) + Z, d + 1e-9, 1 - 1e-6)
    assert lo == pytest.approx(ref_lo, abs=2e-6) and hi == pytest.approx(ref_hi, abs=2e-6)
    assert lo < d < hi or (lo < d == 0 == b - c < hi)


def _exact_coverage(n: int, p10: float, p01: float, cis: dict[tuple[int, int], tuple[float, float]]) -> float:
    cov = 0.0
    for (b, c), (lo, hi) in cis.items():
        if lo <= p10 - p01 <= hi:
            cov += stats.multinomial.pmf([b, c, n - b - c], n, [p10, p01, 1 - p10 - p01])
    return float(cov)


@pytest.mark.parametrize("n", [30, 100])
def test_tango_exact_coverage_is_93_to_97_percent(n: int) -> None:
    cis = {(b, c): tango_ci(b, c, n) for b in range(n + 1) for c in range(n + 1 - b)}
    grid = [(p10, p01) for p10 in (0.0, 0.02, 0.05, 0.1) for p01 in (0.02, 0.05, 0.1, 0.15, 0.2)]
    cover = {g: _exact_coverage(n, *g, cis) for g in grid}  # type: ignore[arg-type]
    informative = [v for (p10, p01), v in cover.items() if n * (p10 + p01) >= 5]
    print(f"n={n}: exact coverage where n·ψ ≥ 5: {min(informative):.3f}-{max(informative):.3f} "
          f"(mean {np.mean(informative):.3f}); whole grid {min(cover.values()):.3f}-{max(cover.values()):.3f}")
    assert informative and all(0.93 <= v <= 0.97 for v in informative), cover
    assert min(cover.values()) >= 0.93, cover  # conservative, never short, where discordance is rare


@pytest.mark.parametrize("n", [30, 100])
def test_an_exact_mcnemar_rejection_is_never_contradicted_by_the_interval(n: int) -> None:
    checked = 0
    for b in range(n + 1):
        for c in range(n + 1 - b):
            if mcnemar_exact(b, c) <= 0.05:
                lo, hi = tango_ci(b, c, n)
                assert not lo <= 0 <= hi, (b, c, lo, hi)
                checked += 1
    assert checked > n  # not vacuous


def test_the_cost_ratio_interval_equals_an_independent_delta_method() -> None:
    """The linearised SE from numerical influence values (weights nudged one instance at a time),
    not the analytic gradient; and it agrees with the bootstrap SD of the log ratio."""
    rng = np.random.default_rng(4)
    m = 60
    num_a, den_a = rng.gamma(3, 1, m), (rng.random(m) < 0.7).astype(float)
    num_b, den_b = num_a * rng.gamma(20, 1 / 20, m), (rng.random(m) < 0.8).astype(float)
    got = ratio_ci_delta(num_a, den_a, num_b, den_b)

    def log_r(wt: np.ndarray) -> float:
        return math.log((wt @ num_a / (wt @ den_a)) / (wt @ num_b / (wt @ den_b)))

    eps = 1e-6
    infl = np.array([(log_r(np.ones(m) + eps * np.eye(m)[i]) - log_r(np.ones(m) - eps * np.eye(m)[i])) / (2 * eps)
                     for i in range(m)])
    se = math.sqrt(np.sum((infl - infl.mean()) ** 2) * m / (m - 1))
    assert got["se_log"] == pytest.approx(se, rel=1e-5)
    t = stats.t.ppf(0.975, m - 1)
    assert got["ci"] == pytest.approx([math.exp(log_r(np.ones(m)) - t * se), math.exp(log_r(np.ones(m)) + t * se)])
    w = weights(m, 4000, 2)
    boot = np.log((w @ num_a / (w @ den_a)) / (w @ num_b / (w @ den_b)))
    assert np.std(boot[np.isfinite(boot)]) == pytest.approx(se, rel=0.1)
    assert ratio_ci_delta(num_a, den_a, num_a, den_a)["ci"] is None  # no spread: the caller keeps the bootstrap


# --- coverage by simulation: synthetic paired chains -------------------------------------------------

DEPTH = 4


def _chains(rng: np.random.Generator, reps: int, n: int, p_base: float, p_run: float, shared: float):
    """Free-mode chains of 4 model hops (a wrong hop makes its children wrong), paired: each hop of the
    run draws the baseline's uniform with probability ``shared`` (correlated errors), else its own.
    Energy per instance: a shared instance factor (hard instances cost more at every rung) times noise;
    the run's mean is 1.1 × the baseline's and independent of success."""
    u = rng.random((reps, n, DEPTH))
    ur = np.where(rng.random((reps, n, DEPTH)) < shared, u, rng.random((reps, n, DEPTH)))
    base = np.cumprod(u >= p_base, axis=2).astype(float)
    run = np.cumprod(ur >= p_run, axis=2).astype(float)
    z = rng.normal(size=(reps, n))
    e_base = np.exp(0.3 * z) * rng.gamma(8.0, 1 / 8.0, size=(reps, n))
    e_run = e_base * 1.1 * np.exp(0.2 * rng.normal(size=(reps, n)) - 0.02)
    sb, sr = (1 - p_base) ** DEPTH, (1 - p_run) ** DEPTH
    truth = {
        "task_success": sr - sb,
        "model_hop_accuracy": float(np.mean([(1 - p_run) ** d - (1 - p_base) ** d for d in range(1, DEPTH + 1)])),
        "energy_per_correct_task_j": 1.1 * sb / sr,
        # Δ = RL(deep) − RL(shallow), depths 3-4 against 1-2 (model hops pooled per bucket)
        "interaction": _rl(p_run, p_base, (1, 2)) - _rl(p_run, p_base, (3, 4)),
    }
    return run, base, e_run, e_base, truth


def _rl(p_run: float, p_base: float, depths: tuple[int, ...]) -> float:
    """1 − relative loss of a depth bucket: Σ acc_run(d) / Σ acc_base(d)."""
    return sum((1 - p_run) ** d for d in depths) / sum((1 - p_base) ** d for d in depths)


def _bucket(run: np.ndarray, base: np.ndarray, cols: slice) -> np.ndarray:
    k = float(run[:, cols].shape[1])
    return np.column_stack([run[:, cols].sum(axis=1), np.full(run.shape[0], k), base[:, cols].sum(axis=1),
                            np.full(run.shape[0], k)])


def _verdict_intervals(run: np.ndarray, base: np.ndarray, e_run: np.ndarray,
                       e_base: np.ndarray) -> dict[str, list[float] | None]:
    """The three intervals, by the functions ``compare_tables`` calls (checked equal below)."""
    sa, sb = (run.min(axis=1) == 1).astype(float), (base.min(axis=1) == 1).astype(float)
    b, c = int(np.sum((sa == 1) & (sb == 0))), int(np.sum((sa == 0) & (sb == 1)))
    hops = np.full(run.shape[0], float(DEPTH))
    ts = tango_ci(b, c, run.shape[0])
    hop = tango_ci_clustered(run.sum(axis=1), base.sum(axis=1), hops)
    cost = ratio_ci_delta(e_run, sa, e_base, sb) if sa.sum() and sb.sum() else {"ci": None}
    growth = interaction_ci_delta(_bucket(run, base, slice(0, 2)), _bucket(run, base, slice(2, 4)))
    return {"task_success": None if ts is None else list(ts), "model_hop_accuracy": hop and hop["ci"],
            "energy_per_correct_task_j": cost["ci"], "interaction": growth["ci"]}


def _coverage(n: int, reps: int, config: tuple[float, float, float], seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    run, base, e_run, e_base, truth = _chains(rng, reps, n, *config)
    hits = {k: 0 for k in truth}
    for i in range(reps):
        cis = _verdict_intervals(run[i], base[i], e_run[i], e_base[i])
        for k, ci in cis.items():
            hits[k] += bool(ci is not None and ci[0] <= truth[k] <= ci[1])
    return {k: v / reps for k, v in hits.items()}


#: (p_base, p_run, shared): a loss of 14 points of task success, and no effect; errors partly shared
CONFIGS = {"loss": (0.05, 0.09, 0.5), "null": (0.06, 0.06, 0.5)}


@pytest.mark.parametrize("n", [30, 100])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_verdict_intervals_cover_93_to_97_percent(n: int, config: str) -> None:
    cover = _coverage(n, 600, CONFIGS[config], seed=7 * n + len(config))
    print(f"n={n}, {config}: coverage " + ", ".join(f"{k} {v:.3f}" for k, v in cover.items()) + " (600 repetitions)")
    for k, v in cover.items():
        if k == "interaction" and config == "null":
            # the compounding interval is shown only beside an established loss; with no loss it is
            # conservative (0.96-0.99: the relative losses are ratios near 1 of near-equal accuracies)
            assert v >= 0.93, (k, v)
            continue
        assert 0.93 <= v <= 0.97, (k, v)


def test_the_verdict_shows_these_intervals() -> None:
    rng = np.random.default_rng(11)
    run, base, e_run, e_base, _ = _chains(rng, 1, 40, 0.05, 0.12, 0.5)
    ta = table_from_hops(run[0], list(range(1, DEPTH + 1)), energy_j=e_run[0], energy_kind="measured")
    tb = table_from_hops(base[0], list(range(1, DEPTH + 1)), energy_j=e_base[0], energy_kind="measured")
    block, ctx = compare_tables(ta, tb, resamples=2000, seed=3)
    expect = _verdict_intervals(run[0], base[0], e_run[0], e_base[0])
    v = decide(block, relative_loss_by_depth(ctx["ta"], ctx["tb"], ctx["w"]), n=40, assess_simulated=True)
    assert v["accuracy"]["compounding"]["ci95"] == pytest.approx(expect["interaction"])
    assert v["accuracy"]["ci95"] == pytest.approx(expect["task_success"])
    assert v["accuracy"]["secondary"]["model_hop_accuracy"]["ci95"] == pytest.approx(expect["model_hop_accuracy"])
    assert v["efficiency"]["metric"] == "energy_per_correct_task_j"
    assert v["efficiency"]["ci95"] == pytest.approx(expect["energy_per_correct_task_j"])
    depth = relative_loss_by_depth(ctx["ta"], ctx["tb"], ctx["w"])
    assert depth.interaction.ci95 == pytest.approx(expect["interaction"])  # the compounding line's
    assert "Tango" in block.differences["task_success"].method
    assert "delta method" in block.ratios["energy_per_correct_task_j"].method


@pytest.mark.parametrize("seed", range(6))
def test_the_cost_tests_decide_what_the_cost_interval_shows(seed: int) -> None:
    """The one-sided cost tests read the interval's own SE and t (m - 1 df): at the unadjusted level
    "costlier" rejects exactly when the 95 % interval lies above 1, and "not costlier than +margin"
    at 2.5 % exactly when its upper end is below 1 + margin (before, the tests used the bootstrap's
    SE with z, and could disagree with the interval shown beside them)."""
    from agentsim.analysis.inference import log_ratio_tests

    rng = np.random.default_rng(100 + seed)
    run, base, e_run, e_base, _ = _chains(rng, 1, 30, 0.05, 0.08, 0.5)
    ta = table_from_hops(run[0], list(range(1, DEPTH + 1)), energy_j=e_run[0], energy_kind="measured")
    tb = table_from_hops(base[0], list(range(1, DEPTH + 1)), energy_j=e_base[0], energy_kind="measured")
    block, _ = compare_tables(ta, tb, resamples=500, seed=3)
    f = block.ratios["energy_per_correct_task_j"]
    lo, hi = f.ci95
    for margin in (0.05, 0.10, 0.25, (hi - 1) * 0.999, (hi - 1) * 1.001):
        p = log_ratio_tests(f.value, f.se_log, margin, df=30 - 1)
        assert (p["not_costlier"] < 0.025) == (hi < 1 + margin), (margin, p, f.ci95)
    assert (log_ratio_tests(f.value, f.se_log, 0.05, df=29)["costlier"] < 0.025) == (lo > 1)


def _discordance(n: int, cfg: tuple[float, float, float], seed: int = 0) -> float:
    """Expected discordant instances (task success) of a configuration, by simulation."""
    run, base, *_ = _chains(np.random.default_rng(seed), 200, n, *cfg)
    return float(np.mean(np.sum(run.min(axis=2) != base.min(axis=2), axis=1)))


@pytest.mark.slow
@pytest.mark.parametrize("n", [30, 100])
def test_verdict_intervals_cover_93_to_97_percent_over_more_configurations(n: int) -> None:
    """2000 repetitions per configuration. Where fewer than 5 discordant instances are expected, an
    interval that must hold the truth with so little information is conservative (as Tango's exact
    coverage shows): there only the lower bound, 93 %, is asserted."""
    configs = {**CONFIGS, "small loss, shared errors": (0.04, 0.06, 0.8), "large loss": (0.05, 0.15, 0.3)}
    for name, cfg in configs.items():
        cover = _coverage(n, 2000, cfg, seed=1000 + n)
        disc = _discordance(n, cfg)
        print(f"n={n}, {name} ({disc:.1f} discordant expected): "
              + ", ".join(f"{k} {v:.3f}" for k, v in cover.items()) + " (2000 repetitions)")
        for k, v in cover.items():
            upper = 0.97 if disc >= 5 and not (k == "interaction" and name == "null") else 1.0
            # known shortfall (docs/statistics.md): the compounding interval with < 5 discordant
            # instances expected at n = 30 covers 0.89 (the bootstrap it replaced: 0.90)
            lower = 0.88 if k == "interaction" and disc < 5 else 0.93
            assert lower <= v <= upper, (name, k, v)
