"""lab-arith: the lab models' task as a scenario, chained 3-digit arithmetic in compact form.

Each hop is ``A<op>B=`` (three digits each: ``412+075=``) with ``A`` the previous hop's answer
(the first hop's ``A`` is drawn); the answer is three digits too (``487``), read as an integer:
the ``chain-arith`` family's task with the words stripped, made harder (3-digit operands, ``+ -
*`` mixed) and drawn from exactly the distribution the lab models were trained on
(:mod:`agentsim.lab.task`). There is no system text and no grammar: a lab model sees the hop
text alone (its chat template passes the user message through), and llama.cpp and torch see the
same tokens. Larger models answer these prompts too, but they were written for the lab family.
"""

from __future__ import annotations

import random
from typing import Any

from agentsim.lab.task import apply, draw_start, draw_step
from agentsim.scenario.registry import Generated, generator

from .common import check_common


@generator(
    "lab-arith",
    description="Compact chained 3-digit arithmetic (A+B=, A-B=, A*d=): the lab models' task.",
    params={"depth": 4},
    param_help={"depth": "number of hops (one operation each on the previous answer)"},
)
def lab_arith(depth: int) -> Generated:
    check_common(depth, hi=32)
    hops: list[dict[str, Any]] = [
        {"id": "h1", "prompt": "{{ '%03d' | format(start) }}{{ ops[0] }}{{ '%03d' | format(operands[0]) }}=",
         "expect": "(start + operands[0]) if ops[0] == '+' else ((start - operands[0]) if ops[0] == '-' "
                   "else (start * operands[0]))",
         "parse": "integer", "max_tokens": 6}
    ]
    for i in range(2, depth + 1):
        prev, k = f"h{i - 1}", str(i - 1)
        hops.append({
            "id": f"h{i}",
            "depends_on": [prev],
            "prompt": "{{ '%03d' | format(" + prev + ") }}{{ ops[" + k + "] }}{{ '%03d' | format(operands[" + k + "]) }}=",
            "expect": f"({prev} + operands[{k}]) if ops[{k}] == '+' else (({prev} - operands[{k}]) "
                      f"if ops[{k}] == '-' else ({prev} * operands[{k}]))",
            "parse": "integer",
            "max_tokens": 6,
        })

    def draw(rng: random.Random, world: dict[str, Any]) -> dict[str, Any]:
        start = value = draw_start(rng)
        ops: list[str] = []
        operands: list[int] = []
        for _ in range(depth):
            op, b = draw_step(rng, value)
            ops.append(op)
            operands.append(b)
            value = apply(value, op, b)
        return {"start": start, "ops": ops, "operands": operands}

    spec = {"name": f"lab-arith-d{depth}", "description": f"{depth}-hop compact 3-digit arithmetic", "hops": hops}
    return Generated(spec=spec, draw_vars=draw, var_names=["start", "ops", "operands"])
