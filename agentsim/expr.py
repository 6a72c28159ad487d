"""Sandboxed, bounded templates and expressions.

Scenario files are data: prompt templates and expected-answer expressions are evaluated in a
Jinja2 :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` with
:class:`~jinja2.StrictUndefined`, so a scenario can neither run code, read files nor change the
world tables it shares between instances, and a misspelt variable is an error rather than an
empty string.

Every render and evaluation is also bounded (see :mod:`agentsim.limits`): a CPU-time budget
(enforced by a watchdog that stops the evaluation), the size of what a render outputs, the size
of every string, list or integer an operator, call or filter would build (checked *before* it
is built), the loop items ``range`` hands out, and the nesting of macro calls. Exceeding one
raises :class:`~agentsim.limits.LimitExceeded` (a ``ScenarioError``) naming the limit.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

from agentsim import limits as _limits
from agentsim.limits import LimitExceeded

__all__ = [
    "ENV", "compile_template", "compile_expression", "template_names", "expression_names",
    "evaluate", "render", "TemplateSyntaxError", "LimitExceeded", "check_value_size", "json_size",
]

_SEQUENCES = (str, bytes, list, tuple)
#: str / list methods whose integer arguments size their result
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "__mul__", "__rmul__"})
#: filters whose integer arguments size their result
_WIDTH_FILTERS = frozenset({"center", "indent", "batch", "slice", "wordwrap", "truncate"})
_FORMAT_SPEC = re.compile(r"%[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")
_BRACE_SPEC = re.compile(r"\{[^{}]*:[^{}]*?(\d+)")


def _lim() -> _limits.Limits:
    return _limits.current()


def _too_big(size: int, what: str) -> LimitExceeded:
    cap = _lim().render_bytes
    return LimitExceeded(
        f"{what} would hold {size:,} characters or items; the limit is {cap:,} (limit render_bytes)",
        limit="render_bytes",
    )


def _check_len(n: int, what: str) -> None:
    cap = _lim().render_bytes
    if cap is not None and n > cap:
        raise _too_big(n, what)


def _check_int_bits(bits: int, what: str) -> None:
    cap = _lim().int_bits
    if cap is not None and bits > cap:
        raise LimitExceeded(
            f"{what} would be an integer of about {bits:,} bits ({int(bits / _BITS_PER_DIGIT):,} digits); "
            f"the limit is {cap:,} (limit int_bits)",
            limit="int_bits",
        )
    # Python refuses to write an integer of more digits than this as text (a prompt, the store)
    digits = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    if digits and bits > digits * _BITS_PER_DIGIT:
        raise LimitExceeded(
            f"{what} would be an integer of about {int(bits / _BITS_PER_DIGIT):,} digits; an integer is "
            f"written as text (in a prompt, in the store) only up to {digits:,} digits",
            limit="int_bits", hint="compute a smaller number (e.g. its value modulo 10 ** k, or as a float)",
        )


_BITS_PER_DIGIT = math.log2(10)


def _check_result(value: Any, what: str) -> Any:
    """A value an operation built: sequences and mappings within ``render_bytes``, ints within ``int_bits``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        _check_int_bits(value.bit_length(), what)
    elif isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        _check_len(len(value), what)
    return value


def _as_count(x: Any) -> int | None:
    if isinstance(x, bool) or not isinstance(x, int):
        return None
    return x


def _check_format(fmt: str, args: Any, what: str) -> None:
    """Printf-style or ``str.format`` widths and precisions that would build a huge string."""
    cap = _lim().render_bytes
    if cap is None:
        return
    star = False
    widths = [g for m in _FORMAT_SPEC.finditer(fmt) for g in m.groups() if g]
    widths += [m.group(1) for m in _BRACE_SPEC.finditer(fmt)]
    for g in widths:
        if g == "*":
            star = True
        elif len(g) > 12 or int(g) > cap:
            raise _too_big(int(g) if len(g) <= 12 else 10 ** len(g), what)
    if star or "{" in fmt:
        items = args if isinstance(args, (tuple, list)) else (args.values() if isinstance(args, dict) else (args,))
        for a in items:
            n = _as_count(a)
            if n is not None and n > cap:
                raise _too_big(n, what)


