"""Random malformed scenario files always give a ScenarioError, never another exception."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentsim.errors import ScenarioError
from agentsim.scenario import Scenario, load_scenario_bytes, load_scenario_text

KEYS = ["name", "description", "hops", "world", "vars", "system", "id", "depends_on", "kind", "prompt",
        "expect", "parse", "check", "tool", "args", "max_tokens", "stop", "grammar", "type", "options",
        "generator", "params", "randint", "choice", "expr", "field", "pattern", "tol"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["a", "b", "h1", "{{ a }}", "{{", "x +", "1 + 1", "number", "llm", "tool", "add",
                     "lookup", "chain-arith", "[a]", "{% for %}", "{{ a.b.c }}", "'s'"]),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), children, max_size=5),
    ),
    max_leaves=25,
)


def _hop():
    return st.fixed_dictionaries(
        {"id": st.sampled_from(["a", "b", "c", "a b", ""])},
        optional={
            "depends_on": st.one_of(st.lists(st.sampled_from(["a", "b", "c", "z"]), max_size=3), scalars),
            "prompt": st.one_of(st.sampled_from(["hi", "{{ a }}", "{{ b }}", "{{ x }}", "{{", "{{ a + }}"]), values),
            "expect": st.one_of(st.sampled_from(["1", "a + 1", "x", "b", "1 +", "'q'"]), values),
            "kind": st.one_of(st.sampled_from(["llm", "tool", "other"]), values),
            "tool": st.sampled_from(["add", "lookup", "nope"]),
            "args": values,
            "parse": st.one_of(st.sampled_from(["number", "choice", "json", "regex", "weird"]), values),
            "check": st.one_of(st.sampled_from(["exact", "numeric", "bad"]), values),
            "max_tokens": values,
            "stop": values,
            "grammar": st.one_of(st.sampled_from(["integer", "root ::= x", "junk", "choice:"]), values),
        },
    )


documents = st.one_of(
    values,
    st.fixed_dictionaries(
        {"name": st.one_of(st.just("s"), values), "hops": st.one_of(st.lists(_hop(), max_size=4), values)},
        optional={"world": values, "vars": st.one_of(values, st.dictionaries(st.sampled_from(["x", "y"]), values)),
                  "system": values, "generator": values, "params": values},
    ),
)


def _check(call):
    try:
        result = call()
    except ScenarioError as exc:
        assert str(exc)
    else:
        assert isinstance(result, Scenario)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents(doc):
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return
    _check(lambda: load_scenario_text(text, source="fuzz.yaml"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(raw):
    _check(lambda: load_scenario_bytes(raw, source="fuzz.yaml"))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("name:hops- id{}[]'\"\n\t #&*!|>%@`a1")), max_size=120))
def test_random_yaml_ish_text(text):
    _check(lambda: load_scenario_text(text, source="fuzz.yaml"))
