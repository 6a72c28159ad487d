"""The ``oracle`` backend answers in the form each hop's parse reads, so it scores 100 % on every
valid scenario: every bundled file, every family, and generated scenarios of every parse type."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentsim.answers import check_answer, parse_answer
from agentsim.backends.base import GenerationRequest, create_backend
from agentsim.errors import BackendError
from agentsim.scenario import (
    Scenario,
    available_generators,
    build_generator,
    bundled_scenarios,
    load_scenario,
    scenario_from_dict,
)

ORACLE = create_backend("oracle")


def oracle_score(sc: Scenario, n: int = 3) -> float:
    """What an oracle-mode run judges: each model hop answered by the oracle, parsed and checked."""
    right = total = 0
    for inst in sc.instances(n):
        for hop_id in sc.order:
            spec = sc.hop(hop_id)
            if spec.kind != "llm":
                continue
            request = GenerationRequest(prompt="", expected=inst.expected[hop_id], parse=spec.parse, hop_id=hop_id,
                                        grammar=spec.grammar)
            value = parse_answer(ORACLE.generate(request).text, spec.parse)
            assert spec.check is not None
            total += 1
            right += check_answer(value, inst.expected[hop_id], spec.check)
    return right / total


def _every_scenario() -> list[tuple[str, Scenario]]:
    out = [(f"file {name}", load_scenario(path)) for name, path in bundled_scenarios().items()]
    for name, info in available_generators().items():
        for answer in ("plain", "json") if "answer" in info.params else ("default",):
            params = {"answer": answer} if answer != "default" else {}
            out.append((f"family {name} {answer}", build_generator(name, params)))
    return out


def test_oracle_scores_one_on_every_bundled_file_and_family():
    scores = {label: oracle_score(sc) for label, sc in _every_scenario()}
    assert len(scores) >= len(bundled_scenarios()) + len(available_generators())
    assert {k: v for k, v in scores.items() if v != 1.0} == {}


def test_oracle_runs_through_the_engine_score_one(tmp_path):
    from agentsim.launch import execute
    from agentsim.store import Store

    store = Store(tmp_path / "r.db")
    scenarios = [load_scenario(p) for p in bundled_scenarios().values()]
    runs, failures = execute(scenarios, ["oracle"], store=store, instances=2, modes=("free",))
    assert failures == [] and len(runs) == len(scenarios)
    for run in runs:
        hops = store.hops(run.id)
        assert hops and all(h.correct for h in hops), run.scenario


# --- generated scenarios of every parse type -----------------------------------------------

WORDS = ["Paris", "lima", "Oslo", "rome", "Cairo", "bern"]
REGEX_NUMBER = [r"(-?\d+)", r"Answer:\s*(-?\d+)", r"(?:value|val) is (-?\d+(?:\.\d+)?)", r"^\s*(-?\d+)\s*$",
                r"result=([-+]?\d+)"]
REGEX_WORD = [r"\[(\w+)\]", r"answer: ([A-Za-z]+)", r"(?i)city\s*[:=]\s*(\w+)", r"([A-Z]?[a-z]+)"]


@st.composite
def hop_specs(draw, index: int):
    kind = draw(st.sampled_from(["number", "integer", "choice", "regex-number", "regex-word", "json", "text"]))
    hop: dict = {"id": f"h{index}", "prompt": f"Question {index} about {{{{ x }}}} and {{{{ w }}}}."}
    if kind == "number":
        hop.update(parse="number", expect=draw(st.sampled_from(["x * 3", "f * 2", "x / 4", "f - x"])))
    elif kind == "integer":
        hop.update(parse="integer", expect=draw(st.sampled_from(["x - 7", "x * x", "-x"])))
    elif kind == "choice":
        hop.update(parse={"type": "choice", "options": WORDS}, expect="w")
    elif kind == "regex-number":
        hop.update(parse={"type": "regex", "pattern": draw(st.sampled_from(REGEX_NUMBER))},
                   expect=draw(st.sampled_from(["x", "x - 1000"])), check="numeric")
    elif kind == "regex-word":
        hop.update(parse={"type": "regex", "pattern": draw(st.sampled_from(REGEX_WORD))}, expect="w",
                   check=draw(st.sampled_from(["exact", "normalized"])))
    elif kind == "json":
        hop.update(parse={"type": "json", "field": draw(st.sampled_from(["answer", "a.b", "result.0.v"]))},
                   expect=draw(st.sampled_from(["x", "w", "[x, w]", "{'k': x}", "f"])), check="exact")
    else:
        hop.update(parse="text", expect="w")
    return hop


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 4))
    return {
        "name": "gen",
        "vars": {"x": {"randint": [-1000, 1000]}, "f": {"uniform": [-50, 50, draw(st.integers(0, 4))]},
                 "w": {"choice": WORDS}},
        "hops": [draw(hop_specs(i)) for i in range(n)],
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_oracle_scores_one_on_generated_scenarios_of_every_parse_type(data):
    sc = scenario_from_dict(data, source="gen.yaml")
    assert sc.warnings == []
    assert oracle_score(sc, n=4) == 1.0


# --- what the oracle cannot answer is said, at validation and at run time -----------------


def test_a_hop_no_completion_can_satisfy_is_warned_and_the_oracle_says_why():
    data = {"name": "s", "vars": {"t": {"randint": [-9, -1]}},
            "hops": [{"id": "h", "prompt": "t?", "expect": "t", "check": "numeric",
                      "parse": {"type": "regex", "pattern": r"(\d+)"}}]}
    sc = scenario_from_dict(data, source="s.yaml")
    [w] = sc.warnings
    assert w.field == "parse" and "cannot answer" in w.message and "(\\\\d+)" in w.message
    inst = sc.instance(0, 0)
    with pytest.raises(BackendError, match="oracle: hop 'h'.*reads as"):
        ORACLE.generate(GenerationRequest(prompt="", expected=inst.expected["h"], parse=sc.hop("h").parse,
                                          hop_id="h"))


@pytest.mark.parametrize("hop, fld", [
    ({"parse": "text", "expect": "'Paris'", "check": "exact"}, "check"),
    ({"parse": "number", "expect": "'four'"}, "check"),
    ({"parse": "integer", "expect": "2.5"}, "parse"),
    ({"parse": {"type": "choice", "options": ["yes", "no"]}, "expect": "'Yes'", "check": "exact"}, "expect"),
    ({"parse": "number", "expect": "'4'", "check": "exact"}, "expect"),
])
def test_type_mismatches_warn_with_their_fix(hop, fld):
    sc = scenario_from_dict({"name": "s", "hops": [{"id": "h", "prompt": "q", **hop}]}, source="s.yaml")
    assert sc.warnings and sc.warnings[0].field == fld and sc.warnings[0].hint


# --------------------------------------------------------------------------------------------
# the oracle answers through the grammar, and validate holds expected answers against it

CHOICE = """\
name: complaint
vars: {k: {choice: [late, late, late, wrong_item]}}
hops:
  - id: kind
    prompt: "What went wrong with the order?"
    expect: k
    parse: text
    grammar: "choice:damaged|late|wrong|billing"
