from __future__ import annotations

import pytest

from agentsim.errors import ScenarioError
from agentsim.scenario import bundled_scenarios, load_scenario, load_scenario_text, resolve_scenario
from tests.helpers import write

GOOD = """
name: demo
description: two hops
world:
  capitals: {France: Paris, Peru: Lima}
vars:
  country: {choice: [France, Peru]}
  n: {randint: [2, 9]}
hops:
  - id: a
    prompt: "Capital of {{ country }}?"
    parse: text
    expect: capitals[country]
  - id: b
    depends_on: [a]
    prompt: "How many letters in {{ a }}? Add {{ n }}."
    parse: integer
    expect: a | length + n
"""


def test_good_file_builds_a_dag(tmp_path):
    sc = load_scenario(write(tmp_path, GOOD))
    assert sc.name == "demo"
    assert sc.order == ["a", "b"]
    assert list(sc.graph.edges) == [("a", "b")]
    assert sc.depth == {"a": 1, "b": 2}
    inst = sc.instance(0, 0)
    assert inst.expected["a"] in ("Paris", "Lima")
    assert inst.expected["b"] == len(inst.expected["a"]) + inst.vars["n"]


def test_same_seed_same_instances_and_independent_of_count(tmp_path):
    sc = load_scenario(write(tmp_path, GOOD))
    a = sc.instances(20, seed=7)
    b = sc.instances(5, seed=7)
    assert [(i.vars, i.expected) for i in a[:5]] == [(i.vars, i.expected) for i in b]
    c = sc.instances(20, seed=8)
    assert [i.vars for i in a] != [i.vars for i in c]


@pytest.mark.parametrize(
    "text, needle, line, hop, field",
    [
        ("name: x\nhops:\n  - id: a\n    depends_on: [b]\n    prompt: hi\n    expect: 1\n  - id: b\n    depends_on: [a]\n    prompt: hi\n    expect: 1\n",
         "dependency cycle", None, None, "depends_on"),
        ("name: x\nhops:\n  - id: a\n    depends_on: [zz]\n    prompt: hi\n    expect: 1\n",
         "unknown hop 'zz'", 4, "a", "depends_on"),
        ("name: x\nhops:\n  - id: a\n    prompt: hi\n    expect: 1\n  - id: a\n    prompt: hi\n    expect: 1\n",
         "duplicate hop id", 6, "a", "id"),
        ("name: x\nhops:\n  - id: a\n    prompt: 'hi {{ nobody }}'\n    expect: 1\n",
         "undeclared variable 'nobody'", 4, "a", "prompt"),
        ("name: x\nhops:\n  - id: a\n    prompt: hi\n    expect: 1\n  - id: b\n    prompt: '{{ a }}'\n    expect: 1\n",
         "not in depends_on", 7, "b", "prompt"),
        ("name: x\nhops:\n  - id: a\n    prompt: hi\n    expect: 1\n    max_tokens: lots\n",
         "valid integer", 6, "a", "max_tokens"),
        ("name: x\nhops:\n  - id: a\n    prompt: hi\n    expect: 1\n    colour: red\n",
         "unknown field", 6, "a", "colour"),
        ("name: x\nhops:\n  - id: a\n    prompt: hi\n", "needs 'expect'", 3, "a", None),
        ("name: x\nhops: [\n", "invalid YAML", None, None, None),
        ("- just\n- a list\n", "top level must be a mapping", 1, None, None),
        ("name: x\nhops: []\n", "at least 1", 2, None, "hops"),
        ("name: x\nhops:\n  - id: a\n    prompt: hi\n    expect: '1 +'\n", "syntax error", 5, "a", "expect"),
        ("name: x\nhops:\n  - id: a\n    kind: tool\n    tool: nope\n", "unknown tool 'nope'", 3, "a", None),
        ("name: x\nvars:\n  k: {randint: [9, 1]}\nhops:\n  - id: a\n    prompt: hi\n    expect: k\n", "low <= high", 3, None, "vars.k"),
        ("name: x\nhops:\n  - id: a\n    prompt: hi\n    expect: 1\n    parse: {type: choice}\n", "needs 'options'", 6, "a", "parse"),
        ("name: x\nhops:\n  - id: a\n    prompt: hi\n    expect: 1\n    grammar: 'nonsense'\n", "neither a preset", 6, "a", "grammar"),
        ("name: x\nworld: {t: {a: 1}}\nhops:\n  - id: a\n    prompt: '{{ t.b }}'\n    expect: 1\n", "fails to render", 5, "a", "prompt"),
        ("name: x\nhops:\n  - id: 9a\n    prompt: hi\n    expect: 1\n", "must start with a letter", 3, "9a", "id"),
    ],
)
def test_rejections_name_file_line_hop_and_field(tmp_path, text, needle, line, hop, field):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as ei:
        load_scenario(path)
    err = ei.value
    assert needle in str(err)
    assert str(path) in str(err)
    if line is not None:
        assert err.line == line, str(err)
    if hop is not None:
        assert err.hop == hop
    if field is not None:
        assert err.field == field


