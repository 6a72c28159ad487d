"""The JSON of the analysis of one fixed database, held byte for byte.

The database is built from the simulation backends (no model), then every timing and energy
column is overwritten with a deterministic function of (run, instance, hop), so the figures
do not depend on this machine's clock. What a run cannot reproduce (the machine, versions,
launch ids, timestamps) is left out. A change of this JSON must be deliberate: regenerate with
``AGENTSIM_UPDATE_GOLDEN=1 pytest tests/unit/test_analysis_golden.py`` and bump
``agentsim.analysis.trap.SCHEMA_VERSION`` when the structure changes.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import agentsim
from agentsim.analysis import evaluate
from agentsim.store import Store

GOLDEN = Path(__file__).parent / "golden" / "evaluate.json"
VOLATILE = {"machine", "agentsim_version", "launch_id", "created_at", "finished_at", "generated_at", "db"}


def _fixed_db(path: Path) -> tuple[Store, list[int]]:
    res = agentsim.simulate("chain-arith", ["noisy,p=0.03,seed=1", "noisy,p=0.15,seed=2", "noisy,p=0.04,seed=3"],
                            params={"depth": 3}, instances=40, seed=5, db=str(path), mode="both")
    ids = [r.id for r in res.runs]
    res.store.close() if hasattr(res.store, "close") else None
    con = sqlite3.connect(path)
    # deterministic costs: a low rung slightly dearer per hop, energy measured on every hop
    con.execute("""UPDATE hop SET
        wall_s = 0.010 + 0.001 * ((run_id * 7 + instance_index * 13 + depth * 3) % 11),
        decode_s = 0.008 + 0.001 * ((run_id * 5 + instance_index * 11 + depth) % 7),
        prefill_s = 0.002,
        completion_tokens = 4 + (instance_index + depth) % 3,
        energy_j = 0.50 + 0.01 * ((run_id * 3 + instance_index * 17 + depth * 5) % 13),
        energy_kind = 'measured', energy_source = 'golden'
        WHERE kind != 'tool'""")
    con.commit()
    con.close()
    store = Store(path)
    precisions = {0: "f16", 1: "q4_0", 2: "q8_0"}
    for r in res.runs:
        k = next(i for i, s in enumerate(["p=0.03", "p=0.15", "p=0.04"]) if s in r.backend)
        store.update_run(r.id, precision=precisions[k], model="golden-model")
    return store, ids


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    if isinstance(obj, float):
        return float(f"{obj:.10g}")
    return obj


def golden_text(obj: Any, *, sort_keys: bool = False) -> str:
    """The text a golden holds: ``obj`` stripped of what a run cannot reproduce, as indented JSON."""
    return json.dumps(_strip(obj), indent=1, sort_keys=sort_keys, allow_nan=False) + "\n"


def check_golden(golden: Path, text: str, changed: str) -> None:
    """``text`` is what ``golden`` holds (``changed``: what the failure says). The file is written
    with ``AGENTSIM_UPDATE_GOLDEN=1``, or when it is missing (and the test fails: review it)."""
    if os.environ.get("AGENTSIM_UPDATE_GOLDEN") == "1" or not golden.exists():
        golden.write_text(text, encoding="utf-8")
        if os.environ.get("AGENTSIM_UPDATE_GOLDEN") != "1":
            pytest.fail(f"golden file {golden.name} was missing: written; review and commit it")
    assert text == golden.read_text(encoding="utf-8"), changed


def test_evaluate_json_of_a_fixed_database_is_unchanged(tmp_path: Path) -> None:
    store, ids = _fixed_db(tmp_path / "golden.db")
    out = evaluate(store, ids, resamples=400, assess_simulated_costs=True)
    check_golden(GOLDEN, golden_text(out, sort_keys=True),
                 "evaluate()'s JSON changed: if on purpose, bump SCHEMA_VERSION where the structure changed and "
                 "regenerate with AGENTSIM_UPDATE_GOLDEN=1")
