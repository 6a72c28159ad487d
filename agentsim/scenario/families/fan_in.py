"""fan-in: several independent branches combined by one hop (add, compare, max)."""

from __future__ import annotations

import random
from typing import Any

from agentsim.scenario.registry import Generated, generator

from .common import FACT_LINES, answer_fields, check_common, draw_filler, system_text

_CHAIN_OWNERS = ("Ana", "Ben", "Cara", "Dan", "Eva", "Finn", "Gus", "Hana")


@generator(
    "fan-in",
    description="Fan-in: several independent counting chains, combined by a final hop "
    "(the sum / who has most / the largest).",
    params={"depth": 2, "width": 2, "combine": "add", "filler": 0, "answer": "plain"},
    param_help={
        "depth": "hops on the longest path: each chain has depth-1 hops, then the combining hop",
        "width": "number of independent chains (2..8)",
        "combine": "add (the total), compare (who has the most) or max (the largest amount)",
        "filler": "neutral sentences in the system prompt (context length)",
        "answer": "plain or json",
    },
)
def fan_in(depth: int, width: int, combine: str, filler: int, answer: str) -> Generated:
    check_common(depth, hi=32, filler=filler, answer=answer)
    if not 2 <= width <= len(_CHAIN_OWNERS):
        raise ValueError(f"width must be within 2..{len(_CHAIN_OWNERS)}")
    if combine not in ("compare", "add", "max"):
        raise ValueError("combine must be compare, add or max")
    owners = list(_CHAIN_OWNERS[:width])
    steps = depth - 1
    _, int_fields = answer_fields(answer, "integer")
    int_suffix = answer_fields(answer, "integer")[0]
    hops: list[dict[str, Any]] = []
    finals: list[str] = []
    for c, owner in enumerate(owners):
        letter = owner[0].lower()
        for k in range(1, steps + 1):
            hid = f"{letter}{k}"
            before = f"starts[{c}]" if k == 1 else f"{letter}{k - 1}"
            amount, op = f"amounts[{c}][{k - 1}]", f"ops[{c}][{k - 1}]"
            hops.append({
                "id": hid,
                "depends_on": [] if k == 1 else [f"{letter}{k - 1}"],
                # "compute a + b" rather than a bare word problem: small models do the former
                # far more reliably (see docs/scenarios.md, calibration)
                "prompt": owner + " has {{ " + before + " }} coins and {{ 'earns' if " + op
                          + " == '+' else 'spends' }} {{ " + amount + " }}: compute {{ " + before
                          + " }} {{ " + op + " }} {{ " + amount + " }}. How many coins does "
                          + owner + " have now? " + int_suffix,
                "expect": f"({before} + {amount}) if {op} == '+' else ({before} - {amount})",
                **int_fields,
            })
        finals.append(f"{letter}{steps}" if steps else f"starts[{c}]")
    parents = [f for f in finals if not f.startswith("starts")]
    facts = " ".join(owner + " has {{ " + f + " }} coins." for owner, f in zip(owners, finals, strict=True))
    if combine == "compare":
        suffix, fields = answer_fields(answer, "choice", owners, what="the name")
        question = "Who has the most coins? " + suffix
        expect = "[" + ", ".join(f"[{f}, '{o}']" for o, f in zip(owners, finals, strict=True)) + "] | max(attribute=0) | last"
    elif combine == "add":
        suffix, fields = int_suffix, int_fields
        question = ("How many coins do they have together? Compute "
                    + " + ".join("{{ " + f + " }}" for f in finals) + ". " + suffix)
        expect = " + ".join(finals)
    else:
        suffix, fields = int_suffix, int_fields
        question = "What is the largest number of coins any of them has? " + suffix
        expect = "max([" + ", ".join(finals) + "])"
    hops.append({"id": "combine", "depends_on": parents, "prompt": facts + " " + question,
                 "expect": expect, **fields})

    def draw(rng: random.Random, world: dict[str, Any]) -> dict[str, Any]:
        for _attempt in range(200):
            starts = [rng.randint(5, 30) for _ in owners]
            amounts: list[list[int]] = []
            ops: list[list[str]] = []
            finals_v: list[int] = []
            for c in range(width):
                value, a_row, o_row = starts[c], [], []
                for _ in range(steps):
                    op = rng.choice("+-") if value > 2 else "+"
                    amt = rng.randint(1, min(9, value - 1)) if op == "-" else rng.randint(1, 9)
                    value = value + amt if op == "+" else value - amt
                    a_row.append(amt)
                    o_row.append(op)
                amounts.append(a_row)
                ops.append(o_row)
                finals_v.append(value)
            # a compare question needs one clear winner
            if combine != "compare" or finals_v.count(max(finals_v)) == 1:
                break
        out: dict[str, Any] = {"starts": starts, "amounts": amounts, "ops": ops}
        if filler:
            out["lines"] = draw_filler(rng, filler)
        return out

    system = "You keep count of coins. Do the arithmetic exactly."
    spec = {
        "name": f"fan-in-w{width}-d{depth}-{combine}",
        "description": f"{width} chains of {steps} hop(s) combined by '{combine}'",
        "system": system_text(system, FACT_LINES) if filler else system,
        "hops": hops,
    }
    names = ["starts", "amounts", "ops"] + (["lines"] if filler else [])
    return Generated(spec=spec, draw_vars=draw, var_names=names)


# --------------------------------------------------------------------------------------------
# 6. an agent workflow: plan -> tool lookup -> compute -> verify -> answer