def test_missing_empty_binary_directory(tmp_path):
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("  \n")
    with pytest.raises(ScenarioError, match="empty"):
        load_scenario(tmp_path / "empty.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\x00\x01\x02name: x")
    with pytest.raises(ScenarioError, match="binary"):
        load_scenario(tmp_path / "bin.yaml")
    (tmp_path / "latin.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match="UTF-8"):
        load_scenario(tmp_path / "latin.yaml")
    with pytest.raises(ScenarioError, match="directory"):
        load_scenario(tmp_path)


def test_templates_are_sandboxed(tmp_path):
    text = """
    name: evil
    hops:
      - id: a
        prompt: "{{ ''.__class__.__mro__[1].__subclasses__() }}"
        expect: 1
    """
    with pytest.raises(ScenarioError, match="unsafe|fails to render"):
        load_scenario(write(tmp_path, text))
    text2 = """
    name: evil2
    hops:
      - id: a
        prompt: "{% include '/etc/passwd' %}"
        expect: 1
    """
    with pytest.raises(ScenarioError):
        load_scenario(write(tmp_path, text2, "e2.yaml"))


def test_expected_answer_given_inputs_uses_parent_values(tmp_path):
    from agentsim.scenario import Scenario

    sc = load_scenario(write(tmp_path, GOOD))
    inst = sc.instance(1, 3)
    ctx = inst.context(sc.spec.world)
    ctx["a"] = "Rome"
    assert Scenario.expected_given(sc.hop("b"), ctx) == 4 + inst.vars["n"]


def test_tool_hop_expected_from_tool(tmp_path):
    text = """
    name: tools
    world: {ages: {ana: 31, ben: 45}}
    hops:
      - id: who
        prompt: Who is older?
        parse: {type: choice, options: [ana, ben]}
        expect: "'ben'"
      - id: age
        kind: tool
        tool: lookup
        depends_on: [who]
        args: {table: ages, key: who}
    """
    sc = load_scenario(write(tmp_path, text))
    assert sc.instance(0, 0).expected == {"who": "ben", "age": 45}


def test_bundled_scenarios_validate():
    files = bundled_scenarios()
    assert {"chain-linear", "fanin-dag"} <= set(files)
    for path in files.values():
        sc = load_scenario(path)
        assert sc.instances(3, seed=1)
    fan = load_scenario(files["fanin-dag"])
    assert any(fan.graph.in_degree(n) >= 2 for n in fan.graph.nodes)
    chain = load_scenario(files["chain-linear"])
    assert all(chain.graph.in_degree(n) <= 1 for n in chain.graph.nodes)


def test_resolve_by_name_family_and_unknown():
    assert resolve_scenario("chain-linear").name == "chain-linear"
    sc = resolve_scenario("chain-arith", {"depth": 4})
    assert len(sc.order) == 4 and sc.ref["params"]["depth"] == 4
    with pytest.raises(ScenarioError, match="no scenario file or family"):
        resolve_scenario("no-such-thing")
    with pytest.raises(ScenarioError, match="unknown parameter"):
        resolve_scenario("chain-arith", {"dept": 4})
    with pytest.raises(ScenarioError, match="must be of type int"):
        resolve_scenario("chain-arith", {"depth": "deep"})


def test_generator_reference_file(tmp_path):
    p = write(tmp_path, "generator: chain-arith\nparams: {depth: 2}\nname: my-chain\n")
    sc = load_scenario(p)
    assert sc.name == "my-chain" and len(sc.order) == 2
    bad = write(tmp_path, "generator: chain-arith\nparams: {depth: 0}\n", "bad.yaml")
    with pytest.raises(ScenarioError, match="depth"):
        load_scenario(bad)


def test_text_loader_reports_string_source():
    with pytest.raises(ScenarioError, match="<string>"):
        load_scenario_text("name: x\n")


def test_a_non_finite_expected_answer_is_a_warning_not_a_crash(tmp_path):
    """Found by the fuzzer: ``expect: .nan`` crashed the answer-type check (NaN to integer)."""
    for value in (".nan", ".inf", "-.inf"):
        sc = load_scenario_text(
            f"name: n\nhops:\n  - id: a\n    prompt: hi\n    parse: integer\n    check: numeric\n    expect: {value}\n",
            source="n.yaml")
        assert any("no answer can equal" in str(w) and w.hop == "a" for w in sc.warnings), value


def test_graph_checks_list_every_problem_as_the_schema_checks_do(tmp_path):
    text = """
name: broken
hops:
  - id: a
    prompt: "a"
    expect: "1"
    depends_on: [c]
  - id: b
    prompt: "b"
    expect: "1"
    depends_on: [ghost, a, a]
  - id: c
    prompt: "c"
    expect: "1"
    depends_on: [a]
  - id: d
    prompt: "d"
    expect: "1"
    depends_on: [d, nobody]
"""
    with pytest.raises(ScenarioError) as ei:
        load_scenario(write(tmp_path, text))
    found = [(p.hop, p.detail) for p in ei.value.problems]
    assert ("b", "depends on unknown hop 'ghost' (hops: a, b, c, d)") in found
    assert ("b", "lists 'a' twice") in found
    assert ("d", "a hop cannot depend on itself") in found
    assert ("d", "depends on unknown hop 'nobody' (hops: a, b, c, d)") in found
    assert any(d.startswith("dependency cycle: ") and set(d.split(": ")[1].split(" -> ")) == {"a", "c"}
               for _, d in found)
    assert len(found) == 5 and "(and 4 more problems)" in str(ei.value)
    assert all(p.line for p in ei.value.problems)  # each problem with its line in the file


def test_one_graph_problem_is_said_alone():
    with pytest.raises(ScenarioError) as ei:
        load_scenario_text("name: x\nhops:\n  - {id: a, prompt: a, expect: '1', depends_on: [zz]}\n")
    assert len(ei.value.problems) == 1 and "more problem" not in str(ei.value)
    assert "unknown hop 'zz'" in str(ei.value)
