"""``agentsim report`` end to end (in process, through the CLI's main): terminal, -o .html/.md/.json,
--launch / --all / --baseline, and its user errors (exit 2, one message, no traceback)."""

from __future__ import annotations

import json
import re

import pytest

import agentsim
from agentsim.cli import main


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("report-cli") / "runs.db"
    agentsim.simulate("chain-arith", ["noisy,p=0.05,seed=1", "noisy,p=0.25,seed=1"], params={"depth": 3},
                      instances=24, seed=5, db=str(path), mode="free")
    return path


def test_terminal_report_prints_the_verdicts(db, capsys):
    assert main(["report", "--all", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    flat = " ".join(out.split())
    assert "run 2 noisy,p=0.25,seed=1 [free] vs run 1 noisy,p=0.05,seed=1 [free]:" in flat
    assert any(v in flat for v in ("accuracy trap", "accuracy loss", "inconclusive", "no trap"))
    assert "energy kinds" in out and "estimated" in out


def test_output_files(db, tmp_path, capsys):
    html = tmp_path / "r.html"
    assert main(["report", "1", "2", "--db", str(db), "-o", str(html)]) == 0
    assert html.read_text().count('<svg id="plot-') >= 5
    assert "report written" in capsys.readouterr().out
    md = tmp_path / "r.md"
    assert main(["report", "--launch", _launch(db), "--db", str(db), "-o", str(md)]) == 0
    assert "## Verdicts" in md.read_text() and list(tmp_path.glob("r-*.svg"))
    js = tmp_path / "r.json"
    assert main(["report", "1", "2", "--baseline", "2", "--db", str(db), "-o", str(js)]) == 0
    doc = json.loads(js.read_text())
    assert doc["report"]["baseline"] == "2"
    assert all(v["baseline_run_id"] == 2 for v in doc["verdicts"])


def test_no_ids_reports_every_run(db, capsys):
    # the obvious default: a report of everything in the database, the same as --all
    assert main(["report", "--db", str(db)]) == 0
    bare = capsys.readouterr().out
    assert main(["report", "--all", "--db", str(db)]) == 0
    every = capsys.readouterr().out
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+\-Z:0-9]*")  # when each report was made
    assert stamp.sub("T", bare) == stamp.sub("T", every)
    assert "run 2 noisy,p=0.25,seed=1 [free] vs run 1" in " ".join(bare.split())


def _launch(db) -> str:
    from agentsim.store import Store

    return Store(db, readonly=True).get_run(1).launch_id[:6]


@pytest.mark.parametrize("argv, message", [
    # no run ids is not an error: it reports every run (tests/e2e/test_report.py::test_no_ids_reports_every_run)
    (["report", "1", "--all"], "one of them"),
    (["report", "99"], "no run 99"),
    (["report", "1", "-o", "r.txt"], "report format"),
    (["report", "1", "2", "--baseline", "q4_0"], "no compared run has precision"),
    (["report", "1", "--baseline", "fp9"], "neither a run id nor a precision"),
])
def test_user_errors_exit_2(db, capsys, argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
