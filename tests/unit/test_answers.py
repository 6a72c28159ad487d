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
     ({"k": 3}, ParseSpec(type="json", field="x.y")), ("hello", ParseSpec(type="text"))],
)
def test_format_roundtrip(value, spec):
    assert parse_answer(format_answer(value, spec), spec) == value
