"""Scenario files from strangers: every case of issue 13 ends quickly with a ScenarioError that
names the file, the line, the hop, the field and the limit (or, for a regex, a parse error)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from agentsim import expr, limits
from agentsim.answers import CheckSpec, ParseFailure, ParseSpec, check_answer, parse_answer
from agentsim.errors import ScenarioError
from agentsim.limits import LimitExceeded
from agentsim.scenario import load_scenario, load_scenario_text


def hop_file(prompt: str) -> str:
    """A one-hop scenario whose prompt (line 4) is ``prompt``."""
    return f"name: s\nhops:\n  - id: h\n    prompt: {prompt!r}\n    expect: 1\n    parse: number\n"


def _laughs() -> str:
    lines = ["name: laughs", "vars:", '  a: ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines[2] = "  a: &a" + lines[2][4:]
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
        prev = name
    return "\n".join(lines + ["hops:", "  - id: h", "    prompt: hi", "    expect: 1"]) + "\n"


#: nine levels of ten references: 10**9 "lol"s once expanded (the first alias is on line 4)
BILLION_LAUGHS = _laughs()

#: the issue's regex hop: the model answers exactly the number, as text
TEMP_REGEX = """name: temp
vars:
  temp: {randint: [-9, -1]}
hops:
  - id: h
    prompt: What is the temperature? It is {{ temp }} degrees.
    expect: temp
    parse: {type: regex, pattern: '(-?\\d+)'}
