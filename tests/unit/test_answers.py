from __future__ import annotations

import pytest

from agentsim.answers import (
    CheckSpec,
    ParseFailure,
    ParseSpec,
    check_answer,
    format_answer,
    parse_answer,
)


@pytest.mark.parametrize(
    "text, spec, expected",
    [
        ("42", ParseSpec(type="number"), 42),
        ("The answer is 42.", ParseSpec(type="number"), 42),
        ("-7", ParseSpec(type="integer"), -7),
        ("1,234 coins", ParseSpec(type="integer"), 1234),
        ("3.5", ParseSpec(type="number"), 3.5),
        ("first 3 then 9", ParseSpec(type="number", pick="last"), 9),
        ("It is Paris, of course", ParseSpec(type="choice", options=["Lima", "Paris"]), "Paris"),
        ("PARIS", ParseSpec(type="choice", options=["Paris", "Par"]), "Paris"),
        ('out: {"a": {"b": 5}} done', ParseSpec(type="json", field="a.b"), 5),
        ("code X-17 here", ParseSpec(type="regex", pattern=r"X-(\d+)"), "17"),
        # a number read from what a pattern matched: a worked answer's "#### N", not its working
        ("3 + 4 = 7, times 2\n#### 1,400", ParseSpec(type="number", pattern=r"####\s*([\d,.]+)"), 1400),
        ("about 2 or 3\nFinal: 2.5 kg", ParseSpec(type="number", pattern=r"Final: (\S+)"), 2.5),
        ("  Hello World.\nmore", ParseSpec(type="text"), "hello world"),
    ],
)
def test_parse(text, spec, expected):
    assert parse_answer(text, spec) == expected


@pytest.mark.parametrize(
    "text, spec",
    [
        ("no digits", ParseSpec(type="number")),
        ("2.5", ParseSpec(type="integer")),
        ("Rome", ParseSpec(type="choice", options=["Lima", "Paris"])),
        ("{bad json", ParseSpec(type="json", field="a")),
        ('{"x": 1}', ParseSpec(type="json", field="a")),
        ("nothing", ParseSpec(type="regex", pattern=r"\d+")),
        ("7 apples, no hashes", ParseSpec(type="number", pattern=r"####\s*(\S+)")),
        ("#### seven", ParseSpec(type="number", pattern=r"####\s*(\S+)")),
        ("   \n  ", ParseSpec(type="text")),
    ],
)
def test_parse_failures(text, spec):
    assert isinstance(parse_answer(text, spec), ParseFailure)


def test_checks():
    assert check_answer(3, 3.0, CheckSpec(type="exact"))
    assert not check_answer("3", 3, CheckSpec(type="exact"))
    assert check_answer(3.04, 3, CheckSpec(type="numeric", tol=0.05))
    assert not check_answer(3.2, 3, CheckSpec(type="numeric", tol=0.05))
    assert check_answer(101, 100, CheckSpec(type="numeric", rel=0.02))
    assert check_answer("paris", "Paris.", CheckSpec(type="normalized"))
    assert not check_answer(ParseFailure("x"), 1, CheckSpec())
    assert not check_answer(1, None, CheckSpec())
    assert not check_answer(True, 1, CheckSpec(type="numeric"))


@pytest.mark.parametrize(
    "value, spec",
    [(12, ParseSpec(type="integer")), (2.5, ParseSpec(type="number")), ("Lima", ParseSpec(type="choice", options=["Lima", "Paris"])),
     ({"k": 3}, ParseSpec(type="json", field="x.y")), ("hello", ParseSpec(type="text")),
     (-12.5, ParseSpec(type="number", pattern=r"####\s*(-?[\d.]+)"))],
)
def test_format_roundtrip(value, spec):
    assert parse_answer(format_answer(value, spec), spec) == value


@pytest.mark.parametrize("text, expected", [("-4", -4), (" −4 ", -4), ("+3.5", 3.5), ("1,200", 1200), ("1e3", 1000)])
def test_numeric_strings_compare_as_numbers_under_numeric(text, expected):
    assert check_answer(text, expected, CheckSpec(type="numeric"))
    assert check_answer(expected, text, CheckSpec(type="numeric"))


@pytest.mark.parametrize("text", ["abc", "4 apples", "", "-", "1,2", "nan"])
def test_non_numeric_strings_do_not_compare_as_numbers(text):
    assert not check_answer(text, 4, CheckSpec(type="numeric"))


def test_huge_numbers_compare_without_overflow():
    assert not check_answer(10**400, 1, CheckSpec(type="numeric"))
    assert check_answer(10**400, 10**400, CheckSpec(type="exact"))


@pytest.mark.parametrize("pattern, value", [
    (r"(-?\d+)", -4), (r"Answer:\s*(-?\d+)", -4), (r"temp(?:erature)? is (-?\d+)°", 12),
    (r"\[(\w+)\]", "Paris"), (r"(?P<who>[A-Z][a-z]+) wins", "Bob"), (r"(yes|no)", "no"), (r"\d+", 7),
    (r"(\p{L}+)", "abc"), (r"x{3}(\d)", 5), (r"[^:]+: (\d+\.\d+)", 2.25),
])
def test_format_answer_builds_a_completion_the_pattern_reads(pattern, value):
    spec = ParseSpec(type="regex", pattern=pattern)
    text = format_answer(value, spec)
    assert check_answer(parse_answer(text, spec), value, CheckSpec(type="normalized")), text


def test_format_answer_says_when_no_completion_reads_as_the_value():
    from agentsim.answers import AnswerFormatError

    with pytest.raises(AnswerFormatError, match=r"pattern '\(\\\\d\+\)' reads as -4"):
        format_answer(-4, ParseSpec(type="regex", pattern=r"(\d+)"))
    with pytest.raises(AnswerFormatError):
        format_answer(True, ParseSpec(type="number"))


def test_numbers_are_written_in_plain_decimals():
    assert format_answer(1e-7, ParseSpec(type="number")) == "0.0000001"
    assert parse_answer(format_answer(1.5e20, ParseSpec(type="number")), ParseSpec(type="number")) == 1.5e20


def test_patterns_compile_with_the_time_bounded_engine():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="invalid regex pattern"):
        ParseSpec(type="regex", pattern="(a")
    assert parse_answer("x = 5", ParseSpec(type="regex", pattern=r"(?<name>\d)")) == "5"


def test_a_pattern_only_applies_to_regex_and_number_parses():
    with pytest.raises(ValueError, match="applies to parse types regex, number and integer"):
        ParseSpec(type="choice", options=["a"], pattern="x")
    with pytest.raises(ValueError, match="invalid regex"):
        ParseSpec(type="number", pattern="(")
