"""Our GBNF checker: what llama.cpp would refuse (and then crash on) or could not run is refused
with its place; what it accepts, the real llama.cpp parser accepts and runs without crashing.

The differential part feeds several hundred mutated grammars to the real llama.cpp on the tiny
test GGUF, in a subprocess (``tests.grammar_probe``), so a segmentation fault fails the test
instead of killing pytest.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentsim.grammar import PRESETS, GrammarError, compile_grammar, parse_gbnf, resolve_grammar

ROOT = Path(__file__).resolve().parents[2]

JSON_ANSWER = 'root ::= "{\\"answer\\": " "\\"" ("damaged" | "late") "\\"" "}"'
RICH = (
    "# an answer line\n"
    'root ::= "answer: " value ( ", " value ){0,3} nl?\n'
    "value ::= num | word | \"'\" [^'\\n]{1,8} \"'\"\n"
    'num   ::= "-"? [0-9]+ ("." [0-9]{1,3})?\n'
    "word  ::= [a-zA-Z\\u00e9] [a-z-]*   # letters\n"
    'nl    ::= "\\n" | "\\r\\n"\n'
)
SEEDS = [*PRESETS.values(), resolve_grammar("choice:damaged|late|wrong_item|bill\"ing"), JSON_ANSWER, RICH,
         'root ::= ( "a" | b )+\nb ::= "b" ( "c" b )?', 'root ::= . . [^x]?']


@pytest.mark.parametrize("text", SEEDS)
def test_the_grammars_agentsim_writes_pass(text: str) -> None:
    parse_gbnf(text)


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("root ::= ( [0-9", "inside a [...] class", 1),  # the file that crashed llama.cpp (exit 139)
        ('root ::= "a"\nitem ::= ( "b"\n', "expecting ')'", 2),
        ('root ::= "x" root', "admits no string", 1),
        ('root ::= "a" | loop\nloop ::= "b" loop', "rule 'loop' admits no finite string", 2),
        ('root ::= a\na ::= a "x" | "y"', "left recursion", 2),
        # hidden left recursion: b derives only the empty string, which llama.cpp's own check misses
        ('root ::= a\na ::= b a "x" | "y"\nb ::= c\nc ::= ""', "left recursion", None),
        ('root ::= ("a"?)*', "can be empty", 1),
        ('root ::= "a"{3,1}', "maximum is below the minimum", 1),
        ('root ::= "a"{2001}', "exceeds 2000", 1),
        ('root ::= ("a"{0,50}){0,50}', "multiply to more than 2000", 1),
        ('root ::= ("a"{50}){40}', None, None),  # as in llama.cpp: a fixed count makes no rules
        ('root ::= [z-a]', "matches no character", 1),
        ('root ::= []', "empty class", 1),
        ('root ::= <[12]>', "token references", 1),
        ('root ::= "\\x00"', "NUL", 1),
        ('root ::= "\\q"', "unknown escape", 1),
        ('root ::= "\\U00110000"', "not a Unicode character", 1),
        ('root ::= my_rule\nmy_rule ::= "a"', "expecting a newline or the end", 1),
        ('root ::= x', "'x' is used but never defined", 1),
        ('item ::= "a"', "must define a 'root' rule", None),
        ('root ::= "a"\nroot ::= "b"', "defined twice", 2),
        ('root ::= "a"\n  "b"', "expecting a rule name", 2),
        ('root ::= "a"+?', None, None),  # a repeated repetition is fine ...
        ('root ::= ""*', "needs an item before it", 1),  # ... an empty literal is no item
    ],
)
def test_bad_grammars_are_refused_with_their_place(text: str, message: str | None, line: int | None) -> None:
    if message is None:
        parse_gbnf(text)
        return
    with pytest.raises(GrammarError) as e:
        parse_gbnf(text)
    assert message in str(e.value)
    if line is not None:
        assert e.value.line == line, str(e.value)


def test_recognition_and_the_shortest_string() -> None:
    g = compile_grammar("choice:damaged|late|wrong|billing")
    assert g.matches("late") and not g.matches("wrong_item") and g.shortest() in ("late", "wrong")
    n = compile_grammar("number")
    assert n.matches("-3.25") and n.matches("42") and not n.matches("3.") and not n.matches("") and n.shortest() == "0"
    r = parse_gbnf(RICH)
    assert r.matches("answer: 12, 'x y', éd-j\n") and not r.matches("answer: 1, 2, 3, 4, 5")
    assert r.matches(r.shortest())
    j = parse_gbnf(JSON_ANSWER)
    assert j.matches('{"answer": "late"}') and not j.matches('{"answer": "Late"}')
    bounded = parse_gbnf('root ::= "a"{2,4}')
    assert [bounded.matches("a" * k) for k in range(6)] == [False, False, True, True, True, False]


def test_choice_options_are_quoted_for_gbnf() -> None:
    g = compile_grammar('choice:a"b|c\\d|[e]')
    assert g.matches('a"b') and g.matches("c\\d") and g.matches("[e]")


# --------------------------------------------------------------------------------------------
# fuzzing: our checker never fails otherwise than with a GrammarError, and quickly

SNIPPETS = ["(", ")", "[", "]", '"', "|", "*", "+", "?", "{3,1}", "{0}", "{2001}", "{5,}", "{2,3}", "\\", "\\x0",
            "\\x00", "\\u12", "\\U0010FFFF", "<[5]>", "!<[5]>", "<x>", "#c\n", "\n", "\r\n", " ", "\t", "root",
            "x", 'x ::= x "a"\n', "::=", ".", "[^\\x01-\\U0010FFFF]", "[z-a]", '""', "()", "a_b", "\x00", "é",
            "\U0001f600", "root ::= ", "-", "^", "\\n", "\\-", "\x0b", "\u3000", "9", "root ::= root\n"]


def mutate(text: str, rnd: random.Random, most: int = 3) -> str:
    """``text`` with 1 to ``most`` random cuts, insertions, duplications or replacements."""
    for _ in range(rnd.randint(1, most)):
        i, j = sorted(rnd.randint(0, len(text)) for _ in range(2))
        op = rnd.randrange(4)
        if op == 0:
            text = text[:i] + text[j:]
        elif op == 1:
            text = text[:i] + rnd.choice(SNIPPETS) + text[i:]
        elif op == 2:
            text = text[:i] + text[i:j] * 2 + text[j:]
        else:
            text = text[:i] + rnd.choice(SNIPPETS) + text[j:]
    return text


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SEEDS), st.randoms(use_true_random=False))
def test_mutated_grammars_are_checked_without_surprise(seed: str, rnd: random.Random) -> None:
    text = mutate(seed, rnd)
    try:
        g = parse_gbnf(text)
    except GrammarError as exc:
        assert exc.message
    else:
        assert g.matches(g.shortest()) is not False


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('root::=|()[]"*+?{},.^-\\ \n#ax09')), max_size=60))
def test_random_grammar_text_is_checked_without_surprise(text: str) -> None:
    try:
        parse_gbnf(text)
    except GrammarError:
        pass


def probe(grammars: list[str], gguf: Path, timeout: float = 240) -> list[dict]:
    """Run ``tests.grammar_probe`` on ``grammars``; a crash or a hang fails with the grammar."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tests.grammar_probe", str(gguf)], input=json.dumps(grammars),
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    started = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("start ")]
    if proc.returncode != 0:
        last = grammars[started[-1]] if started else None
        pytest.fail(f"llama.cpp ended with {proc.returncode} on grammar {last!r}\n{proc.stderr[-2000:]}")
    return [json.loads(line.split(" ", 2)[2]) for line in proc.stdout.splitlines() if line.startswith("done ")]


@pytest.mark.llama
def test_what_we_accept_llama_cpp_parses_and_runs(tiny_gguf_f16: Path) -> None:
    """Mutated grammars (seeded): each one we accept, llama.cpp's parser takes and the llama
    backend decodes under without a crash or a hang (the ones we refuse never reach it here,
    as they never do in agentsim)."""
    pytest.importorskip("llama_cpp")
    rnd = random.Random(24)
    accepted, refused = [], 0
    while len(accepted) < 250:
        text = mutate(rnd.choice(SEEDS), rnd)
        try:
            parse_gbnf(text)
        except GrammarError:
            refused += 1
        else:
            accepted.append(text)
    assert refused > 100  # the mutations do reach the refusals
    results = probe(accepted, tiny_gguf_f16)
    assert len(results) == len(accepted)
    for text, res in zip(accepted, results, strict=True):
        assert res["parsed"], f"llama.cpp refused a grammar we accept: {text!r}"
        assert res["error"] is None, (text, res)
        assert res["text"] is not None
