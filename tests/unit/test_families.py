"""The bundled scenario families: validity, determinism, knobs, and ground truth checked
independently against what the model is actually shown (the rendered prompts and facts)."""

from __future__ import annotations

import random
import re

import pytest

from agentsim.answers import ParseSpec, check_answer, format_answer, parse_answer
from agentsim.backends.simulated import wrong_value
from agentsim.errors import ScenarioError
from agentsim.grammar import check_grammar
from agentsim.scenario import bundled_scenarios, load_scenario
from agentsim.scenario.listing import describe_instance, list_scenarios, scenario_shape
from agentsim.scenario.registry import available_generators, build_generator

FAMILIES = [
    "chain-arith", "var-track", "pointer-chase", "relation-compose", "fan-in", "agent-workflow",
    "weekday-arith",
]
DEPTHS = [1, 2, 5]


def build(name: str, **params):
    return build_generator(name, params)


def shown(sc, seed: int = 0, index: int = 0) -> dict:
    return describe_instance(sc, seed=seed, index=index)


def test_all_families_registered():
    assert set(FAMILIES) <= set(available_generators())


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("depth", DEPTHS)
def test_family_validates_at_depth(name, depth):
    sc = build(name, depth=depth)
    assert sc.ref["params"]["depth"] == depth
    for inst in sc.instances(5, seed=3):
        assert set(inst.expected) == set(sc.order)
        assert all(v is not None for v in inst.expected.values())
    for hop_id in sc.order:
        hop = sc.hop(hop_id)
        if hop.kind == "llm":
            assert hop.grammar and check_grammar(hop.grammar) is None
            assert hop.max_tokens <= 24


@pytest.mark.parametrize(
    ("name", "depth", "llm", "tool", "critical"),
    [
        ("chain-arith", 4, 4, 0, 4),
        ("var-track", 4, 4, 0, 4),
        ("pointer-chase", 4, 4, 0, 4),
        ("weekday-arith", 4, 4, 0, 4),
        ("relation-compose", 3, 3, 3, 6),  # lookup, extract, lookup, extract, ...
        ("fan-in", 3, 2 * 2 + 1, 0, 3),  # two chains of two hops, then the combining hop
        ("agent-workflow", 2, 3 * 2 + 1, 2, 2 + 3),  # plan+cost per item, a bill, verify, answer
    ],
)
def test_shape_follows_depth(name, depth, llm, tool, critical):
    shape = scenario_shape(build(name, depth=depth))
    assert (shape["llm_hops"], shape["tool_hops"], shape["depth"]) == (llm, tool, critical)


@pytest.mark.parametrize("name", FAMILIES)
def test_same_seed_same_instance_and_seeds_differ(name):
    a = shown(build(name, depth=3), seed=7, index=2)
    b = shown(build(name, depth=3), seed=7, index=2)
    assert a == b
    others = [shown(build(name, depth=3), seed=s, index=0) for s in range(8)]
    assert len({repr(o["vars"]) for o in others}) > 1


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("answer", ["plain", "json"])
def test_oracle_answers_parse_and_check_and_noisy_answers_do_not(name, answer):
    """What the oracle backend writes reads back as right; the noisy backend's wrong value as wrong."""
    sc = build(name, depth=3, answer=answer)
    rng = random.Random(0)
    for inst in sc.instances(15, seed=1):
        for hop_id in sc.order:
            hop = sc.hop(hop_id)
            if hop.kind != "llm":
                continue
            expected = inst.expected[hop_id]
            value = parse_answer(format_answer(expected, hop.parse), hop.parse)
            assert check_answer(value, expected, hop.check), (hop_id, expected, value)
            wrong = parse_answer(format_answer(wrong_value(expected, hop.parse, rng), hop.parse), hop.parse)
            assert not check_answer(wrong, expected, hop.check), (hop_id, expected, wrong)


@pytest.mark.parametrize("name", FAMILIES)
def test_json_answer_format(name):
    sc = build(name, depth=2, answer="json")
    llm = [sc.hop(h) for h in sc.order if sc.hop(h).kind == "llm"]
    assert all(h.parse.type == "json" and h.parse.field == "answer" for h in llm)
    assert all("JSON" in h.prompt and h.grammar.startswith("root ::=") for h in llm)


# ------------------------------------------------------------------------------------------
# ground truth, recomputed from the text the model sees


def test_chain_arith_prompts_match_expected():
    sc = build("chain-arith", depth=6)
    for index in range(20):
        info = shown(sc, seed=2, index=index)
        for h in info["hops"]:
            m = re.fullmatch(r"Compute (-?\d+) ([+*-]) (\d+)\. Reply with the number only\.", h["prompt"])
            assert m, h["prompt"]
            a, op, b = int(m[1]), m[2], int(m[3])
            assert h["expected"] == {"+": a + b, "-": a - b, "*": a * b}[op]


