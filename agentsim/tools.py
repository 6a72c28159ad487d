"""Deterministic tool hops.

A ``tool`` hop calls a function registered here by name, with arguments that are sandboxed
expressions over the world, the instance's variables and the parents' values. A bad argument
raises :class:`ToolError`; the engine turns it into an error kind on that hop, never an exception.

Register your own::

    from agentsim.tools import tool, ToolError

    @tool("celsius_to_f")
    def celsius_to_f(c):
        return c * 9 / 5 + 32
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any

from .errors import AgentsimError
from .registry import Registry

__all__ = [
    "TOOLS",
    "ToolError",
    "tool",
    "get_tool",
    "available_tools",
    "call_tool",
    "tool_arguments",
    "tool_signature",
    "check_tool_args",
    "describe_tools",
]

#: every tool by name: the built-ins below, ``@tool`` registrations, ``agentsim.tools`` entry points
TOOLS: Registry[Callable[..., Any]] = Registry("tool", "agentsim.tools")


class ToolError(Exception):
    """A tool was called with arguments it cannot use."""


def tool(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        TOOLS.register(name, fn, description=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "",
                       origin=fn.__module__)
        return fn

    return deco


def get_tool(name: str) -> Callable[..., Any] | None:
    try:
        return TOOLS.find(name)
    except AgentsimError:
        return None


def available_tools() -> list[str]:
    return TOOLS.names()


def tool_arguments(name: str) -> list[str]:
    """The argument names a tool accepts, in order (``**name`` when it takes any keyword)."""
    fn = get_tool(name)
    if fn is None:
        raise ToolError(f"unknown tool {name!r}; registered tools: {', '.join(available_tools())}")
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return ["**kwargs"]
    out = []
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            out.append(f"**{p.name}")
        elif p.kind is p.VAR_POSITIONAL:
            continue  # a hop passes arguments by name only
        elif p.default is p.empty:
            out.append(p.name)
        else:
            out.append(f"{p.name}={p.default!r}")
    return out


def tool_signature(name: str) -> str:
    """``lookup(table, key)``: how a tool hop calls ``name``."""
    return f"{name}({', '.join(tool_arguments(name))})"


def check_tool_args(name: str, arg_names: Iterable[str]) -> str | None:
    """Why ``arg_names`` do not fit tool ``name`` (an unknown or a missing argument, naming the
    accepted ones), or None when they fit."""
    fn = get_tool(name)
    if fn is None:
        return f"unknown tool {name!r}; registered tools: {', '.join(available_tools())}"
    given = list(arg_names)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    params = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown: list[str] = []
    else:
        unknown = [a for a in given if a not in params or params[a].kind is inspect.Parameter.POSITIONAL_ONLY]
    missing = [p.name for p in params.values()
               if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in given]
    if not unknown and not missing:
        return None
    parts = []
    if unknown:
        parts.append(f"no argument {', '.join(repr(a) for a in unknown)}")
    if missing:
        parts.append(f"missing {', '.join(repr(a) for a in missing)}")
    return f"tool {name!r}: {' and '.join(parts)}; it takes {tool_signature(name)}"


def describe_tools() -> list[dict[str, Any]]:
    """Every tool: ``name``, ``arguments`` (names, ``x=default`` when optional), ``signature``,
    ``description`` and ``origin`` (built-in, a module, or an entry point). Imports lazy entries."""
    out = []
    for name in available_tools():
        entry = TOOLS.entry(name)
        fn = get_tool(name)
        doc = (entry.description if entry is not None and entry.description else "") or \
            ((fn.__doc__ or "").strip().splitlines() or [""])[0]
        origin = entry.origin if entry is not None else "built-in"
        if origin == __name__:
            origin = "built-in"
        try:
            args = tool_arguments(name)
        except ToolError:
            args = []
        out.append({"name": name, "arguments": args, "signature": f"{name}({', '.join(args)})",
                    "description": doc, "origin": origin})
    return out


def call_tool(name: str, args: dict[str, Any]) -> Any:
    fn = get_tool(name)
    if fn is None:
        raise ToolError(f"unknown tool {name!r}; registered tools: {', '.join(available_tools())}")
    problem = check_tool_args(name, args)
    if problem is not None:
        raise ToolError(problem)
    try:
        return fn(**args)
    except ToolError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, ArithmeticError) as exc:
        raise ToolError(f"{name}({_fmt_args(args)}): {type(exc).__name__}: {exc}") from None


def _fmt_args(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}"[:60] for k, v in args.items())


def _num(x: Any, name: str) -> int | float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        if isinstance(x, str):
            try:
                f = float(x.replace(",", ""))
                return int(f) if f.is_integer() else f
            except ValueError:
                pass
        raise ToolError(f"argument {name!r} must be a number, got {x!r}")
    return x


@tool("lookup")
def lookup(table: Any, key: Any) -> Any:
    """table[key] for a mapping (keys compared as given, then as normalised text)."""
    if not isinstance(table, dict):
        raise ToolError(f"lookup needs a table (mapping), got {type(table).__name__}")
    if key in table:
        return table[key]
    norm = str(key).strip().lower()
    for k, v in table.items():
        if str(k).strip().lower() == norm:
            return v
    raise ToolError(f"no entry {key!r} in the table")


@tool("add")
def add(a: Any, b: Any) -> Any:
    """a + b (numbers; numeric text such as '1,200' is read as a number)."""
    return _num(a, "a") + _num(b, "b")


@tool("sub")
def sub(a: Any, b: Any) -> Any:
    """a - b."""
    return _num(a, "a") - _num(b, "b")


@tool("mul")
def mul(a: Any, b: Any) -> Any:
    """a * b."""
    return _num(a, "a") * _num(b, "b")


@tool("div")
def div(a: Any, b: Any) -> Any:
    """a / b (a whole result stays an integer; b = 0 is an error)."""
    bb = _num(b, "b")
    if bb == 0:
        raise ToolError("division by zero")
    q = _num(a, "a") / bb
    return int(q) if float(q).is_integer() else q


@tool("max")
def maximum(values: Any) -> Any:
    """The largest of a non-empty list of numbers."""
    if not isinstance(values, (list, tuple)) or not values:
        raise ToolError("max needs a non-empty list")
    return max(_num(v, "values") for v in values)


@tool("min")
def minimum(values: Any) -> Any:
    """The smallest of a non-empty list of numbers."""
    if not isinstance(values, (list, tuple)) or not values:
        raise ToolError("min needs a non-empty list")
    return min(_num(v, "values") for v in values)


@tool("sqrt")
def sqrt(x: Any) -> Any:
    """The square root of a non-negative number."""
    v = _num(x, "x")
    if v < 0:
        raise ToolError("sqrt of a negative number")
    r = math.sqrt(v)
    return int(r) if r.is_integer() else r


@tool("identity")
def identity(value: Any) -> Any:
    """The value itself (passes a parent's answer on)."""
    return value
