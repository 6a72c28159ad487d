"""The ``gsm8k`` scenario family: real grade-school math problems, decomposed or whole.

Problems come from the bundled GSM8K test split (Socratic form, see
:mod:`agentsim.datasets.gsm8k`); every instance is one problem, drawn from the problems with the
requested number of annotated steps: instance ``i`` of seed ``s`` is item ``i`` of a permutation of
those problems seeded by the step bucket and ``s`` (not by the form), so it is the same problem at
every precision, on every backend and in every form (whole, worked and decomposed runs of one
seed pair up), and no problem comes twice until the whole pool has been used (instance
``len(pool)`` starts the permutation again).

The knob is ``form``, not ``mode``: ``--mode`` (free / oracle) is the engine's and applies to every
form. ``strict=true`` keeps only problems none of whose steps has uncertain parents
(:attr:`agentsim.datasets.gsm8k.Step.parents_uncertain`); the scenario's description says how many
remain.

``form=decomposed``  one hop per step (``s1``, ``s2``, ...): the problem in the system prompt, the
                     earlier sub-questions with the answers this hop received, then the step's
                     sub-question, answered with a single number. Each hop's expectation is the
                     step's annotated expression as a rational function of the earlier steps'
                     results (instance variables ``num`` and ``den``), so the answer that is right
                     *given the inputs received* is the same expression re-evaluated on them: a
                     wrong earlier answer makes later steps "propagated", not "local". Needs an
                     exact step count (``steps=3``).
``form=worked``      as decomposed, but each step may work briefly before its answer, given on the
                     last line as ``#### N`` (96 tokens): small models that cannot answer a step
                     with a bare number still show where a chain breaks. The same problems as
                     decomposed (same seed, same permutation).
``form=whole``       one hop per problem: the question, chain of thought allowed, the final number
                     read from ``#### N`` (else the last number of the completion). The problem's
                     step count is the instance variable ``n_steps``.

``steps``  ``N`` (exactly N annotated steps), ``A-B`` (a bucket, whole form) or ``N+``.
"""

from __future__ import annotations

import random
import re
from typing import Any

from agentsim.datasets.gsm8k import Problem, load_problems
from agentsim.scenario.registry import Generated, generator

__all__ = ["parse_steps", "problem_pool", "step_expectation", "WHOLE_PARSE_PATTERN"]

_STEPS_RE = re.compile(r"^\s*(\d+)\s*(?:(-)\s*(\d+)|(\+))?\s*$")

#: ``#### N`` when the completion has one (the first), else the last number of the completion
WHOLE_PARSE_PATTERN = (
    r"(?s)(?:####\s*\$?\s*|^(?!.*####\s*\$?\s*-?\d)(?:.*[^\d.,-])?)(-?\d[\d,]*(?:\.\d+)?)"
)

_CHECK = {"type": "numeric", "tol": 1e-6}
_FORMS = ("decomposed", "worked", "whole")
#: the completion budget of a worked step
WORKED_MAX_TOKENS = 96


def parse_steps(text: str) -> tuple[int, int | None]:
    """``"3"`` -> (3, 3); ``"1-2"`` -> (1, 2); ``"5+"`` -> (5, None)."""
    m = _STEPS_RE.match(str(text))
    if not m:
        raise ValueError(f"steps must be N, A-B or N+ (e.g. 3, 1-2, 5+), got {text!r}")
    lo = int(m.group(1))
    if m.group(4):
        return lo, None
    hi = int(m.group(3)) if m.group(2) else lo
    if lo < 1 or hi < lo:
        raise ValueError(f"steps {text!r}: an empty range")
    return lo, hi


def problem_pool(lo: int, hi: int | None, *, strict: bool = False) -> list[Problem]:
    """The parsed problems with ``lo <= steps <= hi`` (``hi`` None: no upper bound); ``strict``:
    only those none of whose steps has uncertain parents."""
    problems, report = load_problems()
    pool = [p for p in problems if p.n_steps >= lo and (hi is None or p.n_steps <= hi)
            and not (strict and p.parents_uncertain)]
    if not pool:
        have = ", ".join(f"{n}: {c}" for n, c in sorted(report.by_steps.items()))
        raise ValueError(f"no GSM8K problem has that many annotated steps (steps: problems = {have})")
    return pool