"""


def test_a_grammar_that_cannot_produce_the_answer_warns_and_the_oracle_fails_it(tmp_path):
    (tmp_path / "c.yaml").write_text(CHOICE.replace("[late, late, late, wrong_item]", "[wrong_item]"), encoding="utf-8")
    sc = load_scenario(tmp_path / "c.yaml")
    [w] = [w for w in sc.warnings if w.field == "grammar"]
    assert "admits no completion that reads as 'wrong_item'" in str(w) and w.hop == "kind" and w.line == 8
    assert oracle_score(sc) == 0.0  # it scored 100 % while the oracle ignored grammars
    ok = scenario_from_dict({"name": "s", "hops": [{"id": "h", "prompt": "p", "expect": "'wrong'", "parse": "text",
                                                    "grammar": "choice:damaged|late|wrong|billing"}]})
    assert ok.warnings == [] and oracle_score(ok) == 1.0


def test_validate_samples_instances_for_the_grammar_check(tmp_path):
    """Instance 0 draws 'late' (fine); a later sampled instance draws 'wrong_item'."""
    (tmp_path / "c.yaml").write_text(CHOICE, encoding="utf-8")
    sc = load_scenario(tmp_path / "c.yaml")
    draws = [sc.instance(0, k).expected["kind"] for k in range(8)]
    assert "wrong_item" in draws
    [w] = [w for w in sc.warnings if w.field == "grammar"]
    k = draws.index("wrong_item")
    assert k > 0 and f"instance {k}: " in str(w), (draws, str(w))


def test_a_json_text_field_with_the_default_check_warns_with_the_fix():
    hop = {"id": "item", "prompt": "p", "expect": "'gadget'", "parse": {"type": "json", "field": "item"}}
    sc = scenario_from_dict({"name": "s", "hops": [hop]})
    [w] = sc.warnings
    assert w.field == "check" and "check: normalized" in w.hint
    quiet = scenario_from_dict({"name": "s", "hops": [{**hop, "check": "exact"}]})
    assert quiet.warnings == []
    number = scenario_from_dict({"name": "s", "hops": [{**hop, "expect": "3"}]})
    assert number.warnings == []
