from __future__ import annotations

import pytest

from agentsim.errors import AgentsimError
from agentsim.launch import RunControl, execute, resume_run
from agentsim.scenario import load_scenario
from agentsim.store import Store
from tests.helpers import ScriptedBackend, write

CHAIN = """
name: chain
vars:
  x: {randint: [10, 20]}
hops:
  - id: a
    prompt: "x is {{ x }}. Say x."
    parse: integer
    expect: x
  - id: b
    depends_on: [a]
    prompt: "Add one to {{ a }}."
    parse: integer
    expect: a + 1
  - id: c
    depends_on: [b]
    prompt: "Double {{ b }}."
    parse: integer
    expect: b * 2
"""


@pytest.fixture(autouse=True)
def _reset_script():
    ScriptedBackend.SCRIPT = {}
    ScriptedBackend.CALLS = []
    yield
    ScriptedBackend.SCRIPT = {}


def _run(tmp_path, script, mode="free", text=CHAIN, n=1):
    ScriptedBackend.SCRIPT = script
    store = Store(tmp_path / "r.db")
    sc = load_scenario(write(tmp_path, text))
    runs, failures = execute([sc], ["scripted"], store=store, instances=n, seed=0, modes=(mode,))
    assert not failures
    return store, runs[0], {h.hop_id: h for h in store.hops(runs[0].id, 0)}


def test_all_right(tmp_path):
    store, run, hops = _run(tmp_path, {})
    assert run.status == "complete"
    assert [hops[h].error_kind for h in "abc"] == ["none", "none", "none"]
    inst = store.instances(run.id)[0]
    assert inst.success and inst.root_causes == []


def test_local_then_propagated(tmp_path):
    # a is wrong; b and c compute correctly from what they received -> propagated
    store, run, hops = _run(tmp_path, {"a": "99", "b": lambda r: r.expected, "c": lambda r: r.expected})
    assert hops["a"].error_kind == "local"
    assert hops["b"].error_kind == "propagated" and hops["b"].correct_given_inputs is True
    assert hops["c"].error_kind == "propagated"
    assert hops["b"].parsed == 100 and hops["b"].expected != 100
    assert hops["b"].root_cause == ["a"] and hops["c"].root_cause == ["a"]
    inst = store.instances(run.id)[0]
    assert not inst.success and inst.root_causes == ["a"]


def test_wrong_given_wrong_inputs_is_local(tmp_path):
    _, _, hops = _run(tmp_path, {"a": "99", "b": "5"})
    assert hops["b"].error_kind == "local" and hops["b"].correct_given_inputs is False
    assert hops["b"].root_cause == ["b"]
    assert hops["c"].error_kind == "propagated" and hops["c"].root_cause == ["b"]


def test_recovered(tmp_path):
    # b ignores its wrong input and gives the true answer
    sc = load_scenario(write(tmp_path, CHAIN, "probe.yaml"))
    truth = sc.instance(0, 0).expected
    _, _, hops = _run(tmp_path, {"a": "99", "b": str(truth["b"])})
    assert hops["b"].error_kind == "recovered" and hops["b"].correct
    assert hops["c"].error_kind == "none"


def test_parse_error_propagates_as_unusable_input(tmp_path):
    _, _, hops = _run(tmp_path, {"a": "no idea"})
    assert hops["a"].error_kind == "parse" and hops["a"].parse_error
    assert hops["b"].error_kind == "propagated"
    assert hops["b"].expected_given_inputs is None
    assert hops["b"].root_cause == ["a"]


def test_backend_crash_is_recorded_and_run_goes_on(tmp_path):
    def boom(_r):
        raise RuntimeError("kernel exploded")

    store, run, hops = _run(tmp_path, {"b": boom})
    assert hops["b"].error_kind == "backend" and "kernel exploded" in hops["b"].error_detail
    assert hops["c"].error_kind == "propagated"
    assert run.status == "complete"


def test_repeated_backend_crashes_stop_the_run_cleanly(tmp_path):
    def boom(_r):
        raise RuntimeError("dead")

    ScriptedBackend.SCRIPT = {"a": boom, "b": boom, "c": boom}
    store = Store(tmp_path / "r.db")
    sc = load_scenario(write(tmp_path, CHAIN))
    runs, failures = execute([sc], ["scripted"], store=store, instances=5, seed=0)
    assert runs == [] and len(failures) == 1
    assert "in a row" in str(failures[0][1])
    run = store.list_runs()[0]
    assert run.status == "failed" and "in a row" in run.error
    assert len(store.hops(run.id)) == 5  # nothing recorded is lost


def test_oracle_mode_feeds_expected_inputs(tmp_path):
    _, _, hops = _run(tmp_path, {"a": "99", "b": lambda r: r.expected, "c": lambda r: r.expected}, mode="oracle")
    assert hops["a"].error_kind == "local"
    assert hops["b"].error_kind == "none" and hops["b"].correct
    assert "99" not in hops["b"].prompt


