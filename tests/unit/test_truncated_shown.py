"""A hop cut by the token budget is its own outcome wherever results are read (issue 27): show,
compare (with the legend of its mark), report (terminal, HTML, Markdown), export (CSV, JSON)."""

from __future__ import annotations

import csv
import json

import pytest

from agentsim.backends.base import Completion
from agentsim.launch import execute
from agentsim.scenario import load_scenario
from agentsim.store import Store
from tests.helpers import ScriptedBackend, run_cli, write
from tests.unit.test_engine import CHAIN


@pytest.fixture
def two_runs(tmp_path):
    """Run 1 answers everything; run 2's hop b is cut mid-sentence at the budget."""
    store = Store(tmp_path / "r.db")
    sc = load_scenario(write(tmp_path, CHAIN))
    try:
        ScriptedBackend.SCRIPT = {}
        execute([sc], ["scripted"], store=store, instances=3, seed=0, modes=("free",))
        ScriptedBackend.SCRIPT = {"b": Completion(text="Adding one to it gives 1", finish_reason="length"),
                                  "c": lambda r: r.expected}
        execute([sc], ["scripted"], store=store, instances=3, seed=0, modes=("free",))
    finally:
        ScriptedBackend.SCRIPT = {}
    return tmp_path / "r.db"


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_show_counts_the_cut_hops_and_why_generation_stopped(two_runs):
    out = _flat(run_cli("show", 2, db=two_runs).stdout)
    assert "truncated 3" in out and "length 3" in out and "token budget" in out


def test_compare_marks_the_cut_hops_and_says_what_the_mark_is(two_runs):
    out = run_cli("compare", 1, 2, db=two_runs, env={"COLUMNS": "150"}).stdout
    assert "0/3 ✂3" in out
    assert "✂N: N hops cut by the token budget" in _flat(out)
    # no legend where nothing was cut
    assert "✂" not in run_cli("compare", 1, db=two_runs, env={"COLUMNS": "150"}).stdout


@pytest.mark.parametrize("suffix", ["", ".html", ".md"])
def test_report_names_the_runs_with_cut_answers(two_runs, tmp_path, suffix):
    if suffix:
        out_file = tmp_path / f"report{suffix}"
        run_cli("report", 1, 2, "-o", out_file, db=two_runs)
        text = out_file.read_text()
    else:
        text = run_cli("report", 1, 2, db=two_runs, env={"COLUMNS": "200"}).stdout
    assert "cut answers" in text and "run 2: 3 hops reached the token budget" in _flat(text)
    one = run_cli("report", 1, db=two_runs, env={"COLUMNS": "200"}).stdout
    assert "cut answers" not in one


def test_export_keeps_each_hops_stop_reason_and_error_kind(two_runs, tmp_path):
    run_cli("export", 2, "-o", tmp_path / "x.csv", db=two_runs)
    rows = list(csv.DictReader((tmp_path / "x.csv").open()))
    cut = [r for r in rows if r["hop_id"] == "b"]
    assert cut and all(r["error_kind"] == "truncated" and r["stop_reason"] == "length" for r in cut)
    run_cli("export", 2, "-o", tmp_path / "x.json", db=two_runs)
    data = json.loads((tmp_path / "x.json").read_text())
    hops = [h for run in data["runs"] for h in run["hops"]]
    assert data["runs"][0]["summary"]["error_kinds"]["truncated"] == 3
    assert {(h["hop_id"], h["error_kind"], h["stop_reason"]) for h in hops if h["hop_id"] == "b"} == {
        ("b", "truncated", "length")}
