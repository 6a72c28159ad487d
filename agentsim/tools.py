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

import math
from collections.abc import Callable
from typing import Any

from .errors import AgentsimError
from .registry import Registry

__all__ = ["TOOLS", "ToolError", "tool", "get_tool", "available_tools", "call_tool"]

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


def call_tool(name: str, args: dict[str, Any]) -> Any:
    fn = get_tool(name)
    if fn is None:
        raise ToolError(f"unknown tool {name!r}")
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
    """``table[key]`` for a mapping (keys compared as given, then as normalised text)."""
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
    return _num(a, "a") + _num(b, "b")


@tool("sub")
def sub(a: Any, b: Any) -> Any:
    return _num(a, "a") - _num(b, "b")


@tool("mul")
def mul(a: Any, b: Any) -> Any:
    return _num(a, "a") * _num(b, "b")


@tool("div")
def div(a: Any, b: Any) -> Any:
    bb = _num(b, "b")
    if bb == 0:
        raise ToolError("division by zero")
    q = _num(a, "a") / bb
    return int(q) if float(q).is_integer() else q


@tool("max")
def maximum(values: Any) -> Any:
    if not isinstance(values, (list, tuple)) or not values:
        raise ToolError("max needs a non-empty list")
    return max(_num(v, "values") for v in values)


@tool("min")
def minimum(values: Any) -> Any:
    if not isinstance(values, (list, tuple)) or not values:
        raise ToolError("min needs a non-empty list")
    return min(_num(v, "values") for v in values)


@tool("sqrt")
def sqrt(x: Any) -> Any:
    v = _num(x, "x")
    if v < 0:
        raise ToolError("sqrt of a negative number")
    r = math.sqrt(v)
    return int(r) if r.is_integer() else r


@tool("identity")
def identity(value: Any) -> Any:
    return value
