"""Sandboxed templates and expressions.

Scenario files are data: prompt templates and expected-answer expressions are evaluated in a
Jinja2 :class:`~jinja2.sandbox.SandboxedEnvironment` with :class:`~jinja2.StrictUndefined`, so a
scenario can neither run code nor read files, and a misspelt variable is an error rather than an
empty string.
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["ENV", "compile_template", "compile_expression", "template_names", "expression_names"]


def _make_env() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )
    # A few pure helpers that scenario authors need for expected answers.
    env.globals.update(
        {
            "abs": abs,
            "min": min,
            "max": max,
            "sum": sum,
            "len": len,
            "sorted": sorted,
            "round": round,
            "int": int,
            "float": float,
            "str": str,
        }
    )
    return env


ENV = _make_env()
_BUILTIN_NAMES = frozenset(ENV.globals)


@functools.lru_cache(maxsize=4096)
def compile_template(source: str) -> Any:
    return ENV.from_string(source)


@functools.lru_cache(maxsize=4096)
def compile_expression(source: str) -> Any:
    return ENV.compile_expression(source, undefined_to_none=False)


def template_names(source: str) -> set[str]:
    """Names a template reads from its context (raises TemplateSyntaxError)."""
    return set(meta.find_undeclared_variables(ENV.parse(source))) - _BUILTIN_NAMES


def expression_names(source: str) -> set[str]:
    """Names an expression reads from its context (raises TemplateSyntaxError)."""
    # compile first so that statements such as "{% ... %}" are rejected as expressions
    compile_expression(source)
    return set(meta.find_undeclared_variables(ENV.parse("{{ (" + source + ") }}"))) - _BUILTIN_NAMES


def evaluate(source: Any, ctx: dict[str, Any]) -> Any:
    """Evaluate an expression; non-string literals are returned as they are."""
    if not isinstance(source, str):
        return source
    return compile_expression(source)(**ctx)


def render(source: str, ctx: dict[str, Any]) -> str:
    return compile_template(source).render(**ctx)


__all__ += ["evaluate", "render", "TemplateSyntaxError"]
