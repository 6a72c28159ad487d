"""agent-workflow: a shopping agent's plan -> look up -> compute -> verify steps."""

from __future__ import annotations

import random
from typing import Any

from agentsim.scenario.registry import Generated, generator

from .common import FACT_LINES, answer_fields, check_common, draw_filler, system_text

_PRODUCTS = ("apple", "pear", "plum", "fig", "kiwi", "lime", "mango", "peach", "grape", "lemon",
             "melon", "cherry")
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


@generator(
    "agent-workflow",
    description="Agent workflow: plan (which product) -> tool lookup (price, stock) -> compute "
    "(cost, running bill) -> verify (stock) -> answer. A wrong plan or extraction propagates.",
    params={"depth": 1, "catalog": 6, "verify": True, "filler": 0, "answer": "plain"},
    param_help={
        "depth": "items in the customer's order (each adds plan, lookup, cost and bill hops)",
        "verify": "end with the stock check and the conditional answer (false: the bill is the answer)",
        "catalog": "products in the catalogue the lookup tool reads (the rest are distractors)",
        "filler": "neutral sentences in the system prompt (context length)",
        "answer": "plain or json (numeric hops; the plan and verify hops stay one word)",
    },
)
def agent_workflow(depth: int, catalog: int, verify: bool, filler: int, answer: str) -> Generated:
    check_common(depth, hi=len(_ORDINALS), filler=filler, answer=answer)
    if not depth <= catalog <= len(_PRODUCTS):
        raise ValueError(f"catalog must be within depth..{len(_PRODUCTS)}")
    int_suffix, int_fields = answer_fields(answer, "integer")
    plan_suffix, plan_fields = answer_fields(answer, "choice", list(_PRODUCTS), what="the product name")
    yn_suffix, yn_fields = answer_fields(answer, "choice", ["yes", "no"], what="yes or no")
    hops: list[dict[str, Any]] = []
    bill = ""
    for j in range(1, depth + 1):
        plan, look, cost = f"plan{j}", f"look{j}", f"cost{j}"
        hops.append({
            "id": plan,
            "description": f"plan: which product is item {j} of the order",
            "prompt": f"Which product is the {_ORDINALS[j - 1]} item of the order? "
                      + plan_suffix,
            "expect": f"items[{j - 1}]",
            **plan_fields,
        })
        hops.append({
            "id": look, "kind": "tool", "tool": "lookup", "depends_on": [plan],
            "args": {"table": "catalog", "key": plan},
            "description": "tool: the catalogue record (price, stock) of the planned product",
        })
        hops.append({
            "id": cost,
            "depends_on": [plan, look],
            "description": f"compute: the cost of item {j}",
            # "Compute a * b" (not a word problem): the 0.5B default model copied the price
            # 22 times in 30 on "How many coins do they cost?" and gets the product right
            "prompt": "The order asks for {{ qty[" + str(j - 1) + "] }} {{ " + plan + " }} at {{ "
                      + look + ".price }} coins each. Compute {{ qty[" + str(j - 1) + "] }} * {{ "
                      + look + ".price }}. " + int_suffix,
            "expect": f"qty[{j - 1}] * {look}.price",
            **int_fields,
        })
        if j == 1:
            bill = cost
        else:
            new_bill = f"bill{j}"
            hops.append({
                "id": new_bill,
                "depends_on": [bill, cost],
                "description": "compute: the running bill",
                "prompt": "The bill so far is {{ " + bill + " }} coins. The next item costs {{ "
                          + cost + " }} coins. What is the bill now? " + int_suffix,
                "expect": f"{bill} + {cost}",
                **int_fields,
            })
            bill = new_bill
    if not verify:
        return _agent_spec(depth, catalog, verify, filler, hops)
    stock_lines = " ".join(
        "{{ plan" + str(j) + " }}: ordered {{ qty[" + str(j - 1) + "] }}, in stock {{ look" + str(j)
        + ".stock }}." for j in range(1, depth + 1)
    )
    in_stock = " and ".join(f"look{j}.stock >= qty[{j - 1}]" for j in range(1, depth + 1))
    hops.append({
        "id": "verify",
        "depends_on": [h for j in range(1, depth + 1) for h in (f"plan{j}", f"look{j}")],
        "description": "verify: is every item in stock",
        "prompt": "Stock check. " + stock_lines + " Is every item in stock? "
                  + yn_suffix,
        "expect": f"'yes' if ({in_stock}) else 'no'",
        **yn_fields,
    })
    hops.append({
        "id": "answer",
        "depends_on": [bill, "verify"],
        "description": "answer: the amount to charge",
        # this wording: 14/15 right with the 0.5B default model; "If every item is in stock the
        # customer pays the bill, otherwise 0" got 6/30 (it answers the bill whatever the check)
        "prompt": "Stock check passed: {{ verify }}. If yes, charge the bill of {{ " + bill
                  + " }} coins; if no, charge 0. How many coins do you charge? " + int_suffix,
        "expect": f"{bill} if verify == 'yes' else 0",
        **int_fields,
    })
    return _agent_spec(depth, catalog, verify, filler, hops)


def _agent_spec(depth: int, catalog: int, verify: bool, filler: int, hops: list[dict[str, Any]]) -> Generated:
    """The rest of agent-workflow: the instance drawer and the spec."""

    def draw(rng: random.Random, world: dict[str, Any]) -> dict[str, Any]:
        products = rng.sample(_PRODUCTS, catalog)
        items = products[:depth]
        qty = [rng.randint(1, 5) for _ in items]
        cat = {p: {"price": rng.randint(2, 9), "stock": rng.randint(5, 12)} for p in products}
        if rng.random() < 0.5:
            # this order cannot be served: one item is short (about half of the instances)
            j = rng.randrange(depth)
            qty[j] = max(qty[j], 2)
            cat[items[j]]["stock"] = rng.randint(0, qty[j] - 1)
        rng.shuffle(products)
        catalog_sorted = {p: cat[p] for p in products}
        parts = [f"{q} {p}" for q, p in zip(qty, items, strict=True)]
        out: dict[str, Any] = {"items": items, "qty": qty, "catalog": catalog_sorted,
                               "order_text": ", ".join(parts)}
        if filler:
            out["lines"] = draw_filler(rng, filler)
        return out

    system = ("You are a shop assistant working through a customer's order step by step.\n"
              "Customer order: {{ order_text }}.")
    spec = {
        "name": f"agent-workflow-d{depth}" + ("" if verify else "-noverify"),
        "description": (f"plan, look up, compute, verify and answer for an order of {depth} item(s)"
                        if verify else f"plan, look up and compute the bill of an order of {depth} item(s)"),
        "system": system_text(system, FACT_LINES) if filler else system,
        "hops": hops,
    }
    names = ["items", "qty", "catalog", "order_text"] + (["lines"] if filler else [])
    return Generated(spec=spec, draw_vars=draw, var_names=names)


# --------------------------------------------------------------------------------------------
# 7. date arithmetic: weekdays