def test_chain_arith_keeps_its_original_instances():
    """Runs recorded before the family grew knobs keep their instances."""
    sc = build("chain-arith", depth=3)
    info = shown(sc, seed=0, index=0)
    assert [h["prompt"] for h in info["hops"]][0].startswith("Compute ")
    assert sc.spec.system == "You are a careful assistant. Answer with a single integer and nothing else."
    ops_only = build("chain-arith", depth=5, ops="+")
    assert all(op == "+" for op in ops_only.instance(0, 0).vars["ops"])


def _var_table(system: str) -> dict[str, int]:
    """Resolve every 'VAR X = ...' line of the rendered system prompt."""
    raw: dict[str, str] = {}
    for line in system.splitlines():
        m = re.fullmatch(r"VAR ([A-Z]+) = (.+)", line)
        if m:
            assert m[1] not in raw, f"{m[1]} assigned twice"
            raw[m[1]] = m[2]
    values: dict[str, int] = {}

    def resolve(name: str) -> int:
        if name not in values:
            rhs = raw[name]
            m = re.fullmatch(r"([A-Z]+)(?: \+ (\d+))?", rhs)
            values[name] = resolve(m[1]) + int(m[2] or 0) if m else int(rhs)
        return values[name]

    for name in raw:
        resolve(name)
    return values


@pytest.mark.parametrize("max_offset", [0, 5])
def test_var_track_expected_follows_the_assignments(max_offset):
    sc = build("var-track", depth=5, distractors=3, max_offset=max_offset, filler=6)
    for index in range(15):
        info = shown(sc, seed=1, index=index)
        table = _var_table(info["system"])
        assert len(table) == 5 * 4  # the chain and three decoys
        for h in info["hops"]:
            asked = re.search(r"What value does ([A-Z]+) hold\?", h["prompt"])[1]
            assert h["expected"] == table[asked]
        starts = [v for k, v in table.items() if re.search(rf"VAR {k} = \d+$", info["system"], re.M)]
        assert len(set(starts)) == len(starts)  # decoy chains start from other values


def test_pointer_chase_expected_follows_the_table():
    sc = build("pointer-chase", depth=6, distractors=10, filler=4)
    for index in range(15):
        info = shown(sc, seed=5, index=index)
        rows = re.findall(r"^(\w+) -> (\w+)$", info["system"], re.M)
        assert len(rows) == 6 + 10
        table = dict(rows)
        assert len(table) == len(rows)  # keys are unique
        key = re.search(r"key (\w+)\?", info["hops"][0]["prompt"])[1]
        for h in info["hops"]:
            assert re.search(r"key (\w+)\?", h["prompt"])[1] == key
            key = table[key]
            assert h["expected"] == key


def test_relation_compose_follows_the_question():
    sc = build("relation-compose", depth=4, relations="manager,mentor,buddy", distractors=2)
    for index in range(15):
        info = shown(sc, seed=0, index=index)
        records = info["vars"]["records"]
        question = re.search(r"Question: who is (.+)\?", info["hops"][1]["prompt"])[1]
        m = re.fullmatch(r"the (.+) of (\w+)", question)
        relations, person = m[1].split(" of the "), m[2]
        llm = [h for h in info["hops"] if h["kind"] == "llm"]
        assert len(llm) == 4
        for rel, h in zip(reversed(relations), llm, strict=True):
            assert f"who is the {rel} of {person}?" in h["prompt"]
            assert f"Record of {person}: " in h["prompt"]
            person = records[person][rel]
            assert h["expected"] == person
        assert all(len(r) == 3 + 2 for r in records.values())  # relations + distractor fields


def test_relation_compose_tool_hops_feed_the_model():
    sc = build("relation-compose", depth=2)
    tools = [sc.hop(h) for h in sc.order if sc.hop(h).kind == "tool"]
    assert [t.tool for t in tools] == ["lookup", "lookup"]
    assert tools[1].depends_on == ["a1"] and sc.hop("a2").depends_on == ["rec1", "a1"]