def _check_binop(op: str, left: Any, right: Any) -> None:
    what = f"'{op}'"
    if op == "*":
        for seq, n in ((left, right), (right, left)):
            count = _as_count(n)
            if isinstance(seq, _SEQUENCES) and count is not None:
                _check_len(len(seq) * max(count, 0), f"the result of {what}")
                return
        if _as_count(left) is not None and _as_count(right) is not None:
            _check_int_bits(left.bit_length() + right.bit_length(), f"the result of {what}")
    elif op == "**":
        base, exp = _as_count(left), _as_count(right)
        if base is not None and exp is not None and exp > 0 and abs(base) > 1:
            _check_int_bits(base.bit_length() * exp, f"the result of {what}")
    elif op == "+":
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            _check_len(len(left) + len(right), f"the result of {what}")
    elif op == "%" and isinstance(left, str):
        _check_format(left, right, f"the result of {what}")


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    owner = getattr(target, "__self__", None)
    name = getattr(target, "__name__", "")
    if not isinstance(target, (types.BuiltinMethodType, types.MethodType)) or owner is None:
        return
    what = f"the result of {name}()"
    if isinstance(owner, (str, bytes, list, tuple, dict)):
        _check_len(len(owner), f"the object of {name}()")
    if isinstance(owner, (str, bytes, list)):
        values = list(args) + list(kwargs.values())
        if name in _WIDTH_METHODS:
            for a in values:
                n = _as_count(a)
                if n is not None:
                    _check_len(n * (len(owner) if name in ("__mul__", "__rmul__") else 1), what)
        elif name in ("format", "format_map") and isinstance(owner, str):
            _check_format(owner, args[0] if name == "format_map" and args else values, what)
        elif name == "replace" and isinstance(owner, str) and len(args) >= 2:
            old, new = args[0], args[1]
            if isinstance(old, str) and isinstance(new, str):
                count = owner.count(old) if old else len(owner) + 1
                _check_len(len(owner) + count * max(len(new) - len(old), 0), what)
        elif name == "join" and args and isinstance(args[0], (list, tuple)) and isinstance(owner, str):
            parts = args[0]
            total = len(owner) * max(len(parts) - 1, 0) + sum(len(p) for p in parts if isinstance(p, str))
            _check_len(total, what)


_depth = threading.local()


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with the ``~`` operator's result checked for size."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat(")
        super().visit_Concat(node, frame)
        self.write(")")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with size, loop and nesting checks (the CPU-time budget is :func:`agentsim.limits.guard`)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return _check_result(self.binop_table[operator](left, right), f"the result of '{operator}'")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _check_call(__obj, args, kwargs)
        if isinstance(__obj, Macro):
            depth = getattr(_depth, "n", 0) + 1
            cap = _lim().depth
            if cap is not None and depth > cap:
                raise LimitExceeded(
                    f"macro calls nest more than {cap} deep (limit depth)", limit="depth"
                )
            _depth.n = depth
            try:
                result = super().call(__context, __obj, *args, **kwargs)
            finally:
                _depth.n = depth - 1
        else:
            result = super().call(__context, __obj, *args, **kwargs)
        name = getattr(__obj, "__name__", "the call")
        return _check_result(result, f"the result of {name}()")

    @staticmethod
    def bounded_concat(value: Any) -> Any:
        return _check_result(value, "the result of '~'")


def _bounded_range(*args: Any) -> range:
    r = safe_range(*args)
    _limits.charge(len(r))
    return r


def _bounded_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = list(args) + list(kwargs.values())
        if name in _WIDTH_FILTERS:
            for a in values:
                n = _as_count(a)
                if n is not None:
                    _check_len(n, f"the result of the '{name}' filter")
        elif name == "format":
            fmt = next((a for a in values if isinstance(a, str)), None)
            if fmt is not None:
                _check_format(fmt, values[values.index(fmt) + 1 :], f"the result of the '{name}' filter")
        elif name == "replace":
            strs = [a for a in values if isinstance(a, str)]
            if len(strs) >= 3:
                s, old, new = strs[:3]
                count = s.count(old) if old else len(s) + 1
                _check_len(len(s) + count * max(len(new) - len(old), 0), "the result of the 'replace' filter")
        return _check_result(fn(*args, **kwargs), f"the result of the '{name}' filter")

    return wrapper


