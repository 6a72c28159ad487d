"""Parsing a completion into an answer, and checking it against the expected answer."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
        if self.type == "regex":
            if not self.pattern:
                raise ValueError("parse type 'regex' needs 'pattern'")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"invalid regex pattern: {exc}") from None
        if self.type == "json" and not self.field:
            raise ValueError("parse type 'json' needs 'field' (a dotted path into the object)")
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
        assert spec.pattern is not None
        matches = list(re.finditer(spec.pattern, text))
        if not matches:
            return ParseFailure(f"pattern {spec.pattern!r} did not match")
        m = matches[0] if spec.pick == "first" else matches[-1]
        return m.group(1) if m.groups() else m.group(0)
    if kind == "json":
        assert spec.field is not None
        obj = _first_json_object(text)
        if obj is None:
            return ParseFailure("no JSON object in the completion")
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


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", ""))
        except ValueError:
            return None
    return None


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


def format_answer(value: Any, parse: ParseSpec) -> str:
    """Render a value as a completion that ``parse`` reads back (used by simulation backends)."""
    if parse.type == "json" and parse.field:
        obj: Any = value
        for part in reversed(parse.field.split(".")):
            obj = {part: obj}
        return json.dumps(obj)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