def _poly_expression(var: str, i: int, n_terms: int) -> str:
    """``sum_t var[i][t][0] * s1 ** var[i][t][1] * ...`` over ``n_terms`` terms; a factor with
    exponent 0 is 1 without reading its step, so a step the calculation does not use (not among
    the hop's inputs) leaves the expectation defined even when its answer did not parse."""
    terms = []
    for t in range(n_terms):
        base = f"{var}[{i}][{t}]"
        terms.append(base + "[0]" + "".join(
            f" * (s{j + 1} ** {base}[{j + 1}] if {base}[{j + 1}] else 1)" for j in range(i)))
    return " + ".join(terms)


def step_expectation(i: int, n_num: int, n_den: int) -> str:
    """The expect expression of step ``i`` (0-based): numerator / denominator, rounded to 9
    decimals, an int when it is a whole number."""
    q = f"(({_poly_expression('num', i, n_num)}) / ({_poly_expression('den', i, n_den)})) | round(9)"
    return f"[{q} | int, {q}] | unique | list | last"


def _padded(terms: tuple[tuple[int, ...], ...], n: int, width: int) -> list[list[int]]:
    out = [list(t) for t in terms]
    out += [[0] * (width + 1) for _ in range(n - len(out))]
    return out


_DECOMPOSED_SYSTEM = (
    "You solve a grade-school math word problem one step at a time. Answer each step's question "
    "with a single number only: no words, no units, no working.\n\n"
    "Problem: {{ question }}"
)
_WHOLE_SYSTEM = (
    "You solve grade-school math word problems. Think step by step, then write the final answer "
    "on the last line as four hash signs and the number, for example: #### 42"
)


@generator(
    "gsm8k",
    description="GSM8K test problems (OpenAI, MIT): each step one hop (decomposed) or the whole "
    "problem in one hop; exact expected answers per step, re-evaluated on the inputs received.",
    params={"steps": "3", "form": "decomposed", "max_tokens": 320, "strict": False},
    renamed={"mode": "form"},
    param_help={
        "steps": "annotated steps per problem: N, or a bucket A-B / N+ (whole form); the test split has 2..8",
        "form": "decomposed (one hop per step, numbers only), worked (one hop per step, brief working, "
                "'#### N') or whole (one hop, chain of thought, '#### N'); not --mode (free/oracle)",
        "max_tokens": "completion budget of a whole-problem hop (decomposed hops use 12, worked 96)",
        "strict": "true: only problems whose every step's parents are certain (docs/gsm8k.md)",
    },
)
def gsm8k(steps: str, form: str, max_tokens: int, strict: bool) -> Generated:
    if form not in _FORMS:
        raise ValueError(f"form must be one of {', '.join(_FORMS)}, got {form!r}")
    if not 16 <= max_tokens <= 4096:
        raise ValueError("max_tokens must be within 16..4096")
    lo, hi = parse_steps(steps)
    pool = problem_pool(lo, hi, strict=strict)
    label = f"{lo}" if hi == lo else (f"{lo}+" if hi is None else f"{lo}-{hi}")
    # one permutation per bucket and seed, whatever the form: instance i is one problem in all
    problem = _drawer(pool, f"gsm8k-steps{label}{'-strict' if strict else ''}")
    note = f", strict: {len(pool)} of {len(problem_pool(lo, hi))} with certain parents" if strict else ""
    suffix = "-strict" if strict else ""
    if form == "whole":
        return _whole(pool, label, max_tokens, problem, note, suffix)
    if hi != lo:
        raise ValueError(f"form={form} needs an exact step count (steps=N), got {steps!r}: "
                         "one hop per step, so every instance must have the same number of steps")
    return _decomposed(pool, lo, label, problem, note, suffix, worked=form == "worked")


def _permutation(pool: list[Problem], name: str, seed: int, cache: dict[int, list[int]]) -> list[int]:
    if seed not in cache:
        order = list(range(len(pool)))
        random.Random(f"agentsim:{name}:problems:{seed}").shuffle(order)
        cache[seed] = order
    return cache[seed]


def _drawer(pool: list[Problem], name: str) -> Any:
    """Instance ``index`` of ``seed`` -> its problem: a seeded permutation, walked in order."""
    cache: dict[int, list[int]] = {}

    def problem(seed: int, index: int) -> Problem:
        order = _permutation(pool, name, seed, cache)
        return pool[order[index % len(order)]]

    return problem


