"""The fidelity figures shown beside accuracy (:func:`agentsim.fidelity.run_figures`) of one fixed
database, held as text: the ``fidelity`` block of ``show --json`` and ``compare --json``, what
``agentsim fidelity --show --json`` prints, the report's ``fidelity`` and ``noise_floor`` keys, the
flat columns of ``to_pandas()``, and the words and cells each reader makes of them (``show``,
``compare``'s table, the report's cells and floor lines, the TUI's compare cells, the demo's table).

``test_show_compare_golden.py`` holds the whole of ``show`` and ``compare`` but its database has no
fidelity pass; this one stores passes (written as :func:`agentsim.fidelity_tables.replace_fidelity`
writes them, with fixed figures): exact, top-k with diverged and unavailable hops, a pass with no
hop compared, and two noise floors (a batched run against the same rung at batch 1). The golden was
written by the code before the figures became typed results; regenerate (only on purpose) with
``AGENTSIM_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from agentsim.cli import main
from agentsim.fidelity_tables import replace_fidelity
from agentsim.launch import execute
from agentsim.store import Store

from .test_analysis_golden import check_golden, golden_text

GOLDEN = Path(__file__).parent / "golden" / "fidelity.json"


def _rows(store: Store, run_id: int, salt: int, *, topk: bool = False) -> list[dict[str, Any]]:
    """One fidelity row per model hop of the run, each figure a fixed function of (hop, salt)."""
    out = []
    for k, h in enumerate(x for x in store.hops(run_id) if x.kind != "tool"):
        j = (h.instance_index * 5 + k * 3 + salt) % 11
        base = {"instance_index": h.instance_index, "hop_id": h.hop_id}
        if topk and j in (0, 4):
            out.append({**base, "status": "diverged"})
        elif topk and j == 1:
            out.append({**base, "status": "unavailable", "reason": "no top-k lists"})
        else:
            out.append({**base, "status": "topk" if topk else "exact", "positions": 3 + j % 4,
                        "kld_mean": 1e-4 * salt * (1 + j), "kld_max": 3e-4 * salt * (1 + j), "kld_max_at": j % 3,
                        "same_top": 1.0 - 0.05 * (j % 3), "delta_p_mean": 1e-3 * (j - 5),
                        "delta_p_rms": 2e-3 * (1 + j % 5), "parted_at": None if j % 3 == 0 else j % 3})
    return out


@pytest.fixture(scope="module")
def fixed_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    path = tmp_path_factory.mktemp("fidelity-golden") / "fidelity.db"
    store = Store(path)
    runs, failures = execute(["chain-linear"], ["noisy,p=0.05,seed=1", "noisy,p=0.3,seed=2"], store=store,
                             instances=6, seed=1, modes=("oracle",), batch_sizes=(1, 4))
    assert not failures
    a1, a4, b1, b4 = (r.id for r in runs)  # f16 at batch 1 and 4, q4_0 at batch 1 and 4
    for r in runs:
        store.update_run(r.id, model="golden-model", precision="f16" if "p=0.05" in r.backend else "q4_0")
    replace_fidelity(store, b1, a1, _rows(store, b1, 7), method="golden", seconds=2.5,
                     layout={"rung_n_seq": 1, "reference_n_seq": 1})
    replace_fidelity(store, b4, a4, _rows(store, b4, 9, topk=True), method="golden", seconds=3.25,
                     layout={"top_k": 20}, note="a server's top-k lists")
    replace_fidelity(store, a4, a1, _rows(store, a4, 1), method="golden", seconds=1.5,
                     layout={"rung_n_seq": 4, "reference_n_seq": 1})
    replace_fidelity(store, b4, b1, _rows(store, b4, 2), method="golden", seconds=1.75,
                     layout={"rung_n_seq": 4, "reference_n_seq": 1})
    # the top rung against a lower one, with no hop compared (a simulation's refusal)
    replace_fidelity(store, a1, b1, [{"instance_index": h.instance_index, "hop_id": h.hop_id, "status": "unavailable",
                                      "reason": "simulation backend"} for h in store.hops(a1) if h.kind != "tool"],
                     method="golden", seconds=0.0, note="a simulation has no token distributions")
    store.close()
    return path, [a1, a4, b1, b4]


def _cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


def _text(renderable: Any) -> str:
    from rich.console import Console

    con = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False, record=True)
    con.print(renderable)
    return con.export_text()


def _figures(path: Path, ids: list[int], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    from agentsim import fidelity
    from agentsim.analysis import compare_runs
    from agentsim.cli.fidelity import fidelity_lines
    from agentsim.render import build_report
    from agentsim.render.common import fidelity_cells, floor_lines
    from agentsim.report import fidelity_table
    from agentsim.tui.compare_screen import fidelity_cells as tui_cells

    db = ["--db", str(path)]
    out: dict[str, Any] = {}
    out["show"] = [json.loads(_cli(capsys, ["show", str(i), "--json", *db]))["fidelity"] for i in ids]
    out["compare"] = [r["fidelity"] for r in json.loads(_cli(capsys, ["compare", *map(str, ids), "--json", *db]))]
    out["fidelity_json"] = json.loads(_cli(capsys, ["fidelity", *map(str, ids), "--show", "--json", *db]))
    out["fidelity_reference_json"] = json.loads(_cli(capsys, ["fidelity", str(ids[3]), "--show", "--reference",
                                                              str(ids[0]), "--json", *db]))
    out["fidelity_text"] = _cli(capsys, ["fidelity", *map(str, ids), "--show", *db]).splitlines()
    report = path.parent / "report.json"
    assert main(["report", *map(str, ids), "-o", str(report), *db]) == 0
    rj = json.loads(report.read_text(encoding="utf-8"))
    out["report_fidelity"], out["report_noise_floor"] = rj["fidelity"], rj["report"]["noise_floor"]
    store = Store(path)
    try:
        figs = {i: fidelity.run_figures(store, i) for i in ids}
        out["flat"] = {str(i): fidelity.flat_figures(f) for i, f in figs.items()}
        out["show_lines"] = {str(i): [list(x) for x in fidelity_lines(f)] for i, f in figs.items()}
        floors = fidelity.measured_floors(figs)
        out["floor_text"] = [fidelity.floor_text(fl) for fl in floors]
        out["floor_of"] = {str(i): list(fidelity.floor_of(f, floors)) for i, f in figs.items()}
        rows = compare_runs(store, ids)
        out["compare_table"] = _text(fidelity_table(rows)).splitlines()
        out["tui_cells"] = [list(tui_cells(r)) for r in rows]
        doc = build_report(store, ids, resamples=200)
        out["report_cells"] = [fidelity_cells(doc, b) for b in doc.runs]
        out["report_floor_lines"] = floor_lines(doc)
        from agentsim.render.plots import fidelity_kld

        assert fidelity_kld(doc) is not None  # the plot is drawn (its SVG is not held)
    finally:
        store.close()
    return out


def test_fidelity_figures_keep_their_json_and_words(fixed_db: tuple[Path, list[int]],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path, ids = fixed_db
    text = golden_text(_figures(path, ids, capsys))
    check_golden(GOLDEN, text, "the fidelity figures' JSON or words changed")
    golden = json.loads(text)
    # the database holds what the golden is about: measured floors, a top-k pass, a pass of another rung
    assert len(golden["report_noise_floor"]) == 2 and golden["show"][3]["fidelity"]["kind"] == "topk"
    assert any("vs r" in c["KLD"] for c in golden["report_cells"])
    assert any("no hop compared" in v for lines in golden["show_lines"].values() for _k, v in lines)
