"""Paired statistics: exact tests, paired vs unpaired intervals, no false certainty, identity."""

from __future__ import annotations

import numpy as np
import pytest

from agentsim.analysis.bootstrap import wilson_clustered, zero_discordance_bound
from agentsim.analysis.data import table_from_hops
from agentsim.analysis.paired import clustered_mcnemar, compare_tables, mcnemar_exact


def chain(rng: np.random.Generator, m: int, depth: int, p: float, u: np.ndarray | None = None) -> np.ndarray:
    """Free-mode chain outcomes: hop j is right iff hops 1..j all passed (u: shared uniforms)."""
    u = rng.random((m, depth)) if u is None else u
    return np.cumprod(u >= p, axis=1).astype(float)


def test_mcnemar_exact_known_values():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 10) == pytest.approx(2 * 0.5 ** 10)
    assert mcnemar_exact(2, 12) == pytest.approx(0.01294, abs=1e-4)  # 2 * P(X <= 2), X ~ Bin(14, 1/2)


def test_clustered_mcnemar_is_one_without_discordance_and_small_with_a_consistent_one():
    assert clustered_mcnemar(np.zeros(5), np.zeros(5)) == 1.0
    assert clustered_mcnemar(np.ones(50), np.zeros(50)) < 1e-6
    assert clustered_mcnemar(np.array([1, 0] * 25), np.array([0, 1] * 25)) == 1.0


def test_paired_interval_is_narrower_than_unpaired_on_correlated_runs():
    rng = np.random.default_rng(3)
    m, depth = 150, 4
    u = rng.random((m, depth))  # the same draws: a hard instance is hard for both
    base = table_from_hops(chain(rng, m, depth, 0.05, u), [1, 2, 3, 4])
    run = table_from_hops(chain(rng, m, depth, 0.15, u), [1, 2, 3, 4])
    block, _ = compare_tables(run, base, seed=1)
    for name in ("task_success", "model_hop_accuracy"):
        d = block.differences[name]
        paired = d.ci95[1] - d.ci95[0]
        unpaired = d.unpaired_ci95[1] - d.unpaired_ci95[0]
        assert paired < 0.8 * unpaired, (name, paired, unpaired)
        assert d.ci95[1] < 0  # the loss is detected


def test_identity_is_exact_and_equal_runs_are_not_certain():
    rng = np.random.default_rng(0)
    perfect = table_from_hops(np.ones((150, 3)), [1, 2, 3])
    same, _ = compare_tables(perfect, perfect, identity=True)
    assert same.differences["task_success"].ci95 == [0.0, 0.0]
    assert same.ratios["task_success"].ci95 == [1.0, 1.0]
    other, _ = compare_tables(table_from_hops(np.ones((150, 3)), [1, 2, 3]), perfect)
    d = other.differences["task_success"]
    u = zero_discordance_bound(150)
    # Tango's interval at no discordance is ±(Wilson upper bound for 0 of m): Newcombe's method 10 there
    assert d.value == 0.0 and d.ci95[0] == pytest.approx(-u) and d.ci95[1] == pytest.approx(u)
    assert d.method.startswith("Tango")
    assert 0.02 < u < 0.03  # ≈ 3.84 / 153.84
    r = other.ratios["task_success"]
    assert r.ci95[0] < 1.0 == r.value <= r.ci95[1]
    assert "zero-discordance" in r.method
    # partial agreement: the same interval for task success; the ratio is still the paired bootstrap
    c = chain(rng, 150, 3, 0.1)
    part = compare_tables(table_from_hops(c, [1, 2, 3]), perfect)[0]
    assert part.differences["task_success"].method.startswith("Tango")
    assert part.ratios["task_success"].method.startswith("paired")


def test_every_ratio_contains_its_point_even_at_zero():
    rng = np.random.default_rng(1)
    zero = table_from_hops(np.zeros((40, 2)), [1, 2])
    base = table_from_hops(chain(rng, 40, 2, 0.1), [1, 2])
    block, _ = compare_tables(zero, base)
    for name in ("task_success", "model_hop_accuracy"):
        r = block.ratios[name]
        assert r.value == 0.0 and r.ci95[0] == 0.0 <= r.ci95[1]
    for seed in range(20):
        rng = np.random.default_rng(seed)
        a = table_from_hops(chain(rng, 30, 3, 0.3), [1, 2, 3], energy_j=rng.random(30) + 1, energy_kind="measured")
        b = table_from_hops(chain(rng, 30, 3, 0.1), [1, 2, 3], energy_j=rng.random(30) + 1, energy_kind="measured")
        blk, _ = compare_tables(a, b, seed=seed)
        for f in list(blk.ratios.values()) + list(blk.differences.values()):
            if f and f.ci95:
                assert f.ci95[0] <= f.value <= f.ci95[1]


def test_energy_ratio_only_within_one_kind():
    rng = np.random.default_rng(2)
    c = chain(rng, 50, 2, 0.1)
    a = table_from_hops(c, [1, 2], energy_j=np.full(50, 2.0), energy_kind="measured")
    b = table_from_hops(c, [1, 2], energy_j=np.full(50, 1.0), energy_kind="estimated")
    blk, _ = compare_tables(a, b)
    e = blk.ratios["energy_per_correct_task_j"]
    assert e.value is None and "kinds differ" in e.reason


def test_clustered_wilson_is_wider_than_hop_wilson_when_hops_are_correlated():
    from agentsim.analysis.bootstrap import wilson

    rng = np.random.default_rng(4)
    c = chain(rng, 100, 6, 0.15)  # free-mode chains: strongly correlated hops
    f = wilson_clustered(c.sum(axis=1), np.full(100, 6.0))
    naive = wilson(c.sum(), c.size)
    assert f["design_effect"] > 1.5
    assert f["ci95"][1] - f["ci95"][0] > 1.2 * (naive[1] - naive[0])
    assert f["ci95"][0] < f["value"] < f["ci95"][1]
    # 100 % is not certainty
    full = wilson_clustered(np.full(150, 4.0), np.full(150, 4.0))
    assert full["ci95"][1] == 1.0 and full["ci95"][0] < 0.98
