"""Parsing a completion into an answer, and checking it against the expected answer."""

from __future__ import annotations

import decimal
import functools
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, model_validator

try:  # the parser of Python's own re module: reads a pattern's structure (oracle completions)
    import re._parser as _sre_parse  # type: ignore[import-not-found]
    from re import _constants as _sre  # type: ignore[attr-defined]
except ImportError:  # Python 3.10
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

ParseType = Literal["number", "integer", "choice", "regex", "json", "text"]
CheckType = Literal["exact", "numeric", "normalized"]

_NUMBER_RE = re.compile(r"(?<![\w.])[-+−]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[-+−]?\d+(?:\.\d+)?")


class ParseSpec(BaseModel):
    """How a completion becomes an answer. ``parse: number`` is shorthand for ``{type: number}``."""

    model_config = ConfigDict(extra="forbid")

    type: ParseType = "text"
    options: list[str] | None = None
    pattern: str | None = None
    field: str | None = None
    pick: Literal["first", "last"] = "first"

    @model_validator(mode="after")
    def _check(self) -> ParseSpec:
        if self.type == "choice" and not self.options:
            raise ValueError("parse type 'choice' needs 'options': a list of allowed answers")
        if self.type == "regex" and not self.pattern:
            raise ValueError("parse type 'regex' needs 'pattern'")
        if self.pattern is not None:
            if self.type not in ("regex", "number", "integer"):
                raise ValueError(f"'pattern' applies to parse types regex, number and integer, not {self.type!r}")
            try:
                compile_pattern(self.pattern)
            except regex.error as exc:
                raise ValueError(f"invalid regex pattern {self.pattern!r}: {exc}") from None
        if self.type == "json" and not self.field:
            raise ValueError("parse type 'json' needs 'field' (a dotted path into the object, or '.' for all of it)")
        return self


class CheckSpec(BaseModel):
    """How a parsed answer is compared with the expected one."""

    model_config = ConfigDict(extra="forbid")

    type: CheckType = "exact"
    tol: float = Field(default=0.0, ge=0)
    rel: float = Field(default=0.0, ge=0)


@dataclass(frozen=True)
class ParseFailure:
    reason: str


class AnswerFormatError(ValueError):
    """No completion that the hop's parse reads back as the value (see :func:`format_answer`)."""


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """A regex parse pattern, compiled by the ``regex`` engine (which takes a timeout)."""
    return regex.compile(pattern)


def _regex_timeout() -> float | None:
    from agentsim.limits import current

    return current().regex_s


def _to_number(text: str) -> int | float:
    text = text.replace(",", "").replace("−", "-").lstrip("+")
    value = float(text)
    if value.is_integer() and "." not in text:
        return int(value)
    if value.is_integer():
        return int(value)
    return value


def normalize_text(value: Any) -> str:
    text = str(value).strip().lower()
    text = re.sub(r"\s+", " ", text)
    return text.strip(" .,:;!?\"'`*()[]{}")


def parse_answer(text: str, spec: ParseSpec) -> Any:
    """Parse ``text`` according to ``spec``; returns a value or a :class:`ParseFailure`."""
    if text is None:
        return ParseFailure("no completion")
    kind = spec.type
    if kind in ("number", "integer"):
        if spec.pattern:  # the number is read from what the pattern matched (its group 1)
            picked = _regex_pick(text, spec)
            if isinstance(picked, ParseFailure):
                return picked
            text = picked
        found = _NUMBER_RE.findall(text)
        if not found:
            return ParseFailure("no number in the completion")
        raw = found[0] if spec.pick == "first" else found[-1]
        value = _to_number(raw)
        if kind == "integer":
            if isinstance(value, float) and not value.is_integer():
                return ParseFailure(f"expected an integer, got {raw}")
            value = int(value)
        return value
    if kind == "choice":
        assert spec.options is not None
        lowered = text.lower()
        best: tuple[int, int, str] | None = None
        for option in spec.options:
            m = re.search(r"(?<!\w)" + re.escape(option.lower()) + r"(?!\w)", lowered)
            if m:
                key = (m.start() if spec.pick == "first" else -m.start(), -len(option), option)
                if best is None or key < best:
                    best = key
        if best is None:
            return ParseFailure(f"none of the options {spec.options} in the completion")
        return best[2]
    if kind == "regex":
        return _regex_pick(text, spec)
    if kind == "json":
        assert spec.field is not None
        obj = _first_json_object(text)
        if obj is None:
            return ParseFailure("no JSON object in the completion")
        if spec.field == ".":  # the whole object (a recorded tool call: agentsim import trace)
            return obj
        cur: Any = obj
        for part in spec.field.split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
                cur = cur[int(part)]
            else:
                return ParseFailure(f"JSON has no field {spec.field!r}")
        return cur
    # text: the first non-empty line, normalised
    for line in text.splitlines():
        if line.strip():
            value = normalize_text(line)
            if value:
                return value
    return ParseFailure("empty completion")


