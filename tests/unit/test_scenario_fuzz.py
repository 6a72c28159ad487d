"""Random malformed and hostile scenario files always give a ScenarioError naming the file (or a
valid scenario), quickly, never another exception; through the CLI, under a 2 GiB memory
limit, ``validate`` and a 1-instance ``oracle`` run end with exit 0 or 2 and no traceback; files
whose ``grammar`` fields are mutated run through the real ``llama`` backend on the tiny test
GGUF, each in a process of its own, and end with exit 0 or 2 (never a crash or a hang)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentsim import expr
from agentsim.answers import parse_answer
from agentsim.cli import main
from agentsim.errors import AgentsimError, ScenarioError
from agentsim.scenario import Scenario, bundled_scenarios, load_scenario_bytes, load_scenario_text
from agentsim.store import Store

from .test_grammar import mutate
from .test_limits import BILLION_LAUGHS, TEMP_REGEX, hop_file

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


def _check(call, source="fuzz.yaml"):
    try:
        result = call()
    except ScenarioError as exc:
        assert str(exc).startswith(source), str(exc)  # the error names the file first
        assert exc.source == source
    else:
        assert isinstance(result, Scenario)
    return None


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


# --------------------------------------------------------------------------------------------
# hostile files: valid files mutated the way a careless or hostile author would

#: bundled files that list their hops (the others name a family), and two small ones
VALID = [t for t in (p.read_text(encoding="utf-8") for p in bundled_scenarios().values()) if "- id:" in t]
VALID += [TEMP_REGEX, hop_file("hi {{ 1 + 1 }}")]

AMPLIFIERS = [
    "{% for i in range(N) %}{% for j in range(N) %}x{% endfor %}{% endfor %}",
    "{% for i in range(N) %}{% for j in range(N) %}{% endfor %}{% endfor %}",
    "{{ 'x' * N }}", "{{ [1] * N }}", "{{ N ** N }}", "{{ 'ab'.ljust(N) }}", "{{ 'x'|center(N) }}",
    "{{ '%Nd' % 1 }}", "{{ range(N)|list|length }}", "{{ ('y' * 900000) ~ ('y' * 900000) }}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(N) }}",
    "{% set ns = namespace(x=N) %}{% for i in range(50) %}{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}",
]
ODD = ["\u202e", "\ufeff", "\u200b", "\U0001f600", "e\u0301", "\u0000", "\ud7ff", "\x85", "\u2028", "\uffff"]
HUGE = ["1e400", "-1e400", "1" + "0" * 500, "-9223372036854775809", ".nan", ".inf", "0x" + "f" * 64]


@st.composite
def hostile(draw):
    """A valid file (as data) mutated: an alias bomb, huge numbers, amplifying templates, long
    strings, deep nesting, odd Unicode or a NUL byte, alone or several at once."""
    doc = yaml.safe_load(draw(st.sampled_from(VALID)))
    kinds = draw(st.sets(st.sampled_from(["loops", "aliases", "huge", "long", "deep", "unicode", "nul", "grammar"]),
                         min_size=1, max_size=3))
    hops = doc["hops"]
    hop = hops[draw(st.integers(0, len(hops) - 1))]
    swaps: dict[str, str] = {}
    world = doc.setdefault("world", {})
    if "aliases" in kinds:
        levels, width = draw(st.integers(1, 9)), draw(st.integers(2, 12))
        items = ["&b0 [lol, lol, lol, lol, lol, lol, lol, lol]"]
        items += ["&b%d [%s]" % (i, ", ".join([f"*b{i - 1}"] * width)) for i in range(1, levels + 1)]
        world["bomb"] = "SWAP_BOMB"
        swaps["SWAP_BOMB"] = "[" + ", ".join(items) + "]"
        if draw(st.booleans()) and hop.get("prompt"):
            hop["prompt"] = "{{ bomb | length }} " + hop["prompt"]
    if "huge" in kinds:
        fld = draw(st.sampled_from(["max_tokens", "expect", "description"]))
        hop[fld] = "SWAP_HUGE"
        swaps["SWAP_HUGE"] = draw(st.sampled_from(HUGE))
    if "loops" in kinds and hop.get("kind", "llm") == "llm":
        n = draw(st.sampled_from(["3000000000", "100000", "99999999999999999999", "10"]))
        hop["prompt"] = draw(st.sampled_from(AMPLIFIERS)).replace("N", n)
    if "long" in kinds:
        target = draw(st.sampled_from(["description", "prompt", "world"]))
        text = "z" * draw(st.sampled_from([1000, 100_000, 400_000]))
        if target == "world":
            world["long"] = text
        elif target == "prompt" and hop.get("kind", "llm") == "llm":
            hop["prompt"] = text
        else:
            doc["description"] = text
    if "grammar" in kinds:
        hop["grammar"] = mutated_grammar(draw(st.randoms(use_true_random=False)), hop.get("grammar"))
    if "deep" in kinds:
        depth = draw(st.integers(10, 3000))
        world["deep"] = "SWAP_DEEP"
        swaps["SWAP_DEEP"] = "[" * depth + "]" * depth
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=10**9)
    for key, value in swaps.items():
        text = text.replace(key, value)
    if "unicode" in kinds:
        odd = "".join(draw(st.lists(st.sampled_from(ODD), min_size=1, max_size=4)))
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + odd + text[pos:]
    if "nul" in kinds:
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + "\x00" + text[pos:]
    return text


def mutated_grammar(rnd, grammar: str | None, most: int = 3) -> str:
    """A hop's grammar (its GBNF text, a preset's, or a choice's) mutated: cut, duplicated,
    spliced with GBNF's special characters and escapes, tokens, NULs, left recursion, ..."""
    from agentsim.grammar import resolve_grammar

    base = resolve_grammar(grammar) or 'root ::= "-"? [0-9]+'
    return mutate(base, rnd, most)


