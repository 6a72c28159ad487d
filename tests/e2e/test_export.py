"""``agentsim export`` and the Python API's reading side (load_results, to_pandas, repr)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from agentsim.errors import StoreError
from tests.e2e.test_cli import cli, no_traceback


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "x.db"
    cli("run", "chain-linear", "fanin-dag", "-b", "noisy,p=0.3,seed=2", "-n", "4", "--mode", "both", db=path)
    cli("run", "chain-arith", "-p", "depth=1|2", "-b", "oracle", "-n", "3", db=path)
    return path


def test_format_follows_the_extension(db, tmp_path):
    cli("export", "1", "-o", tmp_path / "e1.json", db=db)
    payload = json.loads((tmp_path / "e1.json").read_text())  # JSON, not CSV
    assert payload["format"] == "agentsim-export" and len(payload["runs"]) == 1
    cli("export", "1", "-o", tmp_path / "e1.csv", db=db)
    assert (tmp_path / "e1.csv").read_text().startswith("run_id,")
    cli("export", "1", "--format", "csv", "-o", tmp_path / "forced.json", db=db)
    assert (tmp_path / "forced.json").read_text().startswith("run_id,")
    proc = cli("export", "1", "-o", tmp_path / "e1.parquet", db=db, check=False)
    assert proc.returncode == 2 and "--format" in proc.stderr


def test_dash_writes_to_standard_output(db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = cli("export", "2", "-o", "-", db=db)
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(rows) == 4 * 3 and {r["run_id"] for r in rows} == {"2"}
    assert not (tmp_path / "-").exists()
    proc = cli("export", "2", "--format", "json", "-o", "-", db=db)
    assert json.loads(proc.stdout)["runs"][0]["run"]["id"] == 2


def test_missing_folder_is_a_clear_error(db, tmp_path):
    proc = cli("export", "1", "-o", tmp_path / "no" / "such" / "x.csv", db=db, check=False)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "internal error" not in proc.stderr
    no_traceback(proc)


def test_rows_in_instance_and_topological_order(db, tmp_path):
    cli("export", "3", "-o", tmp_path / "o.csv", db=db)  # fanin-dag, free: errors of several kinds
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    keys = [(int(r["instance_index"]), int(r["topo_index"])) for r in rows]
    assert keys == sorted(keys)
    assert len({r["error_kind"] for r in rows}) > 1  # sorting by error kind would break the order


def test_json_carries_the_run_and_its_instances(db, tmp_path):
    cli("export", "1", "5", "-o", tmp_path / "two.json", db=db)
    payload = json.loads((tmp_path / "two.json").read_text())
    assert [b["run"]["id"] for b in payload["runs"]] == [1, 5]
    b = payload["runs"][1]
    run = b["run"]
    for key in ("backend", "scenario_ref", "params", "precision", "source_precision", "machine", "mode", "seed"):
        assert key in run, key
    assert run["params"]["depth"] == 1 and run["backend"] == "oracle"
    assert len(b["instances"]) == 3
    inst = b["instances"][0]
    for key in ("vars", "expected", "system_prompt", "root_causes", "success"):
        assert key in inst, key
    assert b["summary"]["run_id"] == 5
    assert all(h["run_id"] == 5 for h in b["hops"])


def test_export_a_whole_launch(db, tmp_path):
    runs = json.loads(cli("runs", "--json", db=db).stdout)
    launch = next(r["launch_id"] for r in runs if r["run_id"] == 1)
    same = sorted(r["run_id"] for r in runs if r["launch_id"] == launch)
    assert len(same) == 4
    cli("export", "--launch", launch, "-o", tmp_path / "l.csv", db=db)
    rows = list(csv.DictReader((tmp_path / "l.csv").open()))
    assert sorted({int(r["run_id"]) for r in rows}) == same
    proc = cli("export", "--launch", "nope", "-o", tmp_path / "n.csv", db=db, check=False)
    assert proc.returncode == 2 and "no runs of launch" in proc.stderr


# the Python API


def test_load_results_refuses_a_missing_file(tmp_path):
    import agentsim

    with pytest.raises(StoreError, match="does not exist"):
        agentsim.load_results(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_to_pandas_flattens_params_and_orders_hops(db):
    import agentsim

    res = agentsim.load_results(db, [5, 6])
    frames = res.to_pandas()
    assert list(frames.runs["param_depth"]) == [1, 2]
    assert frames.runs.groupby("param_depth")["accuracy"].mean().to_dict() == {1: 1.0, 2: 1.0}
    assert "param_depth" in frames.hops.columns
    keys = list(zip(frames.hops["run_id"], frames.hops["instance_index"], frames.hops["topo_index"], strict=True))
    assert keys == sorted(keys)
    everything = agentsim.load_results(db).to_pandas().runs
    assert everything["param_depth"].isna().sum() == 4  # the runs without that parameter


def test_results_repr_is_short(db):
    import agentsim

    res = agentsim.load_results(db)
    text = repr(res)
    assert text.startswith("<Results 6 run(s) [1, 2, 3, 4, 5, 6]")
    assert "chain-linear" in text and len(text) < 300
    assert "scenario_ref" not in text and "hops" not in text
    assert str(res) == text
