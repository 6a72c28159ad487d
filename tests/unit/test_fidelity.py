"""agentsim.fidelity without a model: the per-hop figures against independent formulas, the
top-k estimate, flips, the reference rule, the cache, and the simulation backends' refusal."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax, rel_entr

from agentsim import fidelity
from agentsim.errors import AgentsimError
from agentsim.fidelity_tables import fidelity_passes, fidelity_rows
from agentsim.launch import execute
from agentsim.store import Store


def _lp(rng: np.random.Generator, m: int, v: int, scale: float = 3.0) -> np.ndarray:
    return log_softmax(rng.normal(size=(m, v)) * scale, axis=1)


def test_hop_metrics_match_independent_formulas() -> None:
    rng = np.random.default_rng(1)
    ref = _lp(rng, 6, 50)
    rung = log_softmax(ref + rng.normal(size=ref.shape) * 0.3, axis=1)
    toks = list(ref.argmax(axis=1))
    m = fidelity.hop_metrics(ref, rung, toks)
    kl = rel_entr(np.exp(ref), np.exp(rung)).sum(axis=1)
    assert m.kld_mean == pytest.approx(kl.mean(), rel=1e-9)
    assert m.kld_max == pytest.approx(kl.max(), rel=1e-9) and m.kld_max_at == int(kl.argmax())
    same = ref.argmax(1) == rung.argmax(1)
    assert m.same_top == pytest.approx(same.mean())
    dp = np.exp(ref)[np.arange(6), toks] - np.exp(rung)[np.arange(6), toks]
    assert m.delta_p_rms == pytest.approx(float(np.sqrt((dp ** 2).mean())))
    assert m.parted_at == (int(np.flatnonzero(~same)[0]) if (~same).any() else None)


def test_identical_distributions_give_zero() -> None:
    ref = _lp(np.random.default_rng(2), 4, 30)
    m = fidelity.hop_metrics(ref, ref.copy(), [0, 1, 2, 3])
    assert m.kld_mean == 0.0 and m.same_top == 1.0 and m.parted_at is None and m.delta_p_rms == 0.0


def test_parted_at_is_the_first_differing_top() -> None:
    ref = np.log(np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1]]))
    rung = np.log(np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.4, 0.5, 0.1]]))
    m = fidelity.hop_metrics(ref, rung, [0, 0, 0])
    assert m.parted_at == 1 and m.same_top == pytest.approx(1 / 3)


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError):
        fidelity.hop_metrics(np.zeros((2, 3)), np.zeros((3, 3)), [0, 1])


def test_topk_estimate_approaches_exact_with_all_tokens_listed() -> None:
    rng = np.random.default_rng(3)
    ref = _lp(rng, 3, 8)
    rung = log_softmax(ref + rng.normal(size=ref.shape) * 0.5, axis=1)
    full = [{t: float(row[t]) for t in range(8)} for row in ref]
    full_q = [{t: float(row[t]) for t in range(8)} for row in rung]
    toks = [0, 1, 2]
    exact = fidelity.hop_metrics(ref, rung, toks)
    est = fidelity.topk_hop_metrics(full, full_q, toks)
    assert est.kld_mean == pytest.approx(exact.kld_mean, rel=1e-6, abs=1e-9)
    # with only the top k listed it is an estimate: a coarser partition, so never above the
    # exact figure, and non-decreasing towards it as k grows
    last = -1.0
    for k in range(1, 9):
        top = [{t: float(row[t]) for t in np.argsort(-row)[:k]} for row in ref]
        top_q = [{t: float(row[t]) for t in np.argsort(-row)[:k]} for row in rung]
        est_k = fidelity.topk_hop_metrics(top, top_q, toks)
        assert 0.0 <= est_k.kld_mean <= exact.kld_mean + 1e-12
        assert est_k.kld_mean >= last - 1e-12
        last = est_k.kld_mean
    assert last == pytest.approx(exact.kld_mean, rel=1e-6)
    # a rung against itself: 0 at every k
    top = [{t: float(row[t]) for t in np.argsort(-row)[:2]} for row in ref]
    assert fidelity.topk_hop_metrics(top, top, toks).kld_mean == 0.0


def test_reference_cache_is_bounded() -> None:
    from agentsim.backends.base import TokenScores

    c = fidelity.ReferenceCache(max_bytes=3 * 800)
    for i in range(5):
        c.put((i,), TokenScores("exact", [0], np.zeros((1, 100))))  # 800 bytes each
    assert c.get((0,)) is None and c.get((4,)) is not None and c.get((2,)) is not None


@pytest.fixture
def sim_runs(tmp_path):
    store = Store(tmp_path / "s.db")
    runs, failures = execute(["chain-linear"], ["noisy,p=0.3", "oracle"], store=store, instances=6, seed=1)
    assert not failures
    yield store, runs
    store.close()


def test_flips_count_both_directions(sim_runs) -> None:
    store, (noisy, oracle) = sim_runs
    f = fidelity.flips(store, noisy.id, oracle.id)
    ok_n = {i.index: i.success for i in store.instances(noisy.id)}
    assert f.tasks_paired == 6
    assert f.task_wrong_to_right == 0  # the oracle is always right
    assert f.task_right_to_wrong == sum(1 for v in ok_n.values() if not v)
    back = fidelity.flips(store, oracle.id, noisy.id)
    assert back.task_wrong_to_right == f.task_right_to_wrong and back.hop_wrong_to_right == f.hop_right_to_wrong


def test_simulations_are_unavailable_with_the_reason(sim_runs) -> None:
    store, (noisy, oracle) = sim_runs
    res = fidelity.compute_fidelity(store, noisy.id, oracle.id)
    assert res.compared == 0 and res.kind == "unavailable" and "simulation" in (res.note or "")
    rows = fidelity_rows(store, noisy.id, oracle.id)
    assert rows and all(r.status in ("unavailable", "diverged") for r in rows)
    s = fidelity.fidelity_summary(store, noisy.id)
    assert s is not None and s.kld_mean is None and s.compared == 0
    # a second pass replaces the first
    fidelity.compute_fidelity(store, noisy.id, oracle.id)
    assert len(fidelity_rows(store, noisy.id, oracle.id)) == len(rows)
    assert len(fidelity_passes(store, noisy.id)) == 1


def test_free_mode_hops_with_other_inputs_are_diverged(sim_runs) -> None:
    store, (noisy, oracle) = sim_runs
    fidelity.compute_fidelity(store, noisy.id, oracle.id)
    rows = {(r.instance_index, r.hop_id): r for r in fidelity_rows(store, noisy.id, oracle.id)}
    ref = {(h.instance_index, h.hop_id): h.prompt for h in store.hops(oracle.id)}
    for h in store.hops(noisy.id):
        if h.kind == "tool":
            continue
        r = rows[(h.instance_index, h.hop_id)]
        assert (r.status == "diverged") == (h.prompt != ref[(h.instance_index, h.hop_id)])


def test_a_reference_of_other_instances_is_refused(tmp_path) -> None:
    store = Store(tmp_path / "r.db")
    (a,), _ = execute(["chain-linear"], ["oracle"], store=store, instances=3, seed=1)
    (b,), _ = execute(["chain-linear"], ["oracle"], store=store, instances=3, seed=2)
    with pytest.raises(AgentsimError, match="other instances"):
        fidelity.compute_fidelity(store, a.id, b.id)
    with pytest.raises(AgentsimError, match="own reference"):
        fidelity.compute_fidelity(store, a.id, a.id)


def test_run_figures_and_flat_columns(sim_runs) -> None:
    store, (noisy, oracle) = sim_runs
    fig = fidelity.run_figures(store, noisy, oracle.id)
    assert isinstance(fig, fidelity.RunFidelity) and fig.reference_run_id == oracle.id
    assert fig.flips is not None and fig.flips.tasks_paired == 6 and fig.fidelity is None and fig.floor == ()
    flat = fidelity.flat_figures(fig)
    assert flat["flips_task_right_to_wrong"] == fig.flips.task_right_to_wrong
    assert flat["kld_mean"] is None and flat["floor_run_id"] is None
    # its JSON: the keys the dicts had, the flips' sums after their counts
    js = fig.to_json()
    assert list(js) == ["reference_run_id", "flips", "fidelity", "floor"] and js["floor"] == []
    assert list(js["flips"])[-2:] == ["task_flips", "hop_flips"]
    assert js["flips"]["task_flips"] == fig.flips.task_right_to_wrong + fig.flips.task_wrong_to_right
    # a run held against itself: no flips, no fidelity
    own = fidelity.run_figures(store, noisy, noisy.id)
    assert own.reference_run_id == noisy.id and own.flips is None and own.fidelity is None
