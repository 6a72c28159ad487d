"""``agentsim show --json``, ``agentsim compare --json`` (and the summaries in ``export``'s JSON) of
one fixed database, held as text.

Unlike ``test_analysis_golden.py`` (sorted keys), this holds the key order too: the summaries and
compare rows became typed results (:class:`agentsim.analysis.results.RunSummary`,
:class:`~agentsim.analysis.results.CompareRow`), and their JSON must stay what the dicts printed.
The goldens were written by the code before that change. Only what a run cannot reproduce (machine,
versions, launch ids, timestamps) is left out, and floats are rounded to 10 significant digits.
Regenerate (only on purpose) with ``AGENTSIM_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agentsim.cli import main

from .test_analysis_golden import _fixed_db, check_golden, golden_text

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def fixed_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    path = tmp_path_factory.mktemp("golden") / "show.db"
    store, ids = _fixed_db(path)
    store.close() if hasattr(store, "close") else None
    con = sqlite3.connect(path)
    # the tool hops' and first tokens' times too (the evaluate golden leaves them, unused there)
    con.execute("UPDATE hop SET wall_s = 0.0005 + 0.0001 * ((run_id + instance_index + depth) % 5) WHERE kind = 'tool'")
    con.execute("UPDATE hop SET ttft_s = 0.003 + 0.0001 * ((run_id * 3 + instance_index + depth) % 7) "
                "WHERE ttft_s IS NOT NULL")
    con.execute("UPDATE run SET run_energy_j = 1.0 + 0.125 * id, run_energy_source = 'golden', run_energy_note = NULL")
    con.commit()
    con.close()
    return path, ids


def _cli_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    return golden_text(out)


@pytest.mark.parametrize("what", ["show", "compare", "export"])
def test_show_and_compare_json_keep_their_text(fixed_db: tuple[Path, list[int]], what: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path, ids = fixed_db
    if what == "show":
        text = "".join(_cli_json(capsys, ["show", str(i), "--json", "--db", str(path)]) for i in ids)
    elif what == "compare":
        text = _cli_json(capsys, ["compare", *map(str, ids), "--json", "--db", str(path)])
    else:  # export's JSON: each run's summary (the run records and hops hold clock times)
        out = path.parent / "export.json"
        assert main(["export", *map(str, ids), "-o", str(out), "--db", str(path)]) == 0
        blocks = json.loads(out.read_text(encoding="utf-8"))["runs"]
        text = golden_text([b["summary"] for b in blocks])
    check_golden(GOLDEN / f"{what}.json", text, f"agentsim {what} --json changed (key order included)")
