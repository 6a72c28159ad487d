"""Arithmetic families: chain-arith (running totals) and weekday-arith (calendar steps)."""

from __future__ import annotations

import random
from typing import Any

from agentsim.scenario.registry import Generated, generator

from .common import FACT_LINES, INT_SYSTEM, answer_fields, check_common, draw_filler, system_text


@generator(
    "chain-arith",
    description="Chained arithmetic: each hop applies one operation to the previous hop's result.",
    params={"depth": 3, "max_operand": 9, "ops": "+-*", "filler": 0, "answer": "plain"},
    param_help={
        "depth": "number of hops (one operation each)",
        "max_operand": "largest operand drawn (multipliers stay 2..3)",
        "ops": "operations the later hops draw from: any of + - *",
        "filler": "neutral sentences in the system prompt (context length)",
        "answer": "plain (a bare integer) or json ({\"answer\": N})",
    },
)
def chain_arith(depth: int, max_operand: int, ops: str, filler: int, answer: str) -> Generated:
    check_common(depth, filler=filler, answer=answer)
    if max_operand < 2:
        raise ValueError("max_operand must be at least 2")
    op_pool = [o for o in "+-*" if o in ops]
    if not op_pool or set(ops) - set("+-*"):
        raise ValueError(f"ops must be made of + - * (got {ops!r})")
    suffix, fields = answer_fields(answer, "integer")
    hops: list[dict[str, Any]] = [
        {"id": "h1", "prompt": "Compute {{ start }} + {{ operands[0] }}. " + suffix,
         "expect": "start + operands[0]", **fields}
    ]
    for i in range(2, depth + 1):
        prev, k = f"h{i - 1}", str(i - 1)
        hops.append({
            "id": f"h{i}",
            "depends_on": [prev],
            "prompt": "Compute {{ " + prev + " }} {{ ops[" + k + "] }} {{ operands[" + k + "] }}. " + suffix,
            "expect": f"({prev} + operands[{k}]) if ops[{k}] == '+' else (({prev} - operands[{k}]) "
                      f"if ops[{k}] == '-' else ({prev} * operands[{k}]))",
            **fields,
        })

    def draw(rng: random.Random, world: dict[str, Any]) -> dict[str, Any]:
        chosen = ["+"] + [rng.choice(op_pool) for _ in range(depth - 1)]
        operands = [rng.randint(2, max_operand) for _ in range(depth)]
        for i, op in enumerate(chosen):
            if op == "*":
                operands[i] = rng.randint(2, 3)
        out: dict[str, Any] = {"start": rng.randint(1, max_operand), "ops": chosen, "operands": operands}
        if filler:
            out["lines"] = draw_filler(rng, filler)
        return out

    system = INT_SYSTEM if answer == "plain" else "You are a careful assistant. Do the arithmetic exactly."
    if filler:
        system = system_text(system, FACT_LINES)
    spec = {
        "name": f"chain-arith-d{depth}",
        "description": f"{depth}-hop chained arithmetic",
        "system": system,
        "hops": hops,
    }
    names = ["start", "ops", "operands"] + (["lines"] if filler else [])
    return Generated(spec=spec, draw_vars=draw, var_names=names)

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@generator(
    "weekday-arith",
    description="Date arithmetic: each hop moves the previous hop's weekday forward by some days.",
    params={"depth": 3, "max_days": 6, "filler": 0, "answer": "plain"},
    param_help={
        "depth": "number of hops (one shift each)",
        "max_days": "largest shift in days (1..30)",
        "filler": "neutral sentences in the system prompt (context length)",
        "answer": "plain (a day name) or json",
    },
)
def weekday_arith(depth: int, max_days: int, filler: int, answer: str) -> Generated:
    check_common(depth, filler=filler, answer=answer)
    if not 1 <= max_days <= 30:
        raise ValueError("max_days must be within 1..30")
    suffix, fields = answer_fields(answer, "choice", list(_DAYS), what="the day name")
    hops: list[dict[str, Any]] = [
        {"id": "d1", "prompt": "Today is {{ start | capitalize }}. What day of the week is it "
                               "{{ shifts[0] }} days from today? " + suffix,
         "expect": "days[(daynum[start] + shifts[0]) % 7]", **fields}
    ]
    for i in range(2, depth + 1):
        prev = f"d{i - 1}"
        hops.append({
            "id": f"d{i}",
            "depends_on": [prev],
            "prompt": "It is {{ " + prev + " | capitalize }}. What day of the week is it {{ shifts["
                      + str(i - 1) + "] }} days later? " + suffix,
            "expect": f"days[(daynum[{prev} | lower] + shifts[{i - 1}]) % 7]",
            **fields,
        })

    def draw(rng: random.Random, world: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"start": rng.choice(_DAYS),
                               "shifts": [rng.randint(1, max_days) for _ in range(depth)]}
        if filler:
            out["lines"] = draw_filler(rng, filler)
        return out

    system = "You work out days of the week. The week is Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday."
    spec = {
        "name": f"weekday-arith-d{depth}",
        "description": f"{depth} weekday shifts in a row",
        "system": system_text(system, FACT_LINES) if filler else system,
        "world": {"days": list(_DAYS), "daynum": {d: i for i, d in enumerate(_DAYS)}},
        "hops": hops,
    }
    names = ["start", "shifts"] + (["lines"] if filler else [])
    return Generated(spec=spec, draw_vars=draw, var_names=names)

