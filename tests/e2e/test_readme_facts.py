"""The README's front-door facts come from the code: how many families, every catalog model (with
its size and sha256), the ladder's rungs and the rungs the demo builds. Was: 'seven families'
(there are eight), two catalog models shown (there are four)."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
WORDS = {5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten", 11: "eleven", 12: "twelve"}


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_the_number_of_families() -> None:
    from agentsim.scenario import available_generators

    n = len(available_generators())
    assert f"agentsim bundles {WORDS[n]} **families**" in README


def test_every_catalog_model_is_in_the_table() -> None:
    from agentsim.models.catalog import CATALOG

    rows = [line for line in README.splitlines() if line.startswith("| `")]
    pypi = [m for m in CATALOG.values() if m.parts]  # the lab-* models are trained here (docs/models.md)
    for m in pypi:
        row = next((r for r in rows if r.startswith(f"| `{m.name}`")), None)
        assert row is not None, f"README's catalog table lacks {m.name}"
        assert f"{m.bytes:,}" in row and f"`{m.sha256[:12]}…{m.sha256[-6:]}`" in row, row
    words = {4: "four", 5: "five", 6: "six"}
    assert f"all {words[len(pypi)]} catalog models from PyPI ship 4-bit" in README


def test_the_ladder_and_the_demo_rungs() -> None:
    from agentsim.demo import DEMO_RUNGS
    from agentsim.precision import LLAMA_RUNGS

    flat = _flat(README)
    listed = ", ".join(f"`{r}`" + (" (default)" if r == "f16" else "") for r in LLAMA_RUNGS)
    assert f"`PRECISION` is a rung of the ladder: {listed}, or `source`" in flat
    demo = ", ".join(f"`{r}`" for r in DEMO_RUNGS)
    assert f"`make demo` builds only the {WORDS[len(DEMO_RUNGS)]} it runs ({demo})" in flat
    assert re.search(rf"builds all {WORDS[len(LLAMA_RUNGS)]} rungs", flat)
