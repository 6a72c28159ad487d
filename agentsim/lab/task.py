"""The lab task: chained 3-digit arithmetic in a compact format, one operation per hop.

A hop's prompt is ``A<op>B=`` with both operands written with three digits (``412+375=``,
``731-096=``, ``123*007=``) and its answer the exact integer, also three digits (``787``, ``635``,
``861``); in a chain, ``A`` is the previous hop's answer. Fixed widths put every digit at a fixed
position, which is what lets a 1M-parameter model learn the task in minutes on a CPU. This is the bundled ``chain-arith``
family's task with the words stripped and made harder: 3-digit operands, ``+ - *`` mixed, values
kept in 0..999 while the chain is right (``-`` never goes below 0, ``+`` never past 999, ``*`` by
one digit 2..9 only where the product stays below 1000).

The training set and the held-out set are disjoint by construction: a problem ``(a, op, b)``
whose hash falls in one sixteenth of the space is never trained on (:func:`held_out`). This
module is pure Python (``random`` only): the scenario family and the trainer draw from it alike.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["MAX_VALUE", "OPS", "Step", "draw_step", "draw_start", "apply", "prompt", "answer", "held_out", "examples"]

MAX_VALUE = 999
OPS = ("+", "-", "*")

Step = tuple[str, int]  # (op, operand)


def apply(value: int, op: str, b: int) -> int:
    if op == "+":
        return value + b
    if op == "-":
        return value - b
    if op == "*":
        return value * b
    raise ValueError(f"unknown op {op!r}")


def _operand(rng: random.Random, limit: int) -> int:
    """A 3-digit operand up to ``limit`` where there is room for one, else any up to ``limit``."""
    return rng.randint(100, limit) if limit >= 100 else rng.randint(0, limit)


def draw_step(rng: random.Random, value: int) -> Step:
    """One operation on ``value`` (0..999) whose result stays in 0..999, op uniform among those
    possible."""
    ops = ["+", "-"] if value < 2 else ["+", "-", "*"]
    if value * 2 > MAX_VALUE:
        ops.remove("*")
    op = rng.choice(ops)
    if op == "+":
        return op, _operand(rng, MAX_VALUE - value)
    if op == "-":
        return op, _operand(rng, value)
    return op, rng.randint(2, min(9, MAX_VALUE // value))


def draw_start(rng: random.Random) -> int:
    return rng.randint(100, MAX_VALUE)


def prompt(value: int, op: str, b: int) -> str:
    return f"{value:03d}{op}{b:03d}="


def answer(value: int) -> str:
    """The answer as the model writes it: three digits (a value outside 0..999 as it is)."""
    return f"{value:03d}"


def held_out(value: int, op: str, b: int) -> bool:
    """True for the sixteenth of problems that training never sees."""
    return hashlib.sha256(prompt(value, op, b).encode()).digest()[0] < 16


def examples(rng: random.Random, n: int, *, split: str = "train") -> list[tuple[str, str]]:
    """``n`` (prompt, answer) pairs of the split (``train`` or ``heldout``): ``value`` uniform in
    0..999 (every value a chain can reach), then :func:`draw_step`."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', not {split!r}")
    want_held = split == "heldout"
    out: list[tuple[str, str]] = []
    while len(out) < n:
        value = rng.randint(0, MAX_VALUE)
        op, b = draw_step(rng, value)
        if held_out(value, op, b) != want_held:
            continue
        out.append((prompt(value, op, b), answer(apply(value, op, b))))
    return out