def _oracle_instance(sc: Scenario) -> None:
    """What a 1-instance oracle run does with a loaded scenario: draw it, render every prompt,
    answer as the oracle, parse."""
    from agentsim.backends.base import GenerationRequest, create_backend

    backend = create_backend("oracle")
    inst = sc.instance(0, 0)
    sc.render_system(inst)
    ctx = inst.context(sc.spec.world)
    for hop_id in sc.order:
        spec = sc.hop(hop_id)
        hop_ctx = {**ctx, **{p: inst.expected[p] for p in spec.depends_on}}
        if spec.kind != "llm":
            continue
        prompt = expr.render(spec.prompt or "", hop_ctx)
        try:
            completion = backend.generate(GenerationRequest(prompt=prompt, expected=inst.expected[hop_id],
                                                            parse=spec.parse, hop_id=hop_id, grammar=spec.grammar))
        except AgentsimError:
            assert sc.warnings, "the oracle cannot answer a hop that validation did not warn about"
            continue
        parse_answer(completion.text, spec.parse)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(hostile())
def test_hostile_files_end_quickly_with_a_clear_error(monkeypatch_limits, text):
    t0 = time.perf_counter()
    try:
        sc = load_scenario_text(text, source="hostile.yaml")
    except ScenarioError as exc:
        assert str(exc).startswith("hostile.yaml") and exc.source == "hostile.yaml", str(exc)
    else:
        _oracle_instance(sc)
    # a hang detector, not a benchmark: generous for a loaded machine (a file takes well under 1 s)
    assert time.perf_counter() - t0 < 20.0


@pytest.fixture(scope="module")
def monkeypatch_limits():
    """A short CPU budget keeps the examples quick (the limits are the same code at any budget)."""
    old = os.environ.get("AGENTSIM_LIMITS")
    os.environ["AGENTSIM_LIMITS"] = "render_s=0.5"
    yield
    if old is None:
        os.environ.pop("AGENTSIM_LIMITS", None)
    else:
        os.environ["AGENTSIM_LIMITS"] = old


# --------------------------------------------------------------------------------------------
# the command line, in a subprocess with at most 2 GiB of address space

CLI_FILES = {
    "laughs.yaml": BILLION_LAUGHS,
    "loops.yaml": hop_file("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"),
    "mul.yaml": hop_file("{{ 'x' * 3000000000 }}"),
    "temp.yaml": TEMP_REGEX,
    "deep.yaml": "name: s\nworld: {a: " + "[" * 5000 + "]" * 5000 + "}\nhops: [{id: h, prompt: hi, expect: 1}]\n",
}


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def _cli(args: list[str], cwd: Path) -> tuple[int, str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTSIM_LIMITS", "AGENTSIM_TRUST", "AGENTSIM_DEBUG")}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "agentsim.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, preexec_fn=_limit_memory)
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - t0


