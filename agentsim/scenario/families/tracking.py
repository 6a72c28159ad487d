"""Tracking families: var-track (RULER-style variable chains) and pointer-chase (key -> key)."""

from __future__ import annotations

import random
from typing import Any

from agentsim.scenario.registry import Generated, generator

from .common import FACT_LINES, answer_fields, check_common, draw_filler, mix_in, system_text

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
    check_common(depth, filler=filler, answer=answer)
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
            "lines": mix_in(rng, merged, draw_filler(rng, filler)),
        }

    spec = {
        "name": f"var-track-d{depth}",
        "description": f"track a value through {depth} variable assignments among {distractors} decoy chains",
        "system": system_text("You track the values of variables. The assignments are:", FACT_LINES),
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
    check_common(depth, hi=40, filler=filler, answer=answer)
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
        return {"path": path, "table": table, "lines": mix_in(rng, rows, draw_filler(rng, filler))}

    spec = {
        "name": f"pointer-chase-d{depth}",
        "description": f"follow {depth} keys through a table with {distractors} decoy rows",
        "system": system_text("You read a table of keys and values. Each row is: key -> value.", FACT_LINES),
        "hops": hops,
    }
    return Generated(spec=spec, draw_vars=draw, var_names=["path", "table", "lines"])


# --------------------------------------------------------------------------------------------
# 4. relation composition with tool hops
