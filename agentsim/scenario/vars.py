"""Instance variables: the ``vars`` kinds (randint, choice, sample, ...) and drawing them."""

from __future__ import annotations

import random
from typing import Any

from agentsim import expr

__all__ = ["VAR_KINDS", "draw_var", "check_var_spec"]

VAR_KINDS = ("randint", "choice", "sample", "shuffle", "uniform", "expr", "value")


def draw_var(spec: Any, rng: random.Random, ctx: dict[str, Any]) -> Any:
    if not isinstance(spec, dict):
        return spec
    if len(spec) != 1 or next(iter(spec)) not in VAR_KINDS:
        # a literal mapping
        return spec
    kind, arg = next(iter(spec.items()))
    if kind == "value":
        return arg
    if kind == "randint":
        lo, hi = arg
        return rng.randint(int(lo), int(hi))
    if kind == "uniform":
        lo, hi = arg[:2]
        digits = int(arg[2]) if len(arg) > 2 else 2
        return round(rng.uniform(float(lo), float(hi)), digits)
    if kind == "choice":
        return rng.choice(list(arg))
    if kind == "sample":
        return rng.sample(list(arg["from"]), int(arg["k"]))
    if kind == "shuffle":
        items = list(arg)
        rng.shuffle(items)
        return items
    if kind == "expr":
        return expr.evaluate(arg, ctx)
    raise AssertionError(kind)


def check_var_spec(name: str, spec: Any) -> None:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in VAR_KINDS:
        return
    kind, arg = next(iter(spec.items()))
    ok = True
    if kind in ("randint", "uniform"):
        ok = (
            isinstance(arg, list)
            and len(arg) in ((2,) if kind == "randint" else (2, 3))
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in arg)
            and arg[0] <= arg[1]
        )
        if kind == "randint" and ok:
            ok = all(float(x).is_integer() for x in arg)
        msg = f"'{kind}' takes [low, high] numbers with low <= high"
    elif kind in ("choice", "shuffle"):
        ok = isinstance(arg, list) and len(arg) > 0
        msg = f"'{kind}' takes a non-empty list"
    elif kind == "sample":
        ok = (
            isinstance(arg, dict)
            and isinstance(arg.get("from"), list)
            and isinstance(arg.get("k"), int)
            and 0 <= arg["k"] <= len(arg["from"])
        )
        msg = "'sample' takes {from: [..], k: N} with N <= the list's length"
    elif kind == "expr":
        ok = isinstance(arg, str)
        msg = "'expr' takes an expression string"
    else:
        msg = ""
    if not ok:
        raise ValueError(msg)

