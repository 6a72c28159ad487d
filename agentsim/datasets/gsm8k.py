"""GSM8K (test split, Socratic form): grade-school math problems with an exact answer per step.

The data is bundled (``agentsim/datasets/gsm8k/test_socratic.jsonl``, MIT licence, see
``SOURCE.md`` there) and its sha256 is checked on load. Each problem's reference solution is one
line per step, ``<sub-question> ** <text with the calculation annotated as <<16-3-4=9>>9>``, and a
last line ``#### <answer>``. :func:`load_problems` turns every problem into :class:`Step` s:

- the sub-question, the annotation's expression (``16-3-4``) and its result (``9``);
- the step's **parents**: the earlier steps whose results its expression uses. A number literal
  in the expression that equals the result of an earlier step is read as that step's result (the
  latest such step), except when the same number is also written in the problem: such an
  ambiguous literal is read as the problem's constant, unless that step's result would otherwise
  never be used (a solution uses every result it computes), in which case the first ambiguous
  literal that can be it is read as the result. Every other literal is a constant;
- the step's expression as a rational function of its parents' results (:class:`Rational`), so
  that the answer that is right *given the values a hop actually received* can be recomputed.

A problem is skipped, and counted by reason (:class:`ParseReport`), when a step has no
annotation or more than one, an annotation does not parse with the safe arithmetic evaluator
(numbers and ``+ - * / % ( )`` only; never ``eval``), its expression does not reproduce its own
result, the last step's result is not the ``#### N`` answer, or a ``%`` is applied to a step's
result (not a rational function, so it cannot be re-evaluated on other inputs).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

from . import DatasetError
from .gsm8k_parents import Reading, StepSource, fold_arithmetic, read_parents, recover_calculation

__all__ = [
    "DATA_FILE",
    "DATA_SHA256",
    "Problem",
    "Step",
    "Rational",
    "ParseReport",
    "SkipProblem",
    "ArithmeticSyntaxError",
    "data_path",
    "read_rows",
    "parse_problem",
    "load_problems",
    "safe_eval",
    "format_number",
]

DATA_FILE = "test_socratic.jsonl"
#: sha256 of ``grade_school_math/data/test_socratic.jsonl`` at openai/grade-school-math
#: commit 3101c7d5072418e28b9008a6636bde82a006892c (see gsm8k/SOURCE.md)
DATA_SHA256 = "c96673362fa7a699f4836a9b6474a067448f95fe58064727501ee63ba4c3fdb6"
DATA_ROWS = 1319

_ANNOTATION_RE = re.compile(r"<<([^<>]*)>>")
_BARE_RE = re.compile(r"^\s*\$?\s*-?(?:\d[\d,]*(?:\.\d*)?|\.\d+)\s*$")
_FINAL_RE = re.compile(r"^####\s*(.+?)\s*$")

# --------------------------------------------------------------------------------------------
# the data file


def data_path() -> Path:
    """The bundled jsonl file (inside the installed package)."""
    return Path(str(resources.files("agentsim.datasets").joinpath("gsm8k", DATA_FILE)))


def read_rows(path: Path | None = None, *, sha256: str = DATA_SHA256) -> list[dict[str, str]]:
    """The raw rows (``question``, ``answer``) of the bundled file, after checking its sha256.

    A missing file or a hash mismatch is a :class:`~agentsim.datasets.DatasetError`.
    """
    p = path or data_path()
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DatasetError(
            f"GSM8K data file {p} cannot be read: {exc.strerror or exc}",
            hint="reinstall agentsim (the file is package data: agentsim/datasets/gsm8k/)",
        ) from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise DatasetError(
            f"GSM8K data file {p} has sha256 {digest}, expected {sha256}: it was altered or "
            "truncated",
            hint="restore it from openai/grade-school-math (see agentsim/datasets/gsm8k/SOURCE.md) "
            "or reinstall agentsim",
        )
    rows: list[dict[str, str]] = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if not isinstance(row, dict) or not {"question", "answer"} <= set(row):
                raise DatasetError(f"GSM8K data file {p}, line {n}: not a question/answer record")
            rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# safe arithmetic


class ArithmeticSyntaxError(ValueError):
    """An annotation is not plain arithmetic over numbers."""


def _literal(node: ast.Constant, source: str) -> Fraction:
    if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
        raise ArithmeticSyntaxError(f"not a number: {ast.get_source_segment(source, node)!r}")
    text = ast.get_source_segment(source, node) or repr(node.value)
    try:
        return Fraction(text)  # exact decimal ("0.1" is 1/10, not the nearest float)
    except ValueError:
        return Fraction(node.value)


def _parse_expression(source: str) -> ast.expr:
    text = source.strip()
    if not text or len(text) > 200:
        raise ArithmeticSyntaxError("empty or overlong expression")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ArithmeticSyntaxError(f"not arithmetic: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(
            node,
            (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Add, ast.Sub, ast.Mult,
             ast.Div, ast.Mod, ast.UAdd, ast.USub),
        ):
            raise ArithmeticSyntaxError(f"{type(node).__name__} is not allowed (numbers and + - * / % ( ) only)")
    assert isinstance(tree, ast.Expression)
    return tree.body


def safe_eval(source: str) -> Fraction:
    """The exact value of an arithmetic expression (numbers and ``+ - * / % ( )``; never eval).

    Raises :class:`ArithmeticSyntaxError` for anything else and ``ZeroDivisionError`` for a
    division by zero.
    """
    text = source.strip()
    return fold_arithmetic(_parse_expression(text), lambda node: _literal(node, text))


# --------------------------------------------------------------------------------------------
# rational functions of the parents' results


Poly = dict[tuple[int, ...], Fraction]  # exponents (one per earlier step) -> coefficient


def _padd(a: Poly, b: Poly, sign: int = 1) -> Poly:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, Fraction(0)) + sign * v
    return {k: v for k, v in out.items() if v != 0}


def _pmul(a: Poly, b: Poly) -> Poly:
    out: Poly = {}
    for ka, va in a.items():
        for kb, vb in b.items():
            k = tuple(x + y for x, y in zip(ka, kb, strict=True))
            out[k] = out.get(k, Fraction(0)) + va * vb
    return {k: v for k, v in out.items() if v != 0}


def _const(p: Poly, width: int) -> Fraction | None:
    if not p:
        return Fraction(0)
    if set(p) == {(0,) * width}:
        return p[(0,) * width]
    return None


@dataclass(frozen=True)
class Rational:
    """``num / den``: polynomials in the earlier steps' results with integer coefficients.

    Each is a list of terms ``[coefficient, e_1, ..., e_k]`` meaning ``c * s_1**e_1 * ... *
    s_k**e_k`` (``k`` is the step's index: one exponent per earlier step).
    """

    num: tuple[tuple[int, ...], ...]
    den: tuple[tuple[int, ...], ...]

    def evaluate(self, values: list[Any]) -> Fraction:
        """The exact value for the given results of the earlier steps (a float is read as the
        decimal it prints as: 0.6 is 3/5)."""
        exact = [Fraction(repr(v)) if isinstance(v, float) else Fraction(v) for v in values]

        def poly(terms: tuple[tuple[int, ...], ...]) -> Fraction:
            total = Fraction(0)
            for c, *exps in terms:
                term = Fraction(c)
                for v, e in zip(exact, exps, strict=True):
                    term *= Fraction(v) ** e
                total += term
            return total

        return poly(self.num) / poly(self.den)


def _rational(body: ast.expr, source: str, variables: dict[int, Reading], width: int) -> tuple[Poly, Poly]:
    """The expression as (numerator, denominator); ``variables`` maps a literal's offset to its
    reading (an earlier step's result, times a scale, or a constant)."""
    one = {(0,) * width: Fraction(1)}

    def ev(node: ast.expr) -> tuple[Poly, Poly]:
        if isinstance(node, ast.Constant):
            reading = variables.get(node.col_offset)
            if reading is not None and reading.step is not None:
                exps = [0] * width
                exps[reading.step] = 1
                return {tuple(exps): reading.scale}, dict(one)
            v = _literal(node, source)
            return ({(0,) * width: v} if v else {}), dict(one)
        if isinstance(node, ast.UnaryOp):
            n, d = ev(node.operand)
            return ({k: -v for k, v in n.items()} if isinstance(node.op, ast.USub) else n), d
        assert isinstance(node, ast.BinOp)
        (n1, d1), (n2, d2) = ev(node.left), ev(node.right)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            sign = 1 if isinstance(node.op, ast.Add) else -1
            if d1 == d2:
                return _padd(n1, n2, sign), d1
            return _padd(_pmul(n1, d2), _pmul(n2, d1), sign), _pmul(d1, d2)
        if isinstance(node.op, ast.Mult):
            return _pmul(n1, n2), _pmul(d1, d2)
        if isinstance(node.op, ast.Div):
            return _pmul(n1, d2), _pmul(d1, n2)
        # modulo: only between constants
        a, b, c, d = (_const(p, width) for p in (n1, d1, n2, d2))
        if a is None or b is None or c is None or d is None:
            raise _NotRational
        value = (a / b) % (c / d)
        return ({(0,) * width: value} if value else {}), dict(one)

    return ev(body)


class _NotRational(Exception):
    pass


def _integer_terms(num: Poly, den: Poly) -> Rational:
    """Scale numerator and denominator to coprime integer coefficients (a constant denominator
    is folded into the numerator's coefficients first)."""
    width = len(next(iter(den)))
    c = _const(den, width)
    if c is not None and c != 0:
        num = {k: v / c for k, v in num.items()}
        den = {(0,) * width: Fraction(1)}
    coeffs = list(num.values()) + list(den.values())
    scale = math.lcm(*(f.denominator for f in coeffs))
    ints = [int(f * scale) for f in coeffs]
    g = math.gcd(*ints) or 1
    n_terms = tuple((int(v * scale) // g, *k) for k, v in sorted(num.items()))
    d_terms = tuple((int(v * scale) // g, *k) for k, v in sorted(den.items()))
    return Rational(num=n_terms, den=d_terms)


# --------------------------------------------------------------------------------------------
# problems


@dataclass(frozen=True)
class Step:
    """One annotated step of a reference solution."""

    index: int  # 0-based position in the solution
    question: str  # the Socratic sub-question
    text: str  # the solution sentence (annotation removed)
    expression: str  # the annotation's expression, e.g. "16-3-4"
    result: int | float  # the annotation's result
    parents: tuple[int, ...]  # earlier steps whose results the expression uses
    rational: Rational  # the expression as a function of the earlier steps' results
    #: the parents were chosen by a fallback rule (another reading fits the text as well), or the
    #: annotation has no calculation to read them from (see :mod:`agentsim.datasets.gsm8k_parents`)
    parents_uncertain: bool = False
    #: the annotation held no calculation (``<<15=15>>``); ``expression`` is the one the sentence
    #: writes before it
    recovered: bool = False


@dataclass(frozen=True)
class Problem:
    """A GSM8K test problem that parsed completely."""

    index: int  # 0-based line of the jsonl file
    question: str
    steps: tuple[Step, ...]
    answer: int | float  # the "#### N" line
    #: number literals equal both to an earlier step's result and to a number of the question:
    #: (read as the step's result, read as the question's constant)
    ambiguous: tuple[int, int] = (0, 0)

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def parents_uncertain(self) -> bool:
        """Some step's parents are uncertain (``--param strict=true`` leaves such problems out)."""
        return any(s.parents_uncertain for s in self.steps)


class SkipProblem(Exception):
    """Why a problem is not used: ``reason`` is one of :data:`SKIP_REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


SKIP_REASONS = {
    "no-annotation": "a step has no <<...>> calculation",
    "several-annotations": "a step has more than one <<...>> calculation",
    "unparsable": "an annotation is not plain arithmetic (numbers and + - * / % ( ))",
    "not-reproduced": "an annotation's expression does not give its own result",
    "final-mismatch": "the last step's result is not the #### answer",
    "not-rational": "% is applied to a step's result (cannot be re-evaluated on other inputs)",
    "malformed": "the solution has no '#### N' line or a step has no ' ** ' sub-question",
    "annotation-not-answer": "a step's annotation is not its sub-question's answer (a later calculation uses "
                             "the number its sentence states instead)",
}


@dataclass
class ParseReport:
    """How many problems parsed, and why the others were skipped."""

    total: int
    kept: int
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    by_steps: dict[int, int] = field(default_factory=dict)
    ambiguous_as_step: int = 0
    ambiguous_as_constant: int = 0
    #: steps whose parents are uncertain, and the problems holding one, by step count
    uncertain_steps: int = 0
    uncertain_by_steps: dict[int, int] = field(default_factory=dict)
    #: annotations with no calculation whose calculation the sentence spells out (kept), and those
    #: it does not (kept, the step flagged uncertain)
    recovered_annotations: int = 0
    bare_annotations: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "kept": self.kept,
            "skipped": dict(self.skipped),
            "by_steps": dict(sorted(self.by_steps.items())),
            "ambiguous_as_step": self.ambiguous_as_step,
            "ambiguous_as_constant": self.ambiguous_as_constant,
            "uncertain_steps": self.uncertain_steps,
            "uncertain_by_steps": dict(sorted(self.uncertain_by_steps.items())),
            "recovered_annotations": self.recovered_annotations,
            "bare_annotations": self.bare_annotations,
        }


def _number(text: str) -> Fraction:
    t = text.strip().replace(",", "").lstrip("$").rstrip(".")
    try:
        return Fraction(t)
    except (ValueError, ZeroDivisionError):
        raise ArithmeticSyntaxError(f"result {text!r} is not a number") from None


def _plain(value: Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)


def format_number(value: Any) -> str:
    """A number as a person writes it: ``9`` not ``9.0``; other values as they are."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_problem(row: dict[str, str], index: int) -> Problem:
    """One jsonl row as a :class:`Problem`; raises :class:`SkipProblem` saying why not.

    In steps: the final ``#### N`` line, each step's sentence and annotation (:func:`_read_step`),
    the parents of every step (:func:`~agentsim.datasets.gsm8k_parents.read_parents`), then each
    step as integer terms over its parents (:func:`_make_step`)."""
    question = row["question"].strip()
    lines = [ln for ln in row["answer"].strip().split("\n") if ln.strip()]
    final = _FINAL_RE.match(lines[-1]) if lines else None
    if final is None or len(lines) < 2:
        raise SkipProblem("malformed", "no '#### N' line after the steps")
    try:
        answer = _number(final.group(1))
    except ArithmeticSyntaxError as exc:
        raise SkipProblem("malformed", str(exc)) from None
    parsed = [_read_step(k, line) for k, line in enumerate(lines[:-1])]
    results = [st.result for _text, st, _rec in parsed]
    if results[-1] != answer:
        raise SkipProblem("final-mismatch", f"last step {float(results[-1]):g}, answer {final.group(1)}")

    reading = read_parents(question, [st for _text, st, _rec in parsed])
    if reading.not_answer:
        j = reading.not_answer[0]
        raise SkipProblem(
            "annotation-not-answer",
            f"step {j + 1} ({parsed[j][1].question!r}): a later calculation uses a number its sentence states, "
            f"not its annotated result {format_number(_plain(results[j]))}",
        )
    steps = tuple(_make_step(k, text, st, recovered, reading, results, index)
                  for k, (text, st, recovered) in enumerate(parsed))
    return Problem(index=index, question=question, steps=steps, answer=_plain(answer),
                   ambiguous=(reading.ambiguous_as_step, reading.ambiguous_as_constant))


def _read_step(k: int, line: str) -> tuple[str, StepSource, bool]:
    """Step ``k``'s line: (its sentence, what the parent reader needs, whether its calculation was
    recovered from the sentence because the annotation held none)."""
    sub, sep, text = line.partition(" ** ")
    if not sep:
        raise SkipProblem("malformed", f"step {k + 1} has no ' ** ' sub-question: {line[:60]!r}")
    found = list(_ANNOTATION_RE.finditer(text))
    if not found:
        raise SkipProblem("no-annotation", f"step {k + 1}: {text[:80]!r}")
    if len(found) > 1:
        raise SkipProblem("several-annotations", f"step {k + 1}: {', '.join(m.group(1) for m in found)}")
    annotation = found[0].group(1)
    expression, eq, result_text = annotation.rpartition("=")
    if not eq:
        raise SkipProblem("unparsable", f"step {k + 1}: <<{annotation}>> has no '='")
    try:
        value = safe_eval(expression)
        result = _number(result_text)
    except ArithmeticSyntaxError as exc:
        raise SkipProblem("unparsable", f"step {k + 1}: <<{annotation}>>: {exc}") from None
    except ZeroDivisionError:
        raise SkipProblem("unparsable", f"step {k + 1}: <<{annotation}>> divides by zero") from None
    if value != result:
        raise SkipProblem(
            "not-reproduced", f"step {k + 1}: {expression.strip()} = {float(value):g}, annotated {result_text}"
        )
    source = expression.strip()
    before, after = text[: found[0].start()], text[found[0].end():]
    bare = recovered = False
    if _BARE_RE.match(source):
        # no calculation in the annotation (<<15=15>>): the one written before it, if it gives
        # the result (``7.5 / .5 = <<15=15>>``); else the step's parents cannot be known
        calculation = recover_calculation(before)
        try:
            recovered = calculation is not None and safe_eval(calculation) == result
        except (ArithmeticSyntaxError, ZeroDivisionError):
            recovered = False
        if recovered:
            assert calculation is not None
            source = calculation
        else:
            bare = True
    return text, StepSource(question=sub.strip(), before=before, after=after, source=source,
                            body=_parse_expression(source), result=result, bare=bare), recovered


def _make_step(k: int, text: str, st: StepSource, recovered: bool, reading: Reading, results: list[Fraction],
               index: int) -> Step:
    """Step ``k`` as a :class:`Step`: its calculation as integer terms over its parents' results."""
    variables = reading.variables[k]
    try:
        num, den = _rational(st.body, st.source, variables, k)
    except _NotRational:
        raise SkipProblem("not-rational", f"step {k + 1}: {st.source}") from None
    except ZeroDivisionError:
        raise SkipProblem("unparsable", f"step {k + 1}: {st.source} divides by zero") from None
    rational = _integer_terms(num, den)
    assert rational.evaluate(results[:k]) == st.result, (index, k, st.source)
    return Step(
        index=k,
        question=st.question,
        text=_ANNOTATION_RE.sub("", text).strip(),
        expression=st.source,
        result=_plain(st.result),
        parents=tuple(sorted({r.step for r in variables.values() if r.step is not None})),
        rational=rational,
        parents_uncertain=reading.uncertain[k],
        recovered=recovered,
    )


@functools.lru_cache(maxsize=1)
def load_problems() -> tuple[tuple[Problem, ...], ParseReport]:
    """Every problem of the bundled file that parses, and the report of those that do not."""
    rows = read_rows()
    problems: list[Problem] = []
    skipped: Counter[str] = Counter()
    examples: dict[str, list[tuple[int, str]]] = {}
    for i, row in enumerate(rows):
        try:
            problems.append(parse_problem(row, i))
        except SkipProblem as exc:
            skipped[exc.reason] += 1
            examples.setdefault(exc.reason, [])
            if len(examples[exc.reason]) < 3:
                examples[exc.reason].append((i, exc.detail))
    report = ParseReport(
        total=len(rows),
        kept=len(problems),
        skipped=dict(skipped.most_common()),
        examples=examples,
        by_steps=dict(Counter(p.n_steps for p in problems)),
        ambiguous_as_step=sum(p.ambiguous[0] for p in problems),
        ambiguous_as_constant=sum(p.ambiguous[1] for p in problems),
        uncertain_steps=sum(s.parents_uncertain for p in problems for s in p.steps),
        uncertain_by_steps=dict(Counter(p.n_steps for p in problems if p.parents_uncertain)),
        recovered_annotations=sum(s.recovered for p in problems for s in p.steps),
        bare_annotations=sum(s.parents_uncertain and bool(_BARE_RE.match(s.expression)) for p in problems
                             for s in p.steps),
    )
    return tuple(problems), report
