"""Bundled scenario families: seeded generators with an exact expected answer for every hop.

Each family registers itself with :func:`agentsim.generators.generator` and returns a scenario as
plain data (the YAML shape) plus a ``draw`` function that draws one instance's variables from a
seeded ``random.Random``. Everything an answer depends on is drawn there, so the same seed and
parameters always give the same instance, and every ``expect`` is an exact expression over the
instance's variables and the hop's parents (re-evaluated on the inputs a hop actually received,
which is how the engine tells a hop's own errors from inherited ones).

Prompts are written for small instruct models (0.5B-class): one instruction, the facts, the
question, a strict answer format, and a grammar preset the ``llama`` backend enforces. Facts that
all hops of an instance share (tables, assignments, the order, filler) go in the ``system``
template, so a backend with a prompt cache reuses that prefix from hop to hop.

Common knobs (where they make sense):

``depth``        hops on the workflow's critical path (the family's unit of "steps")
``distractors``  irrelevant facts of the same kind (extra table rows, decoy chains, fields)
``filler``       irrelevant neutral sentences added to the shared context (context length)
``answer``       ``plain`` (a bare number / word) or ``json`` (``{"answer": ...}``)
"""

from __future__ import annotations

import random
from typing import Any

from .generators import Generated, generator

__all__ = ["FILLER_SENTENCES", "answer_fields"]

# --------------------------------------------------------------------------------------------
# shared pieces

#: Neutral sentences (no numbers, no names, no keys) used to lengthen the context, in the spirit
#: of RULER's haystack. They never contain anything a question asks for.
FILLER_SENTENCES = (
    "The grass is green.",
    "The sky is blue.",
    "The sun is yellow.",
    "Here we go.",
    "There and back again.",
    "The wind moves the trees.",
    "Rain falls in the autumn.",
    "The river runs to the sea.",
    "Birds sing in the morning.",
    "The road is long and quiet.",
    "Clouds drift over the hills.",
    "The lamp is on the table.",
    "A cat sleeps by the door.",
    "The bread is warm.",
    "Snow covers the mountain.",
    "The bell rings at noon.",
    "Leaves turn brown in the fall.",
    "The boat rocks on the waves.",
    "Stars shine at night.",
    "The garden smells of roses.",
    "A train passes in the distance.",
    "The window faces the street.",
    "Tea is served in the afternoon.",
    "The old bridge is made of stone.",
)

_ANSWER_FORMATS = ("plain", "json")


def _check_common(depth: int, *, lo: int = 1, hi: int = 64, filler: int = 0, answer: str = "plain") -> None:
    if not lo <= depth <= hi:
        raise ValueError(f"depth must be within {lo}..{hi}")
    if not 0 <= filler <= 2000:
        raise ValueError("filler must be within 0..2000 sentences")
    if answer not in _ANSWER_FORMATS:
        raise ValueError(f"answer must be one of {', '.join(_ANSWER_FORMATS)}, got {answer!r}")


def _filler(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(FILLER_SENTENCES) for _ in range(n)]


def _mix(rng: random.Random, facts: list[str], filler: list[str]) -> list[str]:
    """Facts in their order with filler sentences scattered between them (seeded)."""
    out = list(facts)
    for sentence in filler:
        out.insert(rng.randint(0, len(out)), sentence)
    return out


