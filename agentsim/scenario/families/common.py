"""Pieces every bundled family shares: filler sentences, answer formats, the system text."""

from __future__ import annotations

import random
from typing import Any

__all__ = [
    "FILLER_SENTENCES", "ANSWER_FORMATS", "FACT_LINES", "INT_SYSTEM", "answer_fields", "check_common",
    "draw_filler", "mix_in", "system_text",
]

# --------------------------------------------------------------------------------------------
# shared pieces

#: Neutral sentences (no numbers, no names, no keys) used to lengthen the context, in the spirit
#: of RULER's haystack. They never contain anything a question asks for.
FILLER_SENTENCES = (
    "The grass is green.",
    "The sky is blue.",
    "The sun is yellow.",
    "Here we go.",
    "There and back again.",
    "The wind moves the trees.",
    "Rain falls in the autumn.",
    "The river runs to the sea.",
    "Birds sing in the morning.",
    "The road is long and quiet.",
    "Clouds drift over the hills.",
    "The lamp is on the table.",
    "A cat sleeps by the door.",
    "The bread is warm.",
    "Snow covers the mountain.",
    "The bell rings at noon.",
    "Leaves turn brown in the fall.",
    "The boat rocks on the waves.",
    "Stars shine at night.",
    "The garden smells of roses.",
    "A train passes in the distance.",
    "The window faces the street.",
    "Tea is served in the afternoon.",
    "The old bridge is made of stone.",
)

ANSWER_FORMATS = ("plain", "json")


def check_common(depth: int, *, lo: int = 1, hi: int = 64, filler: int = 0, answer: str = "plain") -> None:
    if not lo <= depth <= hi:
        raise ValueError(f"depth must be within {lo}..{hi}")
    if not 0 <= filler <= 2000:
        raise ValueError("filler must be within 0..2000 sentences")
    if answer not in ANSWER_FORMATS:
        raise ValueError(f"answer must be one of {', '.join(ANSWER_FORMATS)}, got {answer!r}")


def draw_filler(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(FILLER_SENTENCES) for _ in range(n)]


def mix_in(rng: random.Random, facts: list[str], filler: list[str]) -> list[str]:
    """Facts in their order with filler sentences scattered between them (seeded)."""
    out = list(facts)
    for sentence in filler:
        out.insert(rng.randint(0, len(out)), sentence)
    return out


def answer_fields(
    answer: str, kind: str, options: list[str] | None = None, what: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The answer-format instruction and the hop fields (parse, check, grammar, max_tokens).

    ``kind`` is ``integer`` (a whole number), ``word`` (one word or name, compared
    case-insensitively) or ``choice`` (one of ``options``). ``answer`` is ``plain`` or ``json``.
    ``what`` names the answer in the instruction ("the name", "yes or no").
    """
    what = what or ("the number" if kind == "integer" else "one word")
    slot = what.removeprefix("the ").removeprefix("one ")
    if answer == "json":
        if kind == "integer":
            value_rule = '"-"? [0-9]+'
            example = '{"answer": <number>}'
            check: dict[str, Any] = {"type": "numeric", "tol": 1e-9}
        else:
            if kind == "choice" and options:
                value_rule = '"\\"" (' + " | ".join(f'"{o}"' for o in options) + ') "\\""'
            else:
                value_rule = '"\\"" [A-Za-z] [A-Za-z_-]* "\\""'
            example = '{"answer": "<' + slot + '>"}'
            check = {"type": "normalized"}
        grammar = 'root ::= "{\\"answer\\": " ' + value_rule + ' "}"'
        return (
            f"Reply in JSON only: {example}",
            {"parse": {"type": "json", "field": "answer"}, "check": check,
             "grammar": grammar, "max_tokens": 24},
        )
    instruction = f"Reply with {what} only."
    if kind == "integer":
        return instruction, {"parse": "integer", "grammar": "integer", "max_tokens": 8}
    if kind == "choice":
        assert options
        return instruction, {"parse": {"type": "choice", "options": list(options)},
                             "grammar": "choice:" + "|".join(options), "max_tokens": 8}
    return instruction, {"parse": "text", "grammar": "word", "max_tokens": 8}


def system_text(instruction: str, body: str | None = None) -> str:
    return instruction if body is None else instruction + "\n" + body


FACT_LINES = "{% for line in lines %}{{ line }}\n{% endfor %}"

# --------------------------------------------------------------------------------------------
# 1. chained arithmetic

INT_SYSTEM = "You are a careful assistant. Answer with a single integer and nothing else."


