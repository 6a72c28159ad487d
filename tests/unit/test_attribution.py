"""Which parents are inputs of a hop's answer (scenario.attribution), and what the engine makes
of a wrong parent that is only context."""

from __future__ import annotations

import pytest

from agentsim.launch import execute
from agentsim.scenario import load_scenario
from agentsim.scenario.attribution import context_parents, input_parents, names_used
from agentsim.scenario.spec import HopSpec
from agentsim.store import Store
from tests.helpers import ScriptedBackend, write


def hop(**kw):
    kw.setdefault("id", "h")
    if kw.get("kind", "llm") == "llm":
        kw.setdefault("prompt", "p")
    return HopSpec(**kw)


@pytest.mark.parametrize(
    "spec, inputs",
    [
        (dict(depends_on=["quote", "size"], expect="quote"), ["quote"]),
        (dict(depends_on=["a", "b"], expect="a + b"), ["a", "b"]),
        (dict(depends_on=["a", "b"], expect="table[a] ~ b.name"), ["a", "b"]),
        (dict(depends_on=["a", "b"], expect="b | upper"), ["b"]),
        (dict(depends_on=["a", "b"], expect=42), []),
        (dict(depends_on=["a", "b"], expect="'a'"), []),  # a string literal, not the parent
        (dict(depends_on=["a"], expect="x"), []),  # a variable of the instance, not a parent
        (dict(depends_on=[], expect="x"), []),
        (dict(kind="tool", tool="lookup", depends_on=["who", "noise"], args={"table": "records", "key": "who"}),
         ["who"]),
        (dict(kind="tool", tool="add", depends_on=["a", "b", "c"], args={"a": "a", "b": 1}, expect="a + 1 + c"),
         ["a", "c"]),
    ],
)
def test_input_parents(spec, inputs):
    h = hop(**spec)
    assert input_parents(h) == inputs
    assert context_parents(h) == [p for p in h.depends_on if p not in inputs]


def test_unreadable_expression_counts_every_parent():
    assert names_used("a +") is None
    h = hop(depends_on=["a", "b"], expect="a + ")
    assert input_parents(h) == ["a", "b"]
    assert names_used(3) == set()


QUOTE = """
name: quote-size
vars:
  q: {randint: [10, 20]}
  s: {randint: [1, 5]}
hops:
  - id: quote
    prompt: "Say {{ q }}."
    parse: integer
    expect: q
  - id: size
    prompt: "Say {{ s }}."
    parse: integer
    expect: s
  - id: answer
    depends_on: [quote, size]
    prompt: "The quote is {{ quote }} for size {{ size }}. Repeat the quote."
    parse: integer
    expect: quote
  - id: after
    depends_on: [answer]
    prompt: "Add one to {{ answer }}."
    parse: integer
    expect: answer + 1
"""


@pytest.fixture(autouse=True)
def _reset_script():
    ScriptedBackend.SCRIPT = {}
    yield
    ScriptedBackend.SCRIPT = {}


def _run(tmp_path, script):
    ScriptedBackend.SCRIPT = script
    store = Store(tmp_path / "r.db")
    sc = load_scenario(write(tmp_path, QUOTE))
    runs, failures = execute([sc], ["scripted"], store=store, instances=1, seed=0, modes=("free",))
    assert not failures
    return store, runs[0], {h.hop_id: h for h in store.hops(runs[0].id, 0)}


def test_a_wrong_context_parent_does_not_make_a_right_hop_recovered(tmp_path):
    store, run, hops = _run(tmp_path, {"size": "999"})
    assert hops["size"].error_kind == "local"
    assert hops["answer"].correct and hops["answer"].error_kind == "none"
    assert hops["answer"].parents_ok is True
    assert hops["answer"].root_cause == []
    assert hops["after"].error_kind == "none"
    assert store.instances(run.id)[0].root_causes == ["size"]


def test_a_wrong_context_parent_is_not_a_root_cause_of_a_wrong_hop(tmp_path):
    _, _, hops = _run(tmp_path, {"size": "999", "answer": "7", "after": lambda r: r.expected})
    assert hops["answer"].error_kind == "local" and hops["answer"].root_cause == ["answer"]
    assert hops["after"].error_kind == "propagated" and hops["after"].root_cause == ["answer"]


def test_a_wrong_input_parent_still_propagates(tmp_path):
    _, _, hops = _run(tmp_path, {"quote": "999", "answer": lambda r: r.expected, "after": lambda r: r.expected})
    assert hops["answer"].error_kind == "propagated" and hops["answer"].root_cause == ["quote"]
    assert hops["after"].root_cause == ["quote"]


def test_an_unparsed_context_parent_leaves_the_hop_judged_on_its_inputs(tmp_path):
    _, _, hops = _run(tmp_path, {"size": "no number here"})
    assert hops["size"].error_kind == "parse"
    assert hops["answer"].error_kind == "none" and hops["answer"].correct_given_inputs is True