def _regex_pick(text: str, spec: ParseSpec) -> str | ParseFailure:
    """The pattern's group 1 (else its whole match) in the first or last match (``pick``)."""
    assert spec.pattern is not None
    timeout = _regex_timeout()
    try:
        matches = list(compile_pattern(spec.pattern).finditer(text, timeout=timeout))
    except TimeoutError:
        return ParseFailure(
            f"pattern {spec.pattern!r} took more than {timeout:g} s on this completion "
            "(limit regex_s; the pattern backtracks: simplify it)"
        )
    if not matches:
        return ParseFailure(f"pattern {spec.pattern!r} did not match")
    m = matches[0] if spec.pick == "first" else matches[-1]
    return str(m.group(1) if m.groups() else m.group(0))


def _first_json_object(text: str) -> Any:
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch == "{":
            try:
                obj, _ = decoder.raw_decode(text[i:])
            except ValueError:
                continue
            return obj
    return None


_NUMERIC_STRING = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


def as_number(value: Any) -> float | None:
    """A number, or a string that is one (``'-4'``, ``' 3.5 '``, ``'1,200'``, ``'−2'``); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        text = value.strip().replace("−", "-")
        if not text or len(text) > 400 or not _NUMERIC_STRING.fullmatch(text) or not any(c.isdigit() for c in text):
            return None
        try:
            return float(text.replace(",", ""))
        except ValueError:
            return None
    return None


_as_number = as_number


def check_answer(value: Any, expected: Any, spec: CheckSpec) -> bool:
    """True when ``value`` counts as ``expected``."""
    if isinstance(value, ParseFailure) or expected is None:
        return False
    if spec.type == "numeric":
        a, b = _as_number(value), _as_number(expected)
        if a is None or b is None or math.isnan(a) or math.isnan(b):
            return False
        return abs(a - b) <= spec.tol + spec.rel * abs(b)
    if spec.type == "normalized":
        return normalize_text(value) == normalize_text(expected)
    # exact: numbers compare as numbers, everything else by equality
    a, b = _as_number(value), _as_number(expected)
    if (
        a is not None
        and b is not None
        and not isinstance(value, str)
        and not isinstance(expected, str)
    ):
        return a == b
    return value == expected


def default_check(parse: ParseSpec) -> CheckSpec:
    if parse.type in ("number", "integer"):
        return CheckSpec(type="numeric", tol=1e-9)
    if parse.type in ("text", "choice"):
        return CheckSpec(type="normalized")
    return CheckSpec(type="exact")


def reads_as(parsed: Any, value: Any) -> bool:
    """Whether a parsed answer stands for ``value`` under some check (exact, numeric or normalized)."""
    if isinstance(parsed, ParseFailure):
        return False
    return (
        check_answer(parsed, value, CheckSpec(type="exact"))
        or check_answer(parsed, value, CheckSpec(type="numeric", tol=1e-9, rel=1e-9))
        or check_answer(parsed, value, CheckSpec(type="normalized"))
    )


def _number_text(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        text = format(decimal.Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def format_answer(value: Any, parse: ParseSpec, grammar: str | None = None) -> str:
    """A completion that ``parse`` reads back as ``value`` (what the ``oracle`` backend answers).

    ``json``: an object with the value at the field path; ``choice``: the option as spelled in
    ``options``; ``regex``: a completion the pattern matches with the value in its group (built
    from the pattern's own literals and classes, then verified with the real pattern); numbers
    in plain decimal notation. Raises :class:`AnswerFormatError` when no completion it can build
    reads back as the value (e.g. a pattern ``(\\d+)`` and the value ``-4``).

    With a hop's ``grammar`` (a preset, ``choice:``, or GBNF), the completion must also be one the
    grammar admits, as a constrained decoder's would be: an expected answer the grammar cannot
    produce (``choice:damaged|late`` and ``wrong_item``) raises :class:`AnswerFormatError` too.
    """
    candidates = [t for t in _candidates(value, parse) if reads_as(parse_answer(t, parse), value)]
    if grammar is None:
        if candidates:
            return candidates[0]
    else:
        from agentsim.grammar import compile_grammar

        g = compile_grammar(grammar)
        for text in candidates + [t for t in _grammar_candidates(value) if reads_as(parse_answer(t, parse), value)]:
            if g.matches(text) is not False:
                return text
        if candidates:
            raise AnswerFormatError(f"the grammar {_short(grammar)} admits no completion that reads as {value!r} "
                                    f"(e.g. {candidates[0]!r} is not admitted)")
    what = {"regex": f"pattern {parse.pattern!r}", "choice": f"options {parse.options}"}.get(
        parse.type, f"parse '{parse.type}'"
    )
    raise AnswerFormatError(f"no completion that {what} reads as {value!r}")


def _short(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57] + "...")


def _grammar_candidates(value: Any) -> list[str]:
    """More spellings of a value for a grammar to admit (a text check reads them all alike)."""
    if not isinstance(value, str):
        return []
    return [value.lower(), value.upper(), value.capitalize(), normalize_text(value)]


def _candidates(value: Any, parse: ParseSpec) -> list[str]:
    plain = _number_text(value)
    if parse.type == "json" and parse.field == ".":
        return [json.dumps(value)]
    if parse.type == "json" and parse.field:
        obj: Any = value
        for part in reversed(parse.field.split(".")):
            obj = {part: obj}
        return [json.dumps(obj)]
    if parse.type == "choice" and parse.options:
        norm = normalize_text(value)
        return [o for o in parse.options if normalize_text(o) == norm] + [plain]
    if parse.pattern and parse.type in ("regex", "number", "integer"):
        out = []
        built = _pattern_completion(parse.pattern, plain)
        if built is not None:
            out.append(built)
        out += [plain, f"{plain}\n", f"Answer: {plain}", f"answer: {plain}", f"The answer is {plain}."]
        return out
    return [plain, plain.replace("\n", " ")]


# --------------------------------------------------------------------------------------------
# completions built from a regex pattern's structure


def _pattern_completion(pattern: str, value: str) -> str | None:
    """The shortest text the pattern's structure suggests, with ``value`` in group 1 (or as the
    whole match when the pattern has no group); None when the pattern cannot be read."""
    try:
        tree = _sre_parse.parse(pattern)
    except Exception:  # noqa: BLE001 - regex-only syntax: the caller tries plain candidates
        return None
    target = 1 if tree.state.groups > 1 else None
    try:
        return _build(list(tree), target, value)
    except (_Unbuildable, RecursionError):
        return None


class _Unbuildable(Exception):
    pass


def _has_group(items: Any, group: int) -> bool:
    for op, av in items:
        if op is _sre.SUBPATTERN:
            if av[0] == group or _has_group(av[-1], group):
                return True
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
            if _has_group(av[2], group):
                return True
        elif op is _sre.BRANCH:
            if any(_has_group(alt, group) for alt in av[1]):
                return True
        elif op in (getattr(_sre, "ATOMIC_GROUP", None),) and _has_group(av, group):
            return True
    return False


_CATEGORY_CHAR = {
    "CATEGORY_DIGIT": "0", "CATEGORY_NOT_DIGIT": "a", "CATEGORY_SPACE": " ", "CATEGORY_NOT_SPACE": "a",
    "CATEGORY_WORD": "a", "CATEGORY_NOT_WORD": " ",
}


def _class_char(items: Any) -> str:
    negate = any(op is _sre.NEGATE for op, _ in items)
    chars: list[str] = []
    for op, av in items:
        if op is _sre.LITERAL:
            chars.append(chr(av))
        elif op is _sre.RANGE:
            chars.append(chr(av[0]))
        elif op is _sre.CATEGORY:
            chars.append(_CATEGORY_CHAR.get(str(av), "a"))
    if not negate:
        if not chars:
            raise _Unbuildable
        return chars[0]
    for c in "ax0 -_.Z":
        if not regex.match("[" + "".join(regex.escape(x) for x in chars) + "]", c):
            return c
    raise _Unbuildable


def _build(items: Any, target: int | None, value: str) -> str:
    if target is None:
        return value
    out: list[str] = []
    for op, av in items:
        if op is _sre.LITERAL:
            out.append(chr(av))
        elif op is _sre.NOT_LITERAL:
            out.append("x" if chr(av) != "x" else "y")
        elif op is _sre.ANY:
            out.append("x")
        elif op is _sre.IN:
            out.append(_class_char(av))
        elif op is _sre.SUBPATTERN:
            out.append(value if av[0] == target else _build(av[-1], target, value))
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
            lo, _hi, sub = av
            if _has_group(sub, target):
                out.append(_build(sub, target, value) + _build(sub, -1, value) * max(lo - 1, 0))
            else:
                if lo > 1000:
                    raise _Unbuildable
                out.append(_build(sub, target, value) * lo)
        elif op is _sre.BRANCH:
            alts = av[1]
            chosen = next((a for a in alts if _has_group(a, target)), alts[0])
            out.append(_build(chosen, target, value))
        elif op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT, _sre.GROUPREF):
            continue
        elif op is getattr(_sre, "ATOMIC_GROUP", None):
            out.append(_build(av, target, value))
        else:
            raise _Unbuildable
    return "".join(out)