@pytest.mark.parametrize("combine", ["compare", "add", "max"])
@pytest.mark.parametrize("depth", [1, 3])
def test_fan_in_expected(combine, depth):
    sc = build("fan-in", depth=depth, width=3, combine=combine)
    for index in range(15):
        info = shown(sc, seed=0, index=index)
        hops = {h["id"]: h for h in info["hops"]}
        final = hops.pop("combine")
        for h in hops.values():
            m = re.match(r"(\w+) has (\d+) coins and (earns|spends) (\d+):", h["prompt"])
            before, amount = int(m[2]), int(m[4])
            assert h["expected"] == (before + amount if m[3] == "earns" else before - amount) >= 0
        coins = {who: int(n) for who, n in re.findall(r"(\w+) has (\d+) coins\.", final["prompt"])}
        assert list(coins) == ["Ana", "Ben", "Cara"]
        if combine == "compare":
            assert list(coins.values()).count(max(coins.values())) == 1
            assert final["expected"] == max(coins, key=coins.get)
        elif combine == "add":
            assert final["expected"] == sum(coins.values())
        else:
            assert final["expected"] == max(coins.values())
    assert len(sc.hop("combine").depends_on) == (3 if depth > 1 else 0)


def test_agent_workflow_expected_and_both_verdicts():
    sc = build("agent-workflow", depth=3, catalog=8)
    verdicts = set()
    for index in range(40):
        info = shown(sc, seed=0, index=index)
        v = info["vars"]
        order = re.search(r"Customer order: (.+)\.", info["system"])[1]
        items = [(int(q), p) for q, p in (part.split(" ") for part in order.split(", "))]
        assert [p for _, p in items] == v["items"]
        hops = {h["id"]: h for h in info["hops"]}
        bill = 0
        for j, (qty, product) in enumerate(items, start=1):
            assert hops[f"plan{j}"]["expected"] == product
            record = v["catalog"][product]
            assert hops[f"look{j}"]["expected"] == record
            assert hops[f"cost{j}"]["expected"] == qty * record["price"]
            bill += qty * record["price"]
        assert hops["bill3"]["expected"] == bill
        ok = all(v["catalog"][p]["stock"] >= q for q, p in items)
        assert hops["verify"]["expected"] == ("yes" if ok else "no")
        assert hops["answer"]["expected"] == (bill if ok else 0)
        verdicts.add(ok)
        assert len(v["catalog"]) == 8
    assert verdicts == {True, False}


def test_weekday_arith_expected():
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    sc = build("weekday-arith", depth=5, max_days=20)
    for index in range(15):
        for h in shown(sc, seed=0, index=index)["hops"]:
            m = re.search(r"is (\w+)\. What day of the week is it (\d+) days", h["prompt"])
            assert h["expected"] == days[(days.index(m[1].lower()) + int(m[2])) % 7]


# ------------------------------------------------------------------------------------------
# knobs


@pytest.mark.parametrize("name", ["chain-arith", "var-track", "pointer-chase", "weekday-arith"])
def test_filler_lengthens_the_context_and_keeps_the_answers(name):
    plain = build(name, depth=4)
    long = build(name, depth=4, filler=60)
    for index in range(5):
        a, b = shown(plain, index=index), shown(long, index=index)
        assert len(b["system"]) > len(a["system"] or "") + 600
        assert [h["expected"] for h in a["hops"]] == [h["expected"] for h in b["hops"]]


@pytest.mark.parametrize("name", ["relation-compose", "fan-in", "agent-workflow"])
def test_filler_lengthens_the_context(name):
    assert len(shown(build(name, filler=40))["system"]) > len(shown(build(name))["system"]) + 400


def test_distractors_knob():
    rows = [len(re.findall(r"^\w+ -> \w+$", shown(build("pointer-chase", depth=3, distractors=d))["system"], re.M))
            for d in (0, 5, 20)]
    assert rows == [3, 8, 23]
    lines = [len(re.findall(r"^VAR ", shown(build("var-track", depth=3, distractors=d))["system"], re.M))
             for d in (0, 4)]
    assert lines == [3, 15]


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("chain-arith", {"depth": 0}, "depth"),
        ("var-track", {"answer": "xml"}, "answer must be one of"),
        ("var-track", {"distractors": -1}, "distractors"),
        ("pointer-chase", {"distractors": 500}, "distractors"),
        ("fan-in", {"width": 1}, "width"),
        ("fan-in", {"combine": "mul"}, "combine"),
        ("relation-compose", {"relations": " , "}, "relations"),
        ("relation-compose", {"people": 2}, "people"),
        ("agent-workflow", {"depth": 4, "catalog": 3}, "catalog"),
        ("chain-arith", {"ops": "/"}, "ops"),
        ("weekday-arith", {"max_days": 0}, "max_days"),
        ("var-track", {"filler": -2}, "filler"),
    ],
)
def test_bad_params_are_clear_errors(name, params, match):
    with pytest.raises(ScenarioError, match=match):
        build(name, **params)