def _whole(pool: list[Problem], label: str, max_tokens: int, problem: Any, note: str, suffix: str) -> Generated:
    hop = {
        "id": "answer",
        "description": "the whole problem: reasoning, then '#### N'",
        "prompt": "{{ question }}",
        "expect": "answer",
        "parse": {"type": "regex", "pattern": WHOLE_PARSE_PATTERN},
        "check": dict(_CHECK),
        "max_tokens": max_tokens,
    }

    name = f"gsm8k-whole-steps{label}{suffix}"

    def draw(rng: random.Random, world: dict[str, Any], *, seed: int, index: int) -> dict[str, Any]:
        p = problem(seed, index)
        return {"problem": p.index, "question": p.question, "answer": p.answer, "n_steps": p.n_steps}

    spec = {
        "name": name,
        "description": f"GSM8K test problems with {label} annotated steps, solved in one hop "
                       f"({len(pool)} problems{note})",
        "system": _WHOLE_SYSTEM,
        "hops": [hop],
        "tags": ["gsm8k", "dataset"],
    }
    return Generated(spec=spec, draw_vars=draw, var_names=["problem", "question", "answer", "n_steps"])


_WORKED_SYSTEM = (
    "You solve a grade-school math word problem one step at a time. For each step, work it out in "
    "a line or two, then write that step's answer on the last line as four hash signs and the "
    "number, for example: #### 42\n\n"
    "Problem: {{ question }}"
)


def _decomposed(pool: list[Problem], n: int, label: str, problem: Any, note: str, suffix: str, *,
                worked: bool = False) -> Generated:
    n_num = [max(len(p.steps[i].rational.num) for p in pool) or 1 for i in range(n)]
    n_den = [max(len(p.steps[i].rational.den) for p in pool) for i in range(n)]
    hops: list[dict[str, Any]] = []
    for i in range(n):
        history = "".join(
            f"Step {j + 1}: {{{{ subq[{j}] }}}}\nAnswer: {{{{ s{j + 1} }}}}\n" for j in range(i)
        )
        hop: dict[str, Any] = {
            "id": f"s{i + 1}",
            "description": f"step {i + 1} of {n}",
            # the prompt shows every earlier step (context); attribution judges the hop by the
            # steps its calculation reads, per problem (the parsed parents, instance var deps)
            "depends_on": [f"s{j + 1}" for j in range(i)],
            "inputs": f"deps[{i}]",
            "expect": step_expectation(i, n_num[i], n_den[i]),
            "check": dict(_CHECK),
        }
        if worked:
            hop.update(prompt=history + f"Step {i + 1}: {{{{ subq[{i}] }}}}\nWork it out briefly, then "
                       "give this step's answer on the last line as #### N.",
                       parse={"type": "number", "pattern": WHOLE_PARSE_PATTERN}, max_tokens=WORKED_MAX_TOKENS)
        else:
            hop.update(prompt=history + f"Step {i + 1}: {{{{ subq[{i}] }}}}\nReply with the number only.",
                       parse="number", grammar="number", max_tokens=12)
        hops.append(hop)

    name = f"gsm8k-{'worked' if worked else 'decomposed'}-steps{label}{suffix}"

    def draw(rng: random.Random, world: dict[str, Any], *, seed: int, index: int) -> dict[str, Any]:
        p = problem(seed, index)
        return {
            "problem": p.index,
            "question": p.question,
            "answer": p.answer,
            "n_steps": p.n_steps,
            "subq": [s.question for s in p.steps],
            "exprs": [s.expression for s in p.steps],
            "results": [s.result for s in p.steps],
            "deps": [[f"s{j + 1}" for j in s.parents] for s in p.steps],
            "num": [_padded(s.rational.num, n_num[i], i) for i, s in enumerate(p.steps)],
            "den": [_padded(s.rational.den, n_den[i], i) for i, s in enumerate(p.steps)],
        }

    spec = {
        "name": name,
        "description": f"GSM8K test problems with {n} annotated steps, one hop per step"
                       f"{', worked answers' if worked else ''} ({len(pool)} problems{note})",
        "system": _WORKED_SYSTEM if worked else _DECOMPOSED_SYSTEM,
        "hops": hops,
        "tags": ["gsm8k", "dataset"],
    }
    names = ["problem", "question", "answer", "n_steps", "subq", "exprs", "results", "deps", "num", "den"]
    return Generated(spec=spec, draw_vars=draw, var_names=names)