def answer_fields(
    answer: str, kind: str, options: list[str] | None = None, what: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The answer-format instruction and the hop fields (parse, check, grammar, max_tokens).

    ``kind`` is ``integer`` (a whole number), ``word`` (one word or name, compared
    case-insensitively) or ``choice`` (one of ``options``). ``answer`` is ``plain`` or ``json``.
    ``what`` names the answer in the instruction ("the name", "yes or no").
    """
    what = what or ("the number" if kind == "integer" else "one word")
    slot = what.removeprefix("the ").removeprefix("one ")
    if answer == "json":
        if kind == "integer":
            value_rule = '"-"? [0-9]+'
            example = '{"answer": <number>}'
            check: dict[str, Any] = {"type": "numeric", "tol": 1e-9}
        else:
            if kind == "choice" and options:
                value_rule = '"\\"" (' + " | ".join(f'"{o}"' for o in options) + ') "\\""'
            else:
                value_rule = '"\\"" [A-Za-z] [A-Za-z_-]* "\\""'
            example = '{"answer": "<' + slot + '>"}'
            check = {"type": "normalized"}
        grammar = 'root ::= "{\\"answer\\": " ' + value_rule + ' "}"'
        return (
            f"Reply in JSON only: {example}",
            {"parse": {"type": "json", "field": "answer"}, "check": check,
             "grammar": grammar, "max_tokens": 24},
        )
    instruction = f"Reply with {what} only."
    if kind == "integer":
        return instruction, {"parse": "integer", "grammar": "integer", "max_tokens": 8}
    if kind == "choice":
        assert options
        return instruction, {"parse": {"type": "choice", "options": list(options)},
                             "grammar": "choice:" + "|".join(options), "max_tokens": 8}
    return instruction, {"parse": "text", "grammar": "word", "max_tokens": 8}


def _system(instruction: str, body: str | None = None) -> str:
    return instruction if body is None else instruction + "\n" + body


_FACT_LINES = "{% for line in lines %}{{ line }}\n{% endfor %}"

# --------------------------------------------------------------------------------------------
# 1. chained arithmetic

_INT_SYSTEM = "You are a careful assistant. Answer with a single integer and nothing else."


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
    _check_common(depth, filler=filler, answer=answer)
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
            out["lines"] = _filler(rng, filler)
        return out

    system = _INT_SYSTEM if answer == "plain" else "You are a careful assistant. Do the arithmetic exactly."
    if filler:
        system = _system(system, _FACT_LINES)
    spec = {
        "name": f"chain-arith-d{depth}",
        "description": f"{depth}-hop chained arithmetic",
        "system": system,
        "hops": hops,
    }
    names = ["start", "ops", "operands"] + (["lines"] if filler else [])
    return Generated(spec=spec, draw_vars=draw, var_names=names)


# --------------------------------------------------------------------------------------------
# 2. variable tracking (RULER-style)

_SYLLABLES = ("ba", "ko", "mi", "du", "le", "ra", "po", "ti", "ne", "su", "fa", "go", "vi", "ze", "lu", "ha")


def _var_names(rng: random.Random, n: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        name = (rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES)).upper()
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


@generator(
    "var-track",
    description="Variable tracking: VAR A = 57, VAR B = A, ... each hop finds the value of the next variable.",
    params={"depth": 3, "distractors": 2, "max_offset": 0, "filler": 0, "answer": "plain"},
    param_help={
        "depth": "length of the assignment chain (one hop per variable)",
        "distractors": "decoy assignment chains of the same length in the context",
        "max_offset": "0: pure copies (B = A); N > 0: B = A + c with c in 1..N",
        "filler": "neutral sentences scattered among the assignments (context length)",
        "answer": "plain (a bare integer) or json",
    },
)
def var_track(depth: int, distractors: int, max_offset: int, filler: int, answer: str) -> Generated:
    _check_common(depth, filler=filler, answer=answer)
    if not 0 <= distractors <= 50:
        raise ValueError("distractors must be within 0..50")
    if not 0 <= max_offset <= 99:
        raise ValueError("max_offset must be within 0..99")
    suffix, fields = answer_fields(answer, "integer")
    hops: list[dict[str, Any]] = [
        {"id": "v1", "prompt": "What value does {{ names[0] }} hold? " + suffix,
         "expect": "values[0]", **fields}
    ]
    for i in range(2, depth + 1):
        prev = f"v{i - 1}"
        hops.append({
            "id": f"v{i}",
            "depends_on": [prev],
            "prompt": "{{ names[" + str(i - 2) + "] }} holds {{ " + prev + " }}. "
                      "What value does {{ names[" + str(i - 1) + "] }} hold? " + suffix,
            "expect": f"{prev} + offsets[{i - 1}]",
            **fields,
        })

    def draw(rng: random.Random, world: dict[str, Any]) -> dict[str, Any]:
        chains = 1 + distractors
        names = _var_names(rng, chains * depth)
        starts = rng.sample(range(10, 100), chains)
        lines: list[list[str]] = []
        main_offsets: list[int] = [0]
        for c in range(chains):
            chain = names[c * depth:(c + 1) * depth]
            chain_lines = [f"VAR {chain[0]} = {starts[c]}"]
            for k in range(1, depth):
                off = rng.randint(1, max_offset) if max_offset else 0
                if c == 0:
                    main_offsets.append(off)
                chain_lines.append(f"VAR {chain[k]} = {chain[k - 1]}" + (f" + {off}" if off else ""))
            lines.append(chain_lines)
        # interleave the chains, keeping each chain's own order (an assignment follows its source)
        merged: list[str] = []
        cursors = [0] * chains
        while any(cursors[c] < depth for c in range(chains)):
            c = rng.choice([c for c in range(chains) if cursors[c] < depth])
            merged.append(lines[c][cursors[c]])
            cursors[c] += 1
        values = [starts[0]]
        for k in range(1, depth):
            values.append(values[-1] + main_offsets[k])
        return {
            "names": names[:depth],
            "values": values,
            "offsets": main_offsets,
            "lines": _mix(rng, merged, _filler(rng, filler)),
        }

    spec = {
        "name": f"var-track-d{depth}",
        "description": f"track a value through {depth} variable assignments among {distractors} decoy chains",
        "system": _system("You track the values of variables. The assignments are:", _FACT_LINES),
        "hops": hops,
    }
    return Generated(spec=spec, draw_vars=draw, var_names=["names", "values", "offsets", "lines"])


# --------------------------------------------------------------------------------------------
# 3. pointer chasing (key -> value hops through a table)

_WORDS = (
    "apple", "river", "stone", "cloud", "tiger", "piano", "candle", "forest", "mirror", "rocket",
    "garden", "pencil", "silver", "window", "dragon", "anchor", "violin", "marble", "falcon", "basket",
    "castle", "copper", "desert", "feather", "harbor", "island", "jacket", "kettle", "ladder", "meadow",
    "needle", "orange", "parrot", "quartz", "saddle", "temple", "velvet", "walnut", "yellow", "zebra",
    "bridge", "cotton", "donkey", "engine", "flower", "ginger", "hammer", "insect", "jungle", "lemon",
    "magnet", "nickel", "oyster", "pepper", "rabbit", "spider", "turtle", "valley", "wizard", "button",
)


@generator(
    "pointer-chase",
    description="Pointer chasing: follow keys through a key -> value table, one lookup per hop.",
    params={"depth": 3, "distractors": 6, "filler": 0, "answer": "plain"},
    param_help={
        "depth": "number of lookups (hops)",
        "distractors": "table rows off the path",
        "filler": "neutral sentences scattered among the rows (context length)",
        "answer": "plain (one word) or json",
    },
)
def pointer_chase(depth: int, distractors: int, filler: int, answer: str) -> Generated:
    _check_common(depth, hi=40, filler=filler, answer=answer)
    if not 0 <= distractors <= len(_WORDS) - depth - 1:
        raise ValueError(f"distractors must be within 0..{len(_WORDS) - depth - 1}")
    suffix, fields = answer_fields(answer, "word", what="the value")
    hops: list[dict[str, Any]] = [
        {"id": "p1", "prompt": "What is the value of key {{ path[0] }}? " + suffix,
         "expect": "table[path[0]]", **fields}
    ]
    for i in range(2, depth + 1):
        prev = f"p{i - 1}"
        hops.append({
            "id": f"p{i}",
            "depends_on": [prev],
            "prompt": "What is the value of key {{ " + prev + " }}? " + suffix,
            "expect": f"table[{prev} | lower]",
            **fields,
        })

    def draw(rng: random.Random, world: dict[str, Any]) -> dict[str, Any]:
        words = rng.sample(_WORDS, depth + 1 + distractors)
        path, others = words[: depth + 1], words[depth + 1 :]
        table = {path[i]: path[i + 1] for i in range(depth)}
        for w in others:
            # decoys point anywhere except into themselves; keys stay unique
            table[w] = rng.choice([x for x in words if x != w])
        rows = [f"{k} -> {v}" for k, v in table.items()]
        rng.shuffle(rows)
        return {"path": path, "table": table, "lines": _mix(rng, rows, _filler(rng, filler))}

    spec = {
        "name": f"pointer-chase-d{depth}",
        "description": f"follow {depth} keys through a table with {distractors} decoy rows",
        "system": _system("You read a table of keys and values. Each row is: key -> value.", _FACT_LINES),
        "hops": hops,
    }
    return Generated(spec=spec, draw_vars=draw, var_names=["path", "table", "lines"])


# --------------------------------------------------------------------------------------------
# 4. relation composition with tool hops

_PEOPLE = (
    "Ana", "Ben", "Cara", "Dan", "Eva", "Finn", "Gus", "Hana", "Ivo", "Jan", "Kim", "Lea", "Max",
    "Nia", "Omar", "Pia", "Raj", "Sara", "Tom", "Uma", "Vic", "Wes", "Yara", "Zoe",
)
_RELATIONS = ("manager", "mentor", "buddy", "coach", "deputy", "sponsor")


def _phrase(relations: list[str], start: str) -> str:
    return "the " + " of the ".join(reversed(relations)) + f" of {start}"


@generator(
    "relation-compose",
    description="Relation composition with tool hops: who is the mentor of the manager of Ana? "
    "A tool looks up each person's record; the model extracts the next person.",
    params={"depth": 2, "people": 10, "relations": "manager,mentor", "distractors": 1,
            "filler": 0, "answer": "plain"},
    param_help={
        "depth": "relations composed (one tool lookup + one model hop each)",
        "people": "people in the org chart",
        "relations": "relations the question draws from (comma-separated)",
        "distractors": "extra person-valued fields in every record",
        "filler": "neutral sentences in the system prompt (context length)",
        "answer": "plain (a name) or json",
    },
)
def relation_compose(depth: int, people: int, relations: str, distractors: int, filler: int,
                     answer: str) -> Generated:
    _check_common(depth, hi=32, filler=filler, answer=answer)
    rels = [r.strip() for r in relations.split(",") if r.strip()]
    if not rels or len(set(rels)) != len(rels) or any(not r.isidentifier() for r in rels):
        raise ValueError("relations must be distinct words, comma-separated (e.g. manager,mentor)")
    decoys = [r for r in _RELATIONS if r not in rels]
    if not 0 <= distractors <= len(decoys):
        raise ValueError(f"distractors must be within 0..{len(decoys)}")
    if not 3 <= people <= len(_PEOPLE):
        raise ValueError(f"people must be within 3..{len(_PEOPLE)}")
    suffix, fields = answer_fields(answer, "word", what="the name")
    hops: list[dict[str, Any]] = [
        {"id": "rec0", "kind": "tool", "tool": "lookup", "args": {"table": "records", "key": "start"},
         "description": "look up the record of the person the question starts from"}
    ]
    record_text = "{% for field, who in REC.items() %}{{ field }}: {{ who }}{% if not loop.last %}, {% endif %}{% endfor %}"
    for i in range(1, depth + 1):
        rec = f"rec{i - 1}"
        subject = "start" if i == 1 else f"a{i - 1}"
        hops.append({
            "id": f"a{i}",
            "depends_on": [rec] if i == 1 else [rec, subject],
            "description": f"step {i}: extract the next person from the record",
            "prompt": "Question: who is {{ question }}?\n"
                      "Record of {{ " + subject + " }}: " + record_text.replace("REC", rec) + ".\n"
                      "Step " + str(i) + ": who is the {{ steps[" + str(i - 1) + "] }} of {{ "
                      + subject + " }}? " + suffix,
            "expect": f"{rec}[steps[{i - 1}]]",
            **fields,
        })
        if i < depth:
            hops.append({
                "id": f"rec{i}", "kind": "tool", "tool": "lookup", "depends_on": [f"a{i}"],
                "args": {"table": "records", "key": f"a{i}"},
                "description": f"look up the record of the person found at step {i}",
            })
    fields_all = rels + decoys[:distractors]

    def draw(rng: random.Random, world: dict[str, Any]) -> dict[str, Any]:
        crew = rng.sample(_PEOPLE, people)
        records: dict[str, dict[str, str]] = {}
        for person in crew:
            order = list(fields_all)
            rng.shuffle(order)
            records[person] = {f: rng.choice([p for p in crew if p != person]) for f in order}
        steps = [rng.choice(rels) for _ in range(depth)]
        start = rng.choice(crew)
        out: dict[str, Any] = {"start": start, "steps": steps, "records": records,
                               "question": _phrase(steps, start)}
        if filler:
            out["lines"] = _filler(rng, filler)
        return out

    system = "You answer questions about an organisation step by step, using the records you are given."
    spec = {
        "name": f"relation-compose-d{depth}",
        "description": f"compose {depth} relations ({', '.join(rels)}) with a record lookup tool",
        "system": _system(system, _FACT_LINES) if filler else system,
        "hops": hops,
    }
    names = ["start", "steps", "records", "question"] + (["lines"] if filler else [])
    return Generated(spec=spec, draw_vars=draw, var_names=names)


# --------------------------------------------------------------------------------------------
# 5. fan-in: independent chains combined by a final hop

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
    _check_common(depth, hi=32, filler=filler, answer=answer)
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
            out["lines"] = _filler(rng, filler)
        return out

    system = "You keep count of coins. Do the arithmetic exactly."
    spec = {
        "name": f"fan-in-w{width}-d{depth}-{combine}",
        "description": f"{width} chains of {steps} hop(s) combined by '{combine}'",
        "system": _system(system, _FACT_LINES) if filler else system,
        "hops": hops,
    }
    names = ["starts", "amounts", "ops"] + (["lines"] if filler else [])
    return Generated(spec=spec, draw_vars=draw, var_names=names)


# --------------------------------------------------------------------------------------------
# 6. an agent workflow: plan -> tool lookup -> compute -> verify -> answer

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
    _check_common(depth, hi=len(_ORDINALS), filler=filler, answer=answer)
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
            out["lines"] = _filler(rng, filler)
        return out

    system = ("You are a shop assistant working through a customer's order step by step.\n"
              "Customer order: {{ order_text }}.")
    spec = {
        "name": f"agent-workflow-d{depth}" + ("" if verify else "-noverify"),
        "description": (f"plan, look up, compute, verify and answer for an order of {depth} item(s)"
                        if verify else f"plan, look up and compute the bill of an order of {depth} item(s)"),
        "system": _system(system, _FACT_LINES) if filler else system,
        "hops": hops,
    }
    names = ["items", "qty", "catalog", "order_text"] + (["lines"] if filler else [])
    return Generated(spec=spec, draw_vars=draw, var_names=names)


# --------------------------------------------------------------------------------------------
# 7. date arithmetic: weekdays

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
    _check_common(depth, filler=filler, answer=answer)
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
            out["lines"] = _filler(rng, filler)
        return out

    system = "You work out days of the week. The week is Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday."
    spec = {
        "name": f"weekday-arith-d{depth}",
        "description": f"{depth} weekday shifts in a row",
        "system": _system(system, _FACT_LINES) if filler else system,
        "world": {"days": list(_DAYS), "daynum": {d: i for i, d in enumerate(_DAYS)}},
        "hops": hops,
    }
    names = ["start", "shifts"] + (["lines"] if filler else [])
    return Generated(spec=spec, draw_vars=draw, var_names=names)


# --------------------------------------------------------------------------------------------
# your own generators
#
# The registry imports this module on first use, so this is also where generators that live
# outside agentsim are found: modules named in $AGENTSIM_GENERATORS (comma-separated, e.g.
# "myteam.families") and entry points of the group "agentsim.generators" (each naming a module
# to import). Importing such a module runs its @generator decorators; nothing else is needed.

ENV_VAR = "AGENTSIM_GENERATORS"
ENTRY_POINT_GROUP = "agentsim.generators"


def load_user_generators() -> list[str]:
    """Import the generator modules named by $AGENTSIM_GENERATORS and by entry points.

    Returns the module names imported. A module that fails to import is a
    :class:`~agentsim.errors.ScenarioError` naming it (not a traceback).
    """
    import importlib
    import os
    from importlib.metadata import entry_points

    from .errors import ScenarioError

    names = [m.strip() for m in os.environ.get(ENV_VAR, "").split(",") if m.strip()]
    origins = {m: f"${ENV_VAR}" for m in names}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module = ep.value.partition(":")[0]
        names.append(module)
        origins[module] = f"entry point {ep.name!r} ({ENTRY_POINT_GROUP})"
    done: list[str] = []
    for module in dict.fromkeys(names):
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any failure in user code is reported, not raised raw
            raise ScenarioError(
                f"cannot import generator module {module!r} named by {origins[module]}: "
                f"{type(exc).__name__}: {exc}",
                hint=f"check the module is importable (python -c 'import {module}') or unset {ENV_VAR}",
            ) from None
        done.append(module)
    return done


load_user_generators()