"""


def _error(text: str, source: str = "hostile.yaml", max_s: float = 5.0) -> ScenarioError:
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, source=source)
    assert time.perf_counter() - t0 < max_s
    return info.value


# --- the cases of the issue ----------------------------------------------------------------


def test_billion_laughs_is_refused_with_file_and_line():
    exc = _error(BILLION_LAUGHS, max_s=2.0)
    assert isinstance(exc, LimitExceeded) and exc.limit == "yaml_expanded"
    assert exc.source == "hostile.yaml" and exc.line == 4  # the first alias
    assert "hostile.yaml:4:" in str(exc) and "yaml_expanded" in str(exc) and "--trust" in str(exc)


def test_nested_loops_stop_at_the_output_limit():
    exc = _error(hop_file("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"))
    assert isinstance(exc, LimitExceeded) and exc.limit == "render_bytes"
    assert (exc.source, exc.line, exc.hop, exc.field) == ("hostile.yaml", 4, "h", "prompt")


def test_nested_loops_without_output_stop_at_the_loop_limit():
    exc = _error(hop_file("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"))
    assert isinstance(exc, LimitExceeded) and exc.limit == "loop_items"
    assert (exc.line, exc.hop, exc.field) == (4, "h", "prompt")


def test_string_repetition_is_refused_before_it_is_built():
    exc = _error(hop_file("{{ 'x' * 3000000000 }}"), max_s=1.0)
    assert isinstance(exc, LimitExceeded) and exc.limit == "render_bytes"
    assert "3,000,000,000" in str(exc) and "hostile.yaml:4: hop 'h', field 'prompt'" in str(exc)


def test_catastrophic_regex_cannot_hang_a_parse():
    text = "a" * 5000 + "!"
    t0 = time.perf_counter()
    assert isinstance(parse_answer(text, ParseSpec(type="regex", pattern=r"^(a+)+$")), ParseFailure)
    # unprotected, this match runs for longer than the universe's age: 15 s only absorbs a loaded CI
    assert time.perf_counter() - t0 < 15.0


def test_a_regex_that_backtracks_for_ever_times_out_as_a_parse_error(monkeypatch):
    monkeypatch.setenv("AGENTSIM_LIMITS", "regex_s=0.2")
    t0 = time.perf_counter()
    value = parse_answer("x" * 5000, ParseSpec(type="regex", pattern=r"(x+x+)+y"))
    assert time.perf_counter() - t0 < 15.0
    assert isinstance(value, ParseFailure) and "0.2 s" in value.reason and "regex_s" in value.reason


def test_a_bad_pattern_is_a_validation_error_with_its_place():
    text = "name: s\nhops:\n  - id: h\n    prompt: hi\n    expect: 1\n    parse: {type: regex, pattern: '(a'}\n"
    exc = _error(text)
    assert (exc.line, exc.hop, exc.field) == (6, "h", "parse") and "invalid regex pattern" in str(exc)


def test_a_string_parse_against_a_number_warns_with_the_fixes():
    sc = load_scenario_text(TEMP_REGEX, source="temp.yaml")
    [w] = sc.warnings
    assert (w.source, w.line, w.hop, w.field) == ("temp.yaml", 7, "h", "expect")
    for fix in ("parse: number", "check: numeric", "check: normalized"):
        assert fix in str(w)
    # '-4' is the model's exact answer: under a numeric check it counts as -4
    assert not check_answer("-4", -4, CheckSpec(type="exact"))
    assert check_answer("-4", -4, CheckSpec(type="numeric"))
    for fix in ("check: numeric", "check: normalized"):
        assert load_scenario_text(TEMP_REGEX + f"    {fix}\n", source="t.yaml").warnings == []


@pytest.mark.parametrize("expect", [str(10 ** 400), str(-(10 ** 400)), "{expr: '10 ** 400'}"])
def test_a_huge_numeric_expect_under_an_integer_parse_validates(expect):
    # float() of an integer past 1e308 overflows: a fuzzed file crashed validation with OverflowError
    text = f"name: s\nhops:\n  - id: h\n    prompt: p\n    expect: {expect}\n    parse: integer\n    check: numeric\n"
    try:
        load_scenario_text(text, source="big.yaml")
    except ScenarioError as exc:  # a clear scenario error is fine; an OverflowError is not
        assert "big.yaml" in str(exc)


# --- each limit ----------------------------------------------------------------------------


@pytest.mark.parametrize("template, limit", [
    ("{{ 'x'.ljust(3000000000) }}", "render_bytes"),
    ("{{ 'x'|center(3000000000) }}", "render_bytes"),
    ("{{ '%3000000000d' % 1 }}", "render_bytes"),
    ("{{ '{:>3000000000}'.format(1) }}", "render_bytes"),
    ("{{ ('x' * 1000000)|replace('x', 'xx') }}", "render_bytes"),
    ("{{ [0] * 100000000 }}", "render_bytes"),
    ("{{ 7 ** 10000000 }}", "int_bits"),
    ("{% set ns = namespace(x=3) %}{% for i in range(64) %}{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}",
     "int_bits"),
    ("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
     "render_bytes"),
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "depth"),
])
def test_every_amplifier_is_bounded(template, limit):
    t0 = time.perf_counter()
    with pytest.raises(LimitExceeded) as info:
        expr.render(template, {})
    assert info.value.limit == limit and f"limit {limit}" in str(info.value)
    assert time.perf_counter() - t0 < 1.0


def test_cpu_time_is_enforced_on_loops_over_data(monkeypatch):
    monkeypatch.setenv("AGENTSIM_LIMITS", "render_s=0.3")
    xs = list(range(1000))
    t0 = time.perf_counter()
    with pytest.raises(LimitExceeded) as info:
        expr.render("{% for a in xs %}{% for b in xs %}{% for c in xs %}{% endfor %}{% endfor %}{% endfor %}",
                    {"xs": xs})
    assert info.value.limit == "render_s" and "0.3 s of CPU time" in str(info.value)
    assert time.perf_counter() - t0 < 5.0


def test_cpu_time_is_enforced_in_a_worker_thread_too(monkeypatch):
    monkeypatch.setenv("AGENTSIM_LIMITS", "render_s=0.3")
    out: list[BaseException] = []

    def work() -> None:
        try:
            expr.evaluate("xs | map('string') | join | length > 0 and (xs | sum) > 0", {"xs": range(10**12)})
        except LimitExceeded as exc:
            out.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join(10)
    assert not t.is_alive() and out and out[0].limit in ("render_s", "render_bytes")


def test_a_stop_never_leaks_out_of_its_evaluation(monkeypatch):
    monkeypatch.setenv("AGENTSIM_LIMITS", "render_s=0.002")
    outcomes = set()
    for _ in range(200):
        try:
            expr.render("{% for i in range(3000) %}{% endfor %}ok", {})
            outcomes.add("ok")
        except LimitExceeded:
            outcomes.add("stopped")
    # a stop that fired as an evaluation ended must not surface later in unrelated code
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:
        sum(range(100))
    assert outcomes <= {"ok", "stopped"}


def test_stored_values_are_bounded():
    big = "[" + ", ".join(["'x' * 900000"] * 2) + "]"
    exc = _error(f"name: s\nhops:\n  - id: h\n    prompt: hi\n    expect: \"{big}\"\n")
    assert isinstance(exc, LimitExceeded) and exc.limit == "value_bytes"
    assert (exc.line, exc.hop, exc.field) == (5, "h", "expect")


def test_a_variable_too_big_to_store_names_its_field(monkeypatch):
    monkeypatch.setenv("AGENTSIM_LIMITS", "value_bytes=100")
    exc = _error("name: s\nvars:\n  v: {expr: \"'y' * 500\"}\nhops:\n  - id: h\n    prompt: '{{ v }}'\n    expect: 1\n")
    assert isinstance(exc, LimitExceeded) and exc.limit == "value_bytes"
    assert (exc.line, exc.field) == (3, "vars.v")


def test_yaml_aliases_and_nesting_are_bounded():
    many = "name: s\nworld:\n  a: &a 1\n  b: [" + ", ".join(["*a"] * 1500) + "]\nhops: [{id: h, prompt: hi, expect: 1}]\n"
    exc = _error(many)
    assert isinstance(exc, LimitExceeded) and exc.limit == "yaml_aliases" and exc.line == 4
    deep = "name: s\nworld:\n  a: " + "[" * 200 + "]" * 200 + "\nhops: [{id: h, prompt: hi, expect: 1}]\n"
    exc = _error(deep)
    assert isinstance(exc, LimitExceeded) and exc.limit == "yaml_depth" and exc.line == 3


def test_deeply_nested_expressions_are_a_clear_error():
    exc = _error(hop_file("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}"))
    assert isinstance(exc, LimitExceeded) and exc.limit == "depth" and exc.field == "prompt"


def test_big_files_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTSIM_LIMITS", "file_bytes=1000")
    f = tmp_path / "big.yaml"
    f.write_text(hop_file("x" * 2000))
    with pytest.raises(LimitExceeded) as info:
        load_scenario(f)
    assert info.value.limit == "file_bytes" and str(f) in str(info.value)


# --- adjusting the limits ------------------------------------------------------------------


def test_trusted_files_lift_the_limits_and_say_so(monkeypatch):
    text = hop_file("{{ 'x' * 2000000 }}")
    _error(text)
    monkeypatch.setenv("AGENTSIM_TRUST", "1")
    assert load_scenario_text(text, source="t.yaml").name == "s"
    assert "lifted" in limits.override_note()


def test_single_limits_from_the_environment(monkeypatch):
    monkeypatch.setenv("AGENTSIM_LIMITS", "render_bytes=3000000, render_s=off")
    lim = limits.current()
    assert lim.render_bytes == 3_000_000 and lim.render_s is None
    assert "render_bytes=3000000" in limits.override_note() and "render_s=off" in limits.override_note()
    assert expr.render("{{ 'x' * 2000000 }}", {}) == "x" * 2_000_000
    monkeypatch.setenv("AGENTSIM_LIMITS", "speed=3")
    with pytest.raises(ScenarioError, match="known limit"):
        limits.current()
    monkeypatch.setenv("AGENTSIM_LIMITS", "render_s=-1")
    with pytest.raises(ScenarioError, match="positive"):
        limits.current()


def test_configure_trust_and_back(monkeypatch):
    monkeypatch.setenv("AGENTSIM_TRUST", "0")  # restored (unset) after the test, whatever configure sets
    try:
        assert limits.configure(trust=True) == limits.TRUSTED
        assert limits.current() == limits.TRUSTED
        assert os.environ["AGENTSIM_TRUST"] == "1"  # worker processes inherit it
    finally:
        os.environ["AGENTSIM_TRUST"] = "0"
        limits.configure()
    assert limits.current() == limits.DEFAULTS and limits.override_note() is None


def test_a_value_that_repeats_one_big_string_is_refused_before_it_is_stored():
    # [s] * 10**6 passes the item count, but is 10**12 characters as JSON: refused without building it
    exc = _error('name: s\nhops:\n  - id: h\n    prompt: hi\n    expect: "[\'x\' * 1000000] * 1000000"\n', max_s=3.0)
    assert isinstance(exc, LimitExceeded) and exc.limit == "value_bytes"
    assert (exc.line, exc.hop, exc.field) == (5, "h", "expect")
    value = {"k": ["ab", 12345, None, 2.5] * 3}
    exact = len(json.dumps(value))
    assert exact * 0.8 <= expr.json_size(value, 10**6) <= exact * 1.5  # an estimate of the JSON length


# --------------------------------------------------------------------------------------------
# integers Python cannot write as text (more than sys.get_int_max_str_digits() digits)

BIG_VAR = 'name: big\nvars: {big: {expr: "10 ** 5000"}}\nhops:\n  - id: h\n    prompt: "what is {{ big }}?"\n    expect: "1"\n'


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        (BIG_VAR, 2, "vars.big"),  # was: internal error (ValueError: Exceeds the limit (4300 digits) ...), exit 3
        (hop_file("{{ 10 ** 5000 }}"), None, "prompt"),
        ("name: s\nhops: [{id: h, prompt: hi, expect: " + "1" * 5000 + "}]\n", 2, None),
    ],
)
def test_integers_too_long_to_write_are_a_scenario_error(text: str, line: int | None, field: str | None) -> None:
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(text, source="big.yaml")
    assert "digits" in str(e.value) and e.value.field == field
    if line is not None:
        assert e.value.line == line


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("name: s\nhops:\n  - id: h\n    prompt: hi\n    expect: 1.5e400\n", 5, "expect"),
        ('name: s\nhops:\n  - id: h\n    prompt: hi\n    expect: "2 * 1e999"\n', 5, "expect"),
        (hop_file("{{ 3e999 }}"), 4, "prompt"),
    ],
)
def test_a_float_literal_beyond_range_is_a_syntax_error_not_a_name_error(text: str, line: int, field: str) -> None:
    # was: "NameError: name 'inf' is not defined" (Jinja writes the literal's value, inf, as a name)
    with pytest.raises(ScenarioError) as e:
        load_scenario_text(text, source="inf.yaml")
    assert "beyond a 64-bit float's range" in str(e.value) and "NameError" not in str(e.value)
    assert (e.value.line, e.value.field) == (line, field)


def test_trusted_files_still_cannot_build_integers_python_cannot_write(monkeypatch) -> None:
    monkeypatch.setenv("AGENTSIM_TRUST", "1")
    with pytest.raises(LimitExceeded, match="only up to 4,300 digits"):
        expr.render("{{ 10 ** 5000 }}", {})


def test_an_integer_too_long_to_write_exits_2_in_validate_and_run(tmp_path: Path, monkeypatch, capsys) -> None:
    from agentsim.cli import main

    monkeypatch.delenv("AGENTSIM_LIMITS", raising=False)
    monkeypatch.delenv("AGENTSIM_TRUST", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "big.yaml").write_text(BIG_VAR, encoding="utf-8")
    for args in (["validate", "big.yaml"], ["run", "big.yaml", "-b", "oracle", "-n", "1", "--db", "r.db"]):
        code = main(args)
        printed = capsys.readouterr()
        out = printed.out + printed.err
        assert code == 2 and "internal error" not in out and "digits" in out, out