# ------------------------------------------------------------------------------------------
# catalogue and scenario files


def test_every_family_has_a_bundled_file():
    files = {}
    for stem, path in bundled_scenarios().items():
        sc = load_scenario(path)
        if sc.ref.get("kind") == "generator":
            files[sc.ref["name"]] = stem
    assert set(FAMILIES) <= set(files), files


def test_list_scenarios_items():
    items = {i["name"]: i for i in list_scenarios()}
    for name in FAMILIES:
        item = items[name]
        assert item["kind"] == "family" and item["description"] and item["error"] is None
        assert "depth" in item["params"] and set(item["params"]) == set(item["param_help"])
        assert item["shape"]["hops"] >= 1
    assert items["var-track-d4"]["family"] == "var-track"
    assert items["chain-linear"]["family"] is None and items["chain-linear"]["shape"]["hops"] == 3


def test_describe_instance_abbreviates_tables_but_keeps_args():
    info = shown(build("relation-compose", depth=2))
    rec0 = info["hops"][0]
    assert rec0["kind"] == "tool" and "<table of 10 entries>" in rec0["prompt"]
    assert len(rec0["args"]["table"]) == 10
    assert info["family"] == "relation-compose" and info["shape"]["tool_hops"] == 2


def test_parse_spec_of_word_hops_is_case_insensitive():
    sc = build("relation-compose", depth=1)
    hop = sc.hop("a1")
    assert hop.parse == ParseSpec(type="text")
    assert check_answer(parse_answer("  ana.\n", hop.parse), "Ana", hop.check)


def test_user_generators_from_the_environment(tmp_path, monkeypatch):
    from agentsim.scenario.families import user as families
    from agentsim.scenario.registry import FAMILIES, get_generator

    (tmp_path / "my_team_families.py").write_text(
        "from agentsim.scenario import Generated, generator\n"
        "@generator('halving', description='halve a number', params={'depth': 1})\n"
        "def halving(depth):\n"
        "    hops = [{'id': 'h1', 'prompt': 'Halve {{ x }}.', 'parse': 'integer', 'expect': 'x // 2'}]\n"
        "    return Generated(spec={'name': 'halving', 'hops': hops},\n"
        "                     draw_vars=lambda rng, world: {'x': 2 * rng.randint(1, 50)}, var_names=['x'])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # the registry is process-wide: what this test registers is undone afterwards
    with FAMILIES.scoped():
        monkeypatch.setenv(families.ENV_VAR, "my_team_families")
        assert families.load_user_generators() == ["my_team_families"]
        assert get_generator("halving") is not None
        ref = tmp_path / "mine.yaml"
        ref.write_text("generator: halving\nparams: {depth: 1}\n")
        sc = load_scenario(ref)
        assert sc.instance(0, 0).expected["h1"] * 2 == sc.instance(0, 0).vars["x"]
        monkeypatch.setenv(families.ENV_VAR, "no_such_module_here")
        with pytest.raises(ScenarioError, match="cannot import generator module 'no_such_module_here'"):
            families.load_user_generators()
    assert get_generator("halving") is None


def test_docs_generator_example_works(monkeypatch):
    """The generator in docs/scenarios.md registers, validates and has exact answers."""
    from pathlib import Path

    from agentsim.scenario.registry import FAMILIES

    text = (Path(__file__).resolve().parents[2] / "docs" / "scenarios.md").read_text()
    code = re.search(r"```python\n(# myteam/families.py\n.*?)```", text, re.S)[1]
    with FAMILIES.scoped():
        exec(compile(code, "docs/scenarios.md", "exec"), {"__name__": "docs_example"})
        sc = build("unit-chain", depth=3, answer="json")
        info = shown(sc, seed=1)
        start = info["vars"]["start"]
        assert [h["expected"] for h in info["hops"]] == [start * 1000, start * 100_000, start * 1_000_000]
        with pytest.raises(ScenarioError, match="depth"):
            build("unit-chain", depth=4)
    assert "unit-chain" not in FAMILIES


def test_agent_workflow_without_the_stock_check_ends_with_the_bill():
    sc = build("agent-workflow", depth=2, verify=False)
    assert scenario_shape(sc) == {"hops": 7, "llm_hops": 5, "tool_hops": 2, "depth": 4, "width": 2}
    assert sc.sinks == ["bill2"] and "noverify" in sc.name
    v = sc.instance(0, 0).vars
    assert sc.instance(0, 0).expected["bill2"] == sum(
        q * v["catalog"][p]["price"] for q, p in zip(v["qty"], v["items"], strict=True))