def test_the_cli_ends_cleanly_on_hostile_files(tmp_path, capsys, monkeypatch):
    for name, text in CLI_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "nul.yaml").write_bytes(b"name: s\nhops: [{id: h, prompt: \x00, expect: 1}]\n")
    files = sorted(p.name for p in tmp_path.glob("*.yaml"))
    rc, out, took = _cli(["validate", *files], tmp_path)
    assert rc == 2 and took < 60, out
    assert "Traceback" not in out and "internal error" not in out
    for name in files:
        if name != "temp.yaml":
            assert f"invalid {name}:" in out, out
    assert "ok temp.yaml" in out and "warning temp.yaml:7: hop 'h', field 'expect'" in out
    rc, out, took = _cli(["run", "laughs.yaml", "-b", "oracle", "-n", "1", "--db", str(tmp_path / "r.db")], tmp_path)
    assert rc in (0, 2) and took < 60, out
    assert "Traceback" not in out and "internal error" not in out, out
    # the benign file needs no process of its own (no memory limit to hit)
    monkeypatch.chdir(tmp_path)
    for args, want in ((["validate", "--strict", "temp.yaml"], 2),
                       (["run", "temp.yaml", "-b", "oracle", "-n", "1", "--db", str(tmp_path / "r.db")], 0)):
        capsys.readouterr()
        code = main(args)
        printed = capsys.readouterr()
        out = printed.out + printed.err
        assert code == want and "Traceback" not in out and "internal error" not in out, out
        if want == 2:
            assert "check: numeric" in out, out
    rc, out, _ = _cli(["validate", "--trust", "temp.yaml"], tmp_path)
    assert rc == 0 and "limits lifted" in out, out


# --------------------------------------------------------------------------------------------
# mutated grammars through the real llama backend (a process each: a crash fails, not kills)


def _grammar_files(n: int, seed: int) -> list[str]:
    import random

    rnd = random.Random(seed)
    base = yaml.safe_load(hop_file("what is 1 + 1?"))
    out = []
    for _ in range(n):
        doc = yaml.safe_load(rnd.choice(VALID))
        doc["hops"] = doc["hops"][:2]
        keep = {h["id"] for h in doc["hops"]}
        for h in doc["hops"]:
            h["depends_on"] = [d for d in h.get("depends_on", []) if d in keep]
            h["max_tokens"] = 4
        hop = rnd.choice([h for h in doc["hops"] if h.get("kind", "llm") == "llm"] or base["hops"])
        hop["grammar"] = mutated_grammar(rnd, hop.get("grammar"), most=1)
        out.append(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return out


@pytest.mark.llama
def test_mutated_grammars_run_through_llama_without_a_crash(tmp_path, tiny_gguf_f16, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pytest.importorskip("llama_cpp")
    texts = _grammar_files(40, seed=24)
    good, bad = [], []
    for i, text in enumerate(texts):
        name = f"g{i}.yaml"
        (tmp_path / name).write_text(text, encoding="utf-8")
        try:
            load_scenario_text(text, source=name)
        except ScenarioError as exc:
            assert str(exc).startswith(name), str(exc)
            bad.append((name, exc))
        else:
            good.append(name)
    assert len(good) >= 3 and len(bad) >= 3, (len(good), len(bad))
    grammar_refusals = [(n, e) for n, e in bad if e.field == "grammar"]
    assert grammar_refusals and all(e.hop and e.line for _, e in grammar_refusals)
    # the accepted grammars through real llama.cpp in one process of their own (the model loaded
    # once; a crash there fails this test instead of killing pytest), every run complete
    spec = f"llama:{tiny_gguf_f16},n_threads=1,n_ctx=512"
    rc, out, took = _cli(["run", *good[:4], "-b", spec, "-n", "1", "--db", str(tmp_path / "g.db")], tmp_path)
    assert "Traceback" not in out and "internal error" not in out, out
    assert rc == 0, ([(tmp_path / n).read_text() for n in good[:4]], out)
    assert took < 120, took
    store = Store(tmp_path / "g.db")
    assert [r.status for r in store.list_runs()] == ["complete"] * len(good[:4])
    store.close()
    # a refused grammar never reaches llama.cpp: the CLI refuses it at its field, exit 2
    for name, _ in grammar_refusals[:2]:
        code = main(["run", name, "-b", spec, "-n", "1", "--db", str(tmp_path / "refused.db")])
        printed = capsys.readouterr()
        out = printed.out + printed.err
        assert code == 2 and "field 'grammar'" in out and "Traceback" not in out, out
