"""End-to-end: the installed ``agentsim`` command on the bundled scenarios."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AGENTSIM = [sys.executable, "-m", "agentsim.cli"]


def cli(*args, db=None, check=True, env=None):
    cmd = AGENTSIM + [str(a) for a in args]
    if db is not None:
        cmd += ["--db", str(db)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def no_traceback(proc):
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    db = tmp_path_factory.mktemp("cli") / "runs.db"
    proc = cli("run", "chain-linear", "fanin-dag", "-b", "oracle", "-b", "noisy,p=0.3,seed=1",
               "-n", "25", "--seed", "4", "--mode", "both", db=db)
    return db, proc


def test_run_prints_run_ids(populated):
    _, proc = populated
    lines = [line for line in proc.stdout.splitlines() if line.startswith("run ")]
    assert len(lines) == 8
    assert all("complete" in line for line in lines)


def test_oracle_is_perfect_and_noisy_separates_local_from_propagated(populated):
    db, _ = populated
    runs = json.loads(cli("runs", "--json", db=db).stdout)
    assert len(runs) == 8
    for r in runs:
        assert {"run_id", "scenario", "backend", "status", "machine"} <= set(r)
        assert r["status"] == "complete"
        assert r["machine"]["cpu_count"] >= 1
        show = json.loads(cli("show", r["run_id"], "--json", db=db).stdout)
        for key in ("run_id", "scenario", "backend", "precision", "status", "instances", "hops_expected",
                    "hops_recorded", "accuracy", "task_success", "error_kinds", "prompt_tokens",
                    "completion_tokens", "prefill_s", "decode_s", "wall_s", "energy", "machine"):
            assert key in show, key
        assert show["hops_recorded"] == show["hops_expected"] == 25 * (3 if r["scenario"] == "chain-linear" else 4)
        assert set(show["energy"]) >= {"joules", "kind", "source"}
        if show["energy"]["kind"] == "unavailable":
            assert show["energy"]["joules"] is None
        if r["backend"] == "oracle":
            assert show["accuracy"] == 1.0 and show["task_success"] == 1.0
        else:
            kinds = show["error_kinds"]
            assert kinds["local"] > 0
            if show["mode"] == "free":
                assert kinds["propagated"] > 0
                assert show["accuracy"] < 0.9
            else:
                assert kinds["propagated"] == 0


def test_free_and_oracle_local_errors_agree_for_the_same_draws(populated):
    db, _ = populated
    runs = json.loads(cli("runs", "--json", db=db).stdout)
    noisy = {(r["scenario"], r["mode"]): r["run_id"] for r in runs if r["backend"].startswith("noisy")}
    for scen in ("chain-linear", "fanin-dag"):
        free = json.loads(cli("show", noisy[(scen, "free")], "--json", db=db).stdout)
        orac = json.loads(cli("show", noisy[(scen, "oracle")], "--json", db=db).stdout)
        # depth-1 hops see no parents, so both modes make identical decisions there
        assert free["accuracy_by_depth"]["1"] == orac["accuracy_by_depth"]["1"]


def test_human_output_and_compare(populated):
    db, _ = populated
    out = cli("show", "5", db=db).stdout
    assert "hop accuracy" in out and "energy" in out
    assert "run" in cli("runs", db=db).stdout
    cmp = cli("compare", "1", "5", "6", db=db, env={**os.environ, "COLUMNS": "160"}).stdout
    assert "relative to run 1" in cmp


def test_export_csv_and_json(populated, tmp_path):
    db, _ = populated
    cli("export", "5", "--format", "csv", "-o", tmp_path / "r.csv", db=db)
    header = (tmp_path / "r.csv").read_text().splitlines()[0]
    assert "error_kind" in header and "prompt" in header
    cli("export", "5", "--format", "json", "-o", tmp_path / "r.json", db=db)
    payload = json.loads((tmp_path / "r.json").read_text())
    assert payload["run"]["run_id"] == 5 and len(payload["hops"]) == 75


@pytest.mark.parametrize(
    "args, needle",
    [
        (["run", "chain-linear", "-b", "warp-drive"], "unknown backend"),
        (["run", "chain-linear", "-b", "noisy,bogus=1"], "no option"),
        (["run", "no-such-scenario", "-b", "oracle"], "no scenario file or family"),
        (["run", "chain-linear"], "no --backend"),
        (["run", "chain-arith", "-p", "depth", "-b", "oracle"], "KEY=VALUE"),
        (["show", "999"], "no run 999"),
        (["validate", "/nonexistent.yaml"], "file not found"),
    ],
)
def test_user_errors_are_one_clear_message(tmp_path, args, needle):
    db = tmp_path / "e.db"
    cli("run", "chain-linear", "-b", "oracle", "-n", "1", db=db)
    proc = cli(*args, db=db if args[0] != "validate" else None, check=False)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    no_traceback(proc)


def test_bad_scenario_file_names_file_line_hop_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nhops:\n  - id: a\n    prompt: 'hi {{ who }}'\n    expect: 1\n")
    proc = cli("validate", bad, check=False)
    assert proc.returncode == 2
    assert f"{bad}:4: hop 'a', field 'prompt': undeclared variable 'who'" in proc.stderr
    no_traceback(proc)
    proc = cli("run", bad, "-b", "oracle", db=tmp_path / "x.db", check=False)
    assert proc.returncode == 2 and "undeclared variable" in proc.stderr
    no_traceback(proc)


def test_missing_db_for_readers(tmp_path):
    proc = cli("runs", db=tmp_path / "none.db", check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    no_traceback(proc)


def test_corrupt_db_is_a_clear_error(tmp_path):
    db = tmp_path / "junk.db"
    db.write_bytes(b"this is not a database" * 100)
    proc = cli("run", "chain-linear", "-b", "oracle", "-n", "1", db=db, check=False)
    assert proc.returncode == 2 and "cannot use database" in proc.stderr
    no_traceback(proc)


def test_param_sweep_records_depth(tmp_path):
    db = tmp_path / "s.db"
    cli("run", "chain-arith", "-p", "depth=1..3", "-b", "noisy,p=0.2", "-n", "5", db=db)
    runs = json.loads(cli("runs", "--json", db=db).stdout)
    depths = sorted(json.loads(cli("show", r["run_id"], "--json", db=db).stdout)["params"]["depth"] for r in runs)
    assert depths == [1, 2, 3]


def test_env_var_db(tmp_path):
    env = {**os.environ, "AGENTSIM_DB": str(tmp_path / "env.db")}
    cli("run", "fanin-dag", "-b", "oracle", "-n", "2", env=env)
    assert Path(tmp_path / "env.db").exists()
