"""The README's reading of its demo table says what the table shows: the test re-derives every
figure and every faster/slower and fewer-tasks claim of that paragraph from the table itself."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
NAMES = {"q8_0": "Q8_0", "q4_k_m": "Q4_K_M", "q4_0": "Q4_0", "mxfp4": "MXFP4", "nvfp4": "NVFP4"}


def _table_and_reading():
    text = README.read_text()
    start = text.index("pooled over chain-linear, fanin-dag")
    rows: dict[tuple[str, str], dict[str, str]] = {}
    prec = None
    for line in text[start:].splitlines():
        if line.startswith("└"):
            break
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip("│").split("│")]
        prec = cells[0].rstrip("*") or prec
        rows[(prec, cells[1])] = dict(zip(["acc", "task", "local", "prop", "parse", "toks", "shop", "j"],
                                          cells[2:], strict=True))
    reading = text[text.index("Reading it (free mode):"):]
    reading = " ".join(reading[: reading.index("\n\n")].split())
    return rows, reading


def _join(items):
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _pct(cell):
    return float(cell.rstrip("%"))


def test_reading_matches_the_demo_table():
    rows, reading = _table_and_reading()
    free = {p: r for (p, m), r in rows.items() if m == "free"}
    base = free.pop("f16")
    rungs = list(free)
    assert rungs == ["q8_0", "q4_k_m", "q4_0", "mxfp4"]

    # speed: the rungs faster and slower than f16 per hop, with their ratios, in table order
    ratio = {p: float(r["shop"].split()[1].rstrip("x")) for p, r in free.items()}
    faster = [p for p in rungs if ratio[p] < 1]
    slower = [p for p in rungs if ratio[p] > 1]
    level = [p for p in rungs if ratio[p] == 1]
    claim = (f"{_join([NAMES[p] for p in faster])} are faster than f16 here "
             f"({_join([f'{ratio[p]:.2f}x' for p in faster])})")
    for group, word in ((slower, "slower"), (level, "level")):
        if group:
            claim += f" and {_join([NAMES[p] for p in group])} {word} ({_join([f'{ratio[p]:.2f}x' for p in group])})"
    assert claim in reading, claim

    # accuracy: the rungs that keep f16's (within 5 points) and those that lose more
    acc0 = _pct(base["acc"])
    keep = [p for p in rungs if abs(_pct(free[p]["acc"]) - acc0) <= 5]
    lose = [p for p in rungs if acc0 - _pct(free[p]["acc"]) > 5]
    assert f"{_join([NAMES[p] for p in keep])} stay within 5 points of the f16 rung's accuracy" in reading
    assert (f"({_join([free[p]['acc'] for p in keep])} of hops against {base['acc']})") in reading
    assert f"while {_join([NAMES[p] for p in lose])} (emulated) lose" in reading
    drops = [f"{acc0 - _pct(free[p]['acc']):.1f}" for p in lose]
    assert f"lose {_join(drops)} points" in reading
    assert f"({_join([free[p]['task'] for p in lose])} against {base['task']})" in reading

    # propagation named for MXFP4
    assert f"({free['mxfp4']['prop']} hops wrong only because a parent was)" in reading

    # energy per correct task: every figure in order; which rungs cost more and which less than
    # f16 per correct task; the reasons given for "more" hold (fewer tasks, or slower per hop)
    joules = {p: float(r["j"].split()[0]) for p, r in free.items()}
    j0 = float(base["j"].split()[0])
    assert f"from {j0:.1f} J to {_join([f'{joules[p]:.1f}' for p in rungs])} J" in reading
    higher = [p for p in rungs if joules[p] > j0]
    lower = [p for p in rungs if joules[p] <= j0]
    if not lower:
        assert "rises at every lower rung" in reading
    else:
        assert "rises at every lower rung" not in reading
        claim = f"{_join([NAMES[p] for p in higher])} cost more per correct task, {_join([NAMES[p] for p in lower])} less"
        assert claim in reading, claim
    fewer = [p for p in rungs if _pct(free[p]["task"]) < _pct(base["task"])]
    assert f"{_join([NAMES[p] for p in fewer])} finish fewer tasks" in reading
    longer = [p for p in higher if p not in fewer]  # costs more without failing more: slower, or more CPU
    slow = [p for p in longer if ratio[p] > 1]
    if slow:
        assert f"{_join([NAMES[p] for p in slow])} takes longer per hop" in reading
    if [p for p in longer if ratio[p] <= 1]:  # the estimate comes from CPU time, the s/hop column from the clock
        assert "uses more CPU time per hop" in reading
    assert "estimated" in reading and all(r["j"].endswith("est.") for r in rows.values())


def test_reading_sees_no_claim_the_table_contradicts():
    """The sentence that used to be there ("the 4-bit rungs are faster per hop") is false for
    Q4_K_M in this table; no sentence may call all 4-bit rungs faster while one is slower."""
    rows, reading = _table_and_reading()
    q4 = [p for (p, m) in rows if m == "free" and p.startswith("q4")]
    slower = [p for p in q4 if float(rows[(p, "free")]["shop"].split()[1].rstrip("x")) > 1]
    if slower:
        assert "4-bit rungs are faster" not in reading
