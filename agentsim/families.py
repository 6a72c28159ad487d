"""Bundled scenario families (seeded generators with exact per-hop ground truth).

Each family registers itself with :func:`agentsim.generators.generator`. Prompts are written for
small instruct models: one instruction, the facts, the question, a strict answer format.
"""

from __future__ import annotations

import random
from typing import Any

from .generators import Generated, generator

_INT_SYSTEM = "You are a careful assistant. Answer with a single integer and nothing else."


@generator(
    "chain-arith",
    description="Chained arithmetic: each hop applies one operation to the previous hop's result.",
    params={"depth": 3, "max_operand": 9},
    param_help={"depth": "number of hops", "max_operand": "largest operand drawn"},
)
def chain_arith(depth: int, max_operand: int) -> Generated:
    if not 1 <= depth <= 64:
        raise ValueError("depth must be within 1..64")
    if max_operand < 2:
        raise ValueError("max_operand must be at least 2")
    hops: list[dict[str, Any]] = [
        {
            "id": "h1",
            "prompt": "Compute {{ start }} + {{ operands[0] }}. Reply with the number only.",
            "parse": "integer",
            "expect": "start + operands[0]",
            "grammar": "integer",
            "max_tokens": 8,
        }
    ]
    for i in range(2, depth + 1):
        prev = f"h{i - 1}"
        hops.append(
            {
                "id": f"h{i}",
                "depends_on": [prev],
                "prompt": "Compute {{ " + prev + " }} {{ ops[" + str(i - 1) + "] }} {{ operands["
                + str(i - 1) + "] }}. Reply with the number only.",
                "parse": "integer",
                "expect": "(" + prev + " + operands[" + str(i - 1) + "]) if ops[" + str(i - 1)
                + "] == '+' else ((" + prev + " - operands[" + str(i - 1) + "]) if ops[" + str(i - 1)
                + "] == '-' else (" + prev + " * operands[" + str(i - 1) + "]))",
                "grammar": "integer",
                "max_tokens": 8,
            }
        )

    def draw(rng: random.Random, world: dict[str, Any]) -> dict[str, Any]:
        ops = ["+"] + [rng.choice(["+", "-", "*"]) for _ in range(depth - 1)]
        operands = [rng.randint(2, max_operand) for _ in range(depth)]
        for i, op in enumerate(ops):
            if op == "*":
                operands[i] = rng.randint(2, 3)
        return {"start": rng.randint(1, max_operand), "ops": ops, "operands": operands}

    spec = {
        "name": f"chain-arith-d{depth}",
        "description": f"{depth}-hop chained arithmetic",
        "system": _INT_SYSTEM,
        "hops": hops,
    }
    return Generated(spec=spec, draw_vars=draw, var_names=["start", "ops", "operands"])