FANIN = """
name: fan
hops:
  - id: l
    prompt: left
    parse: integer
    expect: 2
  - id: r
    prompt: right
    parse: integer
    expect: 3
  - id: s
    kind: tool
    tool: add
    depends_on: [l, r]
    args: {a: l, b: r}
  - id: f
    depends_on: [s]
    prompt: "{{ s }} times ten"
    parse: integer
    expect: s * 10
"""


def test_fanin_root_causes_from_both_branches(tmp_path):
    store, run, hops = _run(tmp_path, {"l": "7", "r": "8", "f": lambda r: r.expected}, text=FANIN)
    assert hops["s"].kind == "tool" and hops["s"].error_kind == "propagated"
    assert hops["s"].parsed == 15
    assert hops["s"].root_cause == ["l", "r"]
    assert hops["f"].error_kind == "propagated" and hops["f"].root_cause == ["l", "r"]
    assert store.instances(run.id)[0].root_causes == ["l", "r"]


def test_tool_bad_argument_is_an_error_kind_not_an_exception(tmp_path):
    text = """
    name: t
    world: {ages: {ana: 31}}
    hops:
      - id: who
        prompt: who
        parse: text
        expect: "'ana'"
      - id: age
        kind: tool
        tool: lookup
        depends_on: [who]
        args: {table: ages, key: who}
    """
    _, _, hops = _run(tmp_path, {"who": "zed"}, text=text)
    assert hops["age"].error_kind == "propagated"
    assert "no entry" in hops["age"].error_detail


def test_unknown_mode_and_bad_instances(tmp_path):
    store = Store(tmp_path / "r.db")
    sc = load_scenario(write(tmp_path, CHAIN))
    with pytest.raises(AgentsimError, match="unknown mode"):
        execute([sc], ["oracle"], store=store, modes=("weird",))
    with pytest.raises(AgentsimError, match="at least 1"):
        execute([sc], ["oracle"], store=store, instances=0)


def test_cancel_then_resume_records_each_hop_once(tmp_path):
    from agentsim.engine import Cancelled

    store = Store(tmp_path / "r.db")
    sc = load_scenario(write(tmp_path, CHAIN))
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return calls["n"] > 7

    with pytest.raises(Cancelled):
        execute([sc], ["scripted"], store=store, instances=4, seed=3, control=RunControl(cancel=cancel))
    run = store.list_runs()[0]
    assert run.status == "interrupted"
    assert len(store.hops(run.id)) == 7
    ScriptedBackend.CALLS = []
    done = resume_run(store, run.id)
    assert done.status == "complete"
    assert len(ScriptedBackend.CALLS) == 12 - 7  # only the missing hops ran
    rows = store.hops(run.id)
    assert len(rows) == 12 and len({(h.instance_index, h.hop_id) for h in rows}) == 12
    assert all(i.finished for i in store.instances(run.id))


def test_resume_of_a_renamed_generator_file_draws_the_same_instances(tmp_path):
    from agentsim.engine import Cancelled

    path = write(tmp_path, "generator: chain-arith\nparams: {depth: 3}\nname: renamed\n", "g.yaml")
    sc = load_scenario(path)
    store = Store(tmp_path / "g.db")
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return calls["n"] > 4

    with pytest.raises(Cancelled):
        execute([sc], ["scripted"], store=store, instances=3, seed=2, control=RunControl(cancel=cancel))
    run = store.list_runs()[0]
    done = resume_run(store, run.id)
    assert done.status == "complete"
    expected = {i.index: i.expected for i in sc.instances(3, seed=2)}
    assert {i.index: i.expected for i in store.instances(run.id)} == expected


class _ModelLikeBackend(ScriptedBackend):
    """Declares itself a model (not a simulation): it must never see the expected answer."""

    SIMULATED = False
    SEEN: list = []

    def generate(self, request):
        _ModelLikeBackend.SEEN.append(request.expected)
        return super().generate(request)


@pytest.fixture
def modellike():
    from agentsim.backends.base import BACKENDS, register_backend

    with BACKENDS.scoped():
        register_backend("modellike", _ModelLikeBackend)
        yield


def test_the_expected_answer_goes_to_simulations_only(tmp_path, modellike):
    store = Store(tmp_path / "r.db")
    sc = load_scenario(write(tmp_path, CHAIN))
    ScriptedBackend.SCRIPT = {"a": "15", "b": "16", "c": "32"}
    runs, failures = execute([sc], ["modellike", "scripted"], store=store, instances=1, seed=0)
    assert not failures and len(_ModelLikeBackend.SEEN) == 3
    assert _ModelLikeBackend.SEEN == [None, None, None]
    seen = []
    ScriptedBackend.SCRIPT = {h: (lambda r: seen.append(r.expected) or r.expected) for h in "abc"}
    execute([sc], ["scripted"], store=store, instances=1, seed=0)
    assert len(seen) == 3 and all(v is not None for v in seen)


