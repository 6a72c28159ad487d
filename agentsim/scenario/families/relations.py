"""relation-compose: composing relations between people, with tool hops for the lookups."""

from __future__ import annotations

import random
from typing import Any

from agentsim.scenario.registry import Generated, generator

from .common import FACT_LINES, answer_fields, check_common, draw_filler, system_text

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
    check_common(depth, hi=32, filler=filler, answer=answer)
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
            out["lines"] = draw_filler(rng, filler)
        return out

    system = "You answer questions about an organisation step by step, using the records you are given."
    spec = {
        "name": f"relation-compose-d{depth}",
        "description": f"compose {depth} relations ({', '.join(rels)}) with a record lookup tool",
        "system": system_text(system, FACT_LINES) if filler else system,
        "hops": hops,
    }
    names = ["start", "steps", "records", "question"] + (["lines"] if filler else [])
    return Generated(spec=spec, draw_vars=draw, var_names=names)


# --------------------------------------------------------------------------------------------
# 5. fan-in: independent chains combined by a final hop
