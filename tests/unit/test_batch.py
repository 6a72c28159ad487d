"""Batched execution (``--batch B``): B instances advance together and their ready hops go to the
backend as one ``generate_batch`` call. Judgement, error attribution and root causes are exactly
those of batch 1; wall time and energy are shared by tokens and labelled as attributed."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from agentsim.backends.base import (
    Backend,
    BackendInfo,
    Completion,
    GenerationRequest,
    register_backend,
)
from agentsim.errors import AgentsimError
from agentsim.launch import Launch, RunControl, execute, parse_batch_sizes, resume_run, run_launch
from agentsim.measure import EnergyMeter, EnergyReading
from agentsim.scenario import load_scenario
from agentsim.store import Store
from tests.helpers import ScriptedBackend, write
from tests.unit.test_engine import CHAIN, FANIN


class CountingBackend(Backend):
    """Answers the expected value (or ``SCRIPT[hop_id](request)``), reports token counts, and
    records every call: ``("one", [hop ids])`` for ``generate``, ``("batch", [...])`` for a batch."""

    NAME: ClassVar[str] = "counting"
    SIMULATED: ClassVar[bool] = True
    SCRIPT: ClassVar[dict[str, Any]] = {}
    CALLS: ClassVar[list[tuple[str, list[str]]]] = []
    FAIL_BATCH: ClassVar[bool] = False

    def _answer(self, r: GenerationRequest) -> Completion:
        action = self.SCRIPT.get(r.hop_id)
        text = str(r.expected) if action is None else str(action(r) if callable(action) else action)
        return Completion(text=text, prompt_tokens=len(r.prompt), completion_tokens=len(text),
                          prefill_s=0.001, decode_s=0.002)

    def generate(self, request: GenerationRequest) -> Completion:
        CountingBackend.CALLS.append(("one", [request.hop_id]))
        return self._answer(request)

    def generate_batch(self, requests: Any, *, return_exceptions: bool = False) -> list[Any]:
        CountingBackend.CALLS.append(("batch", [r.hop_id for r in requests]))
        if self.FAIL_BATCH:
            raise RuntimeError("the batched kernel fell over")
        out: list[Any] = []
        for r in requests:
            try:
                out.append(self._answer(r))
            except Exception as exc:  # noqa: BLE001
                out.append(exc)
        return out

    def info(self) -> BackendInfo:
        return BackendInfo(name="counting", kernel="test")


register_backend("counting", "tests.unit.test_batch:CountingBackend", description="test backend")


class TenJoules(EnergyMeter):
    """A meter whose every reading is 10 J, measured (a stand-in for a hardware counter)."""

    name = "ten"

    def __init__(self) -> None:
        self.reads = 0

    def begin(self) -> Any:
        return None

    def end(self, token: Any) -> EnergyReading:
        self.reads += 1
        return EnergyReading(joules=10.0, kind="measured", source="test counter", resolution_j=0.5)


@pytest.fixture(autouse=True)
def _reset():
    CountingBackend.SCRIPT, CountingBackend.CALLS, CountingBackend.FAIL_BATCH = {}, [], False
    ScriptedBackend.SCRIPT, ScriptedBackend.CALLS = {}, []
    yield
    CountingBackend.SCRIPT, ScriptedBackend.SCRIPT = {}, {}


def _key(h: Any) -> tuple:
    return (h.instance_index, h.hop_id, h.topo_index, h.parsed, h.parse_error, h.error_kind, h.correct,
            h.correct_given_inputs, h.parents_ok, tuple(h.root_cause), h.prompt, h.completion)


def _summary(store: Store, run_id: int) -> tuple[list, list]:
    hops = sorted(map(_key, store.hops(run_id)))
    inst = [(i.index, i.success, i.final_correct, i.root_causes) for i in store.instances(run_id)]
    return hops, inst


def _runs(tmp_path, text, backend, batches, *, mode="free", n=7, seed=5, name="s.yaml"):
    store = Store(tmp_path / f"{name}.db")
    sc = load_scenario(write(tmp_path, text, name))
    runs, failures = execute([sc], [backend], store=store, instances=n, seed=seed, modes=(mode,),
                             batch_sizes=batches)
    assert not failures, failures
    return store, runs


# --------------------------------------------------------------------------------------------
# equivalence with batch 1


@pytest.mark.parametrize("mode", ["free", "oracle"])
@pytest.mark.parametrize("backend", ["noisy,p=0.3,parse_p=0.1,seed=2", "counting"])
def test_every_hop_is_judged_as_at_batch_1(tmp_path, mode, backend):
    CountingBackend.SCRIPT = {"a": lambda r: "99" if r.instance_key.endswith(("1", "4")) else r.expected,
                              "b": lambda r: "no idea" if r.instance_key.endswith("2") else r.expected}
    for text, name in ((CHAIN, "chain.yaml"), (FANIN, "fan.yaml")):
        store, runs = _runs(tmp_path, text, backend, (1, 3, 4, 7, 16), mode=mode, name=name)
        assert [r.batch_size for r in runs] == [1, 3, 4, 7, 16]
        ref = _summary(store, runs[0].id)
        assert any(k[5] != "none" for k in ref[0]) or backend == "counting" and text is FANIN
        for run in runs[1:]:
            assert run.status == "complete"
            assert _summary(store, run.id) == ref, f"batch {run.batch_size} differs from batch 1"


def test_error_kinds_and_root_causes_in_a_batch(tmp_path):
    # the chain of test_engine: a wrong on some instances, b crashing on one, parse failures
    def b(r):
        if r.instance_key.endswith(":3"):
            raise RuntimeError("kernel exploded")
        return r.expected

    CountingBackend.SCRIPT = {"a": lambda r: "99" if r.instance_key.endswith(":1") else r.expected, "b": b}
    store, runs = _runs(tmp_path, CHAIN, "counting", (1, 4), n=5)
    assert _summary(store, runs[0].id) == _summary(store, runs[1].id)
    hops = {(h.instance_index, h.hop_id): h for h in store.hops(runs[1].id)}
    assert hops[1, "a"].error_kind == "local" and hops[1, "b"].error_kind == "propagated"
    assert hops[1, "c"].root_cause == ["a"]
    assert hops[3, "b"].error_kind == "backend" and "kernel exploded" in hops[3, "b"].error_detail
    assert hops[3, "c"].error_kind == "propagated" and hops[3, "c"].root_cause == ["b"]
    assert hops[0, "c"].error_kind == "none"
    assert store.get_run(runs[1].id).status == "complete"


# --------------------------------------------------------------------------------------------
# what goes to the backend


def test_ready_hops_of_b_instances_go_as_one_call(tmp_path):
    _runs(tmp_path, CHAIN, "counting", 4, n=10)
    # 10 instances in groups of 4, 4, 2; three steps (a, b, c) each
    assert [(kind, len(ids)) for kind, ids in CountingBackend.CALLS] == [("batch", 4)] * 6 + [("batch", 2)] * 3
    assert [ids[0] for _, ids in CountingBackend.CALLS] == list("abc") * 3


def test_independent_hops_share_a_call_and_tools_run_between(tmp_path):
    store, runs = _runs(tmp_path, FANIN, "counting", 3, n=3)
    # l and r of three instances together, then the tool hop s, then f
    assert CountingBackend.CALLS == [("batch", ["l", "r"] * 3), ("batch", ["f"] * 3)]
    hops = store.hops(runs[0].id)
    assert {h.batch_n for h in hops if h.kind == "llm"} == {6, 3}
    assert all(h.batch_n is None for h in hops if h.kind == "tool")


def test_batch_1_calls_generate_one_hop_at_a_time(tmp_path):
    store, runs = _runs(tmp_path, CHAIN, "counting", 1, n=2)
    assert all(kind == "one" for kind, _ in CountingBackend.CALLS) and len(CountingBackend.CALLS) == 6
    assert all(h.batch_n is None and h.batch_share is None for h in store.hops(runs[0].id))


def test_a_failed_batch_call_fails_each_of_its_hops(tmp_path):
    CountingBackend.FAIL_BATCH = True
    store = Store(tmp_path / "r.db")
    sc = load_scenario(write(tmp_path, CHAIN))
    runs, failures = execute([sc], ["counting"], store=store, instances=6, seed=0, batch_sizes=3)
    assert runs == [] and "in a row" in str(failures[0][1])  # 3 + 3 backend errors: the run stops
    run = store.list_runs()[0]
    hops = store.hops(run.id)
    assert run.status == "failed" and len(hops) == 5  # stopped at the 5th failure in a row
    assert all(h.error_kind == "backend" and "fell over" in h.error_detail for h in hops)


def test_default_generate_batch_loops_over_generate(tmp_path):
    ScriptedBackend.SCRIPT = {"b": lambda r: (_ for _ in ()).throw(RuntimeError("no")) if r.instance_key.endswith(":0") else r.expected}
    store, runs = _runs(tmp_path, CHAIN, "scripted", (1, 2), n=3)
    assert _summary(store, runs[0].id) == _summary(store, runs[1].id)
    hops = store.hops(runs[1].id)
    assert {h.batch_timing for h in hops if h.error_kind != "backend"} == {"own"}
    assert {h.batch_n for h in hops} == {2, 1}  # the third instance runs in a batch of one


# --------------------------------------------------------------------------------------------
# figures: shares by tokens, energy attributed


def test_energy_is_read_once_per_call_and_shared_by_tokens(tmp_path):
    store = Store(tmp_path / "r.db")
    sc = load_scenario(write(tmp_path, CHAIN))
    meter = TenJoules()
    runs, _ = execute([sc], ["counting"], store=store, instances=4, seed=0, batch_sizes=4,
                      control=RunControl(meter=meter))
    hops = store.hops(runs[0].id)
    assert meter.reads == 3 + 1  # three batch calls and the run-level reading
    for hop_id in "abc":
        group = [h for h in hops if h.hop_id == hop_id]
        assert sum(h.energy_j for h in group) == pytest.approx(10.0)
        assert sum(h.batch_share for h in group) == pytest.approx(1.0)
        assert sum(h.wall_s for h in group) == pytest.approx(group[0].batch_wall_s)
        for h in group:
            assert h.energy_kind == "measured" and "attributed" in h.energy_note
            tokens = h.prompt_tokens + h.completion_tokens
            total = sum(g.prompt_tokens + g.completion_tokens for g in group)
            assert h.batch_share == pytest.approx(tokens / total)
            assert h.energy_resolution_j == pytest.approx(0.5 * h.batch_share)
            assert h.batch_prefill_s == pytest.approx(0.004) and h.batch_decode_s == pytest.approx(0.008)
            assert h.prefill_s == 0.001  # "own": the loop's figures are the hop's own


def test_noisy_latency_models_one_batched_call(tmp_path):
    store, runs = _runs(tmp_path, CHAIN, "noisy,p=0,latency_ms=40", 4, n=4)
    hops = store.hops(runs[0].id)
    for hop_id in "abc":
        group = [h for h in hops if h.hop_id == hop_id]
        assert len({h.batch_decode_s for h in group}) == 1  # one call, one figure
        call = group[0].batch_decode_s
        assert 0.04 <= call < 4 * 0.04  # the latency paid once, not four times
        assert all(h.batch_timing == "attributed" and h.decode_s == pytest.approx(call / 4) for h in group)
        assert all(h.wall_s == pytest.approx(h.batch_wall_s / 4) for h in group)


# --------------------------------------------------------------------------------------------
# sweeps, the store, resume


def test_batch_sweep_is_one_run_per_size(tmp_path):
    store = Store(tmp_path / "r.db")
    sc = load_scenario(write(tmp_path, CHAIN))
    launch = Launch(scenarios=[sc], backends=["oracle", "noisy,p=0.2"], modes="both", instances=3,
                    batch_sizes="1,4,16")
    assert [(p.mode, p.batch_size) for p in launch.plans([sc])] == [
        (m, b) for m in ("free", "oracle") for b in (1, 4, 16)]
    result = run_launch(launch, store=store)
    assert not result.failures and len(result.runs) == 12
    assert sorted(r.batch_size for r in store.list_runs()) == sorted([1, 4, 16] * 4)
    assert len({r.launch_id for r in store.list_runs()}) == 1


@pytest.mark.parametrize("bad", ["0", "x", "1.5", "-2", "", [0], 2.0, True])
def test_bad_batch_sizes_are_user_errors(bad):
    with pytest.raises(AgentsimError, match="batch"):
        parse_batch_sizes(bad)


def test_batch_sizes_parse():
    assert parse_batch_sizes("1,4,16") == (1, 4, 16)
    assert parse_batch_sizes(8) == (8,) and parse_batch_sizes(None) == (1,)
    assert parse_batch_sizes([1, "4,8", 4]) == (1, 4, 8)


def test_a_run_without_a_batch_size_runs_at_batch_1(tmp_path):
    """Runs written before batching read batch_size None (the 0002_batching migration adds the
    column as nullable): resuming one runs it one hop at a time."""
    store = Store(tmp_path / "r.db")
    sc = load_scenario(write(tmp_path, CHAIN))
    from agentsim.engine import Cancelled

    with pytest.raises(Cancelled):
        execute([sc], ["counting"], store=store, instances=2, seed=0, batch_sizes=4,
                control=RunControl(cancel=lambda: bool(CountingBackend.CALLS)))
    run = store.update_run(store.list_runs()[0].id, batch_size=None, status="interrupted")
    CountingBackend.CALLS.clear()
    resume_run(store, run.id)
    assert CountingBackend.CALLS and all(kind == "one" for kind, _ in CountingBackend.CALLS)
    assert len(store.hops(run.id)) == 6


def test_cancel_mid_run_then_resume_at_batch_4(tmp_path):
    from agentsim.engine import Cancelled

    text = CHAIN
    store = Store(tmp_path / "r.db")
    sc = load_scenario(write(tmp_path, text))
    checks = {"n": 0}

    def cancel():
        checks["n"] += 1
        return checks["n"] > 5

    spec = "noisy,p=0.3,seed=1"
    with pytest.raises(Cancelled):
        execute([sc], [spec], store=store, instances=10, seed=3, control=RunControl(cancel=cancel), batch_sizes=4)
    run = store.list_runs()[0]
    assert run.batch_size == 4 and 0 < len(store.hops(run.id)) < 30
    resumed = resume_run(store, run.id)
    assert resumed.status == "complete"
    hops = store.hops(run.id)
    assert len(hops) == 30 and len({(h.instance_index, h.hop_id) for h in hops}) == 30
    ref_runs, _ = execute([sc], [spec], store=store, instances=10, seed=3)
    assert _summary(store, run.id) == _summary(store, ref_runs[0].id)