def test_a_run_row_is_made_in_one_place_for_both_executors(tmp_path):
    from agentsim.distributed.ray_executor import _placeholder_run
    from agentsim.engine import RunPlan

    sc = load_scenario(write(tmp_path, CHAIN))
    plan = RunPlan(scenario=sc, mode="oracle", instances=4, seed=7, params={"k": 1}, launch_id="L", batch_size=2)
    row = _placeholder_run(plan, "llama:tiny@q4_0,n_ctx=64")
    assert row.backend_name == "llama" and row.backend == "llama:tiny@q4_0,n_ctx=64"
    assert (row.mode, row.seed, row.n_instances, row.hops_per_instance, row.batch_size) == ("oracle", 7, 4, 3, 2)
    assert row.scenario_fingerprint == sc.fingerprint and row.launch_id == "L" and row.status == "running"
    store = Store(tmp_path / "r.db")
    runs, _ = execute([sc], ["scripted"], store=store, instances=4, seed=7, modes=("oracle",), batch_sizes=2)
    stored = runs[0]
    for name in ("scenario", "scenario_fingerprint", "mode", "seed", "n_instances", "hops_per_instance",
                 "batch_size"):
        assert getattr(stored, name) == getattr(row, name), name
    assert stored.backend_name == "scripted" and stored.kernel == "test" and stored.machine


def test_a_backend_that_crashes_while_loading_is_one_backend_error():
    from agentsim.backends.base import load_backend
    from agentsim.errors import BackendError

    class Crashes(ScriptedBackend):
        def load(self):
            raise OSError("no such device")

    from agentsim.backends.base import parse_spec

    with pytest.raises(BackendError, match=r"backend scripted failed to load on node7: OSError: no such device"):
        load_backend(Crashes(parse_spec("scripted")), where="node7")

# --- issue 27: why generation stopped, and a cut-off answer as its own outcome


def test_a_wrong_answer_cut_by_the_token_budget_is_truncated_not_local(tmp_path):
    from agentsim.backends.base import Completion

    store, run, hops = _run(tmp_path, {"b": Completion(text="Adding one to it gives 1", finish_reason="length"),
                                       "c": lambda r: r.expected})
    b, c = hops["b"], hops["c"]
    assert b.error_kind == "truncated" and b.stop_reason == "length" and b.root_cause == ["b"]
    assert "token budget" in b.error_detail and b.parsed == 1
    assert c.error_kind == "propagated" and c.root_cause == ["b"]
    assert hops["a"].stop_reason is None  # the scripted backend does not say


def test_an_unparsable_cut_answer_is_truncated_and_a_right_one_is_right(tmp_path):
    from agentsim.backends.base import Completion

    store, run, hops = _run(tmp_path, {"a": lambda r: Completion(text=str(r.expected), finish_reason="length"),
                                       "b": Completion(text="Let me think about", finish_reason="length")})
    assert hops["a"].error_kind == "none" and hops["a"].stop_reason == "length"
    assert hops["b"].error_kind == "truncated" and hops["b"].parse_error
    assert hops["c"].error_kind == "propagated"


def test_stop_reasons_are_counted_in_the_summary(tmp_path):
    from agentsim.analysis import summarize_run
    from agentsim.backends.base import Completion

    store, run, hops = _run(tmp_path, {"a": lambda r: Completion(text=str(r.expected), finish_reason="eos"),
                                       "b": Completion(text="1", finish_reason="length")})
    s = summarize_run(store, run)
    assert s.error_kinds["truncated"] == 1
    assert s.stop_reasons == {"None": 1, "eos": 1, "length": 1}
    assert s.truncation_rate == pytest.approx(1 / 3)


# --- inputs: the parents attribution uses, per instance, beside depends_on (context)

INPUTS = """
name: inputs
vars:
  x: {randint: [10, 20]}
  uses: {expr: "['b']"}
hops:
  - id: a
    prompt: "x is {{ x }}. Say x."
    parse: integer
    expect: x
  - id: b
    prompt: "Say {{ x }} plus one."
    parse: integer
    expect: x + 1
  - id: c
    depends_on: [a, b]
    prompt: "Double {{ b }} (a said {{ a }})."
    parse: integer
    expect: b * 2 + a * 0
    inputs: INPUTS_HERE
"""


@pytest.mark.parametrize("inputs", ["[b]", "uses"])
def test_a_hop_is_judged_by_its_declared_inputs_only(tmp_path, inputs):
    text = INPUTS.replace("INPUTS_HERE", inputs)
    store, run, hops = _run(tmp_path, {"a": "99"}, text=text)
    c = hops["c"]
    # a is wrong but not an input of c: c is right with right inputs, not "recovered"
    assert c.error_kind == "none" and c.parents_ok and c.inputs == ["b"] and c.parents == ["a", "b"]
    store, run, hops = _run(tmp_path, {"a": "99", "c": "5"}, text=text)
    assert hops["c"].error_kind == "local" and hops["c"].root_cause == ["c"]


def test_inputs_outside_depends_on_are_refused(tmp_path):
    from agentsim.errors import ScenarioError

    with pytest.raises(ScenarioError, match="inputs 'x1' not in depends_on"):
        load_scenario(write(tmp_path, INPUTS.replace("INPUTS_HERE", "[b, x1]")))