def _make_env() -> BoundedSandbox:
    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters = {name: _bounded_filter(name, fn) for name, fn in env.filters.items()}
    # A few pure helpers that scenario authors need for expected answers.
    env.globals.update(
        {
            "range": _bounded_range,
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
def _compile_template(source: str) -> Any:
    template = ENV.from_string(source)
    _refuse_overflowing_literals(ENV.parse(source))
    return template


def _refuse_overflowing_literals(tree: Any) -> None:
    """A number literal beyond a float's range (``1.5e400``) parses to ``inf``, which Jinja then
    writes into Python source as the name ``inf``: refuse it here as the syntax error it is."""
    for const in tree.find_all(nodes.Const):
        if isinstance(const.value, float) and not math.isfinite(const.value):
            raise TemplateSyntaxError(
                "a number literal is beyond a 64-bit float's range (about 1.8e308); "
                "write a smaller number, or an int",
                const.lineno or 1,
            )


@functools.lru_cache(maxsize=4096)
def _compile_expression(source: str) -> Any:
    compiled = ENV.compile_expression(source, undefined_to_none=False)
    _refuse_overflowing_literals(ENV.parse("{{ (" + source + ") }}"))
    return compiled


def compile_template(source: str) -> Any:
    with _limits.guard("compiling the template"):
        return _compile_template(source)


def compile_expression(source: str) -> Any:
    with _limits.guard("compiling the expression"):
        return _compile_expression(source)


def _parse(source: str) -> Any:
    with _limits.guard("parsing the template"):
        return ENV.parse(source)


def template_names(source: str) -> set[str]:
    """Names a template reads from its context (raises TemplateSyntaxError)."""
    return set(meta.find_undeclared_variables(_parse(source))) - _BUILTIN_NAMES


def expression_names(source: str) -> set[str]:
    """Names an expression reads from its context (raises TemplateSyntaxError)."""
    # compile first so that statements such as "{% ... %}" are rejected as expressions
    compile_expression(source)
    return set(meta.find_undeclared_variables(_parse("{{ (" + source + ") }}"))) - _BUILTIN_NAMES


def evaluate(source: Any, ctx: dict[str, Any]) -> Any:
    """Evaluate an expression; non-string literals are returned as they are."""
    if not isinstance(source, str):
        return source
    with _limits.guard("the expression"):
        fn = _compile_expression(source)
        return _check_built_value(_check_result(fn(**ctx), "the expression's value"))


def render(source: str, ctx: dict[str, Any]) -> str:
    """Render a template; its output is bounded by ``render_bytes`` as it is produced."""
    with _limits.guard("the template") as lim:
        template = _compile_template(source)
        cap = lim.render_bytes
        out: list[str] = []
        size = 0
        for chunk in template.generate(**ctx):
            size += len(chunk)
            if cap is not None and size > cap:
                raise LimitExceeded(
                    f"the template's output is longer than {cap:,} characters (limit render_bytes)",
                    limit="render_bytes",
                )
            out.append(chunk)
        return "".join(out)


def json_size(value: Any, cap: int) -> int:
    """The length of ``value`` as JSON, counted without building it, up to just past ``cap``:
    a list that repeats one big string a million times costs ``cap`` steps, not its size."""
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            total += len(v) + 2
        elif isinstance(v, bool) or v is None:
            total += 4
        elif isinstance(v, int):
            total += len(str(v)) if v.bit_length() < 64 else v.bit_length() * 10 // 33 + 2
        elif isinstance(v, float):
            total += len(repr(v))
        elif isinstance(v, dict):
            total += 4 * len(v)
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple, set, frozenset, range)):
            total += 2 * len(v)
            if total <= cap:
                stack.extend(v)
        else:
            total += len(str(v)[: cap + 1]) + 2
        if total > cap:
            return total
    return total


def _check_built_value(value: Any) -> Any:
    """An expression's value within the size of what a file can hold (world tables are data)."""
    lim = _lim()
    caps = [c for c in (lim.value_bytes, lim.file_bytes) if c is not None]
    if lim.value_bytes is None or not caps or isinstance(value, (str, int, float, bool)) or value is None:
        return value
    cap = max(caps)
    size = json_size(value, cap)
    if size > cap:
        raise LimitExceeded(
            f"the expression's value is more than {cap:,} characters as JSON (limit value_bytes)",
            limit="value_bytes",
        )
    return value


def check_value_size(value: Any, what: str) -> None:
    """Raise :class:`LimitExceeded` when ``value`` as JSON is longer than ``value_bytes``."""
    cap = _lim().value_bytes
    if cap is None:
        return
    size = json_size(value, cap)
    if size > cap:
        raise LimitExceeded(
            f"{what} is more than {cap:,} characters as JSON; a stored value is limited to {cap:,} "
            "(limit value_bytes)",
            limit="value_bytes",
        )
