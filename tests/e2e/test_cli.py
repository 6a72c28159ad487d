"""End-to-end: the ``agentsim`` command on the bundled scenarios.

Commands run in-process through :func:`agentsim.cli.main` (what the installed script calls), with
their standard output and error captured and their exit status returned; only the tests of process
behaviour (a pipe closed early) start a process. Data is checked on SQLite and PostgreSQL;
layout (tables, widths) is the same on both and is checked on SQLite only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli as cli

AGENTSIM = [sys.executable, "-m", "agentsim.cli"]
#: a layout test: the text is the same on every database, so it runs on SQLite only
layout = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)


def no_traceback(proc):
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def populated(tmp_path_factory, db_kind):
    """Runs written once per module and store (SQLite, PostgreSQL): run, runs, show, compare
    and export are tested on both."""
    from tests.pg_server import new_db

    db = new_db(db_kind, tmp_path_factory.mktemp("cli"), "runs")
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


@layout
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
    (block,) = payload["runs"]
    assert block["summary"]["run_id"] == 5 and block["run"]["id"] == 5 and len(block["hops"]) == 75


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


# --------------------------------------------------------------------------------------------
# issue 18: what a new user hits


BRACKETS = """
name: "shop [v2]"
description: "a scenario whose name and answers hold [brackets]"
vars:
  n: {randint: [1, 3]}
hops:
  - id: tag
    prompt: "Reply with [tag{{ n }}] exactly."
    parse: text
    expect: "'[tag' ~ n ~ ']'"
  - id: twice
    depends_on: [tag]
    prompt: "Repeat {{ tag }} twice."
    parse: text
    expect: "tag ~ tag"
"""


@pytest.fixture(scope="module")
def bracketed(tmp_path_factory):
    d = tmp_path_factory.mktemp("brackets")
    sc = d / "brackets.yaml"
    sc.write_text(BRACKETS.lstrip())
    db = d / "b.db"
    proc = cli("run", sc, "-b", "oracle", "-n", "2", "--mode", "both", "--energy", "off", db=db)
    return db, proc


def test_mode_and_names_in_brackets_are_printed_not_swallowed(bracketed):
    db, proc = bracketed
    lines = [line for line in proc.stdout.splitlines() if line.startswith("run ")]
    assert len(lines) == 2
    assert "shop [v2]" in lines[0] and "[free]" in lines[0]
    assert "[oracle]" in lines[1]
    assert lines[0] != lines[1]
    show = cli("show", "1", db=db).stdout
    assert "run 1: shop [v2] [free] oracle" in show
    runs = cli("runs", db=db, env={**os.environ, "COLUMNS": "100"}).stdout
    assert "shop [v2]" in runs
    cmp = cli("compare", "1", "2", db=db, env={**os.environ, "COLUMNS": "100"}).stdout
    assert "[free]" in cmp or "[oracle]" in cmp
    assert "shop [v2]" in cmp


def test_energy_off_is_said_to_be_off(bracketed):
    db, _ = bracketed
    out = cli("show", "1", db=db).stdout
    assert "metering turned off" in out and "no meter on this machine" not in out


def test_energy_kinds_have_one_label_everywhere():
    from agentsim.console import ENERGY_SHORT, energy_short

    assert energy_short("estimated") == ENERGY_SHORT["estimated"] == "est."
    assert energy_short("measured") == "meas."
    root = Path(__file__).resolve().parents[2]
    for name in ("agentsim/report.py", "agentsim/cli/results.py", "agentsim/console.py"):
        text = (root / name).read_text()
        assert "[:3]" not in text and "[:4]" not in text and "esti." not in text, name


def test_simulation_backend_with_model_or_precision_is_an_error(tmp_path):
    for spec in ("oracle@f16", "oracle:foo", "noisy@q4_0"):
        proc = cli("run", "chain-linear", "-b", spec, "-n", "1", db=tmp_path / "s.db", check=False)
        assert proc.returncode == 2, (spec, proc.stdout, proc.stderr)
        assert "simulation" in proc.stderr and "no model or precision" in proc.stderr
        no_traceback(proc)


def test_param_on_a_bundled_file_by_name_as_by_path(tmp_path):
    db = tmp_path / "p.db"
    by_name = cli("run", "fan-in-w3", "--param", "width=2", "-b", "oracle", "-n", "1", db=db)
    path = Path(__file__).resolve().parents[2] / "scenarios" / "fan-in-w3.yaml"
    cli("run", path, "--param", "width=2", "-b", "oracle", "-n", "1", db=db)
    runs = json.loads(cli("runs", "--json", db=db).stdout)
    assert [r["params"]["width"] for r in runs] == [2, 2]
    assert runs[0]["scenario"] == runs[1]["scenario"]
    # one workload, one label; width=2 is the family's default, so the label leaves it out
    assert runs[0]["scenario_label"] == runs[1]["scenario_label"] == "fan-in(depth=3)"
    assert "run 1: fan-in(depth=3) [free] oracle" in by_name.stdout


def test_run_help_shows_the_defaults():
    out = cli("run", "--help", env={**os.environ, "COLUMNS": "200"}).stdout
    for text in ("instances (seeded draws) per run (default: 10)", "(default: free)", "(default: 0)",
                 "(default: auto)"):
        assert text in out, text
    assert "(default: None)" not in out and "(default: False)" not in out


def test_progress_bar_keeps_counts_and_eta_at_80_columns():
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from agentsim.console import progress_printer

    buf = io.StringIO()
    con = Console(file=buf, width=80, color_system=None)
    bar, on_progress = progress_printer(con)
    p = SimpleNamespace(run_id=12, scenario="pointer-chase-d8-with-a-long-name", mode="oracle",
                        backend="llama:qwen2.5-coder-0.5b@q4_k_m", hops_total=600, hops_done=599, accuracy=0.5)
    with bar:
        on_progress(p)
    line = [ln for ln in buf.getvalue().splitlines() if ln.strip()][-1]
    assert len(line) <= 80
    assert "599/600" in line and "acc 0.50" in line and "eta" in line
    assert line.startswith("run 12 ")


def _wide_lines(text):
    return [ln for ln in text.splitlines() if len(ln) > 80]


@layout
def test_runs_and_compare_are_readable_at_80_columns(populated):
    db, _ = populated
    env80 = {**os.environ, "COLUMNS": "80"}
    runs = cli("runs", db=db, env=env80).stdout
    assert not _wide_lines(runs), runs
    assert "…" not in runs
    for rid in range(1, 9):
        assert any(ln.split()[:1] == [str(rid)] for ln in runs.splitlines()), runs
    assert "chain-linear" in runs and "noisy,p=0.3,seed=1" in runs
    assert "acc%" in runs and "ok%" in runs and "100.0" in runs
    # created: month-day and time on one line
    assert all(re.search(r"\d\d-\d\d \d\d:\d\d", ln) for ln in runs.splitlines() if re.match(r"\s*\d+ ", ln))
    cmp = cli("compare", "1", "5", "7", db=db, env=env80).stdout
    assert not _wide_lines(cmp), cmp
    assert "…" not in cmp
    assert "chain-linear" in cmp and "fanin-dag" in cmp and "noisy,p=0.3,seed=1" in cmp


def test_runs_json_and_table_carry_accuracy_task_success_and_params(tmp_path):
    db = tmp_path / "r.db"
    cli("run", "chain-arith", "-p", "depth=1|2", "-b", "noisy,p=0.2", "-n", "4", db=db)
    runs = json.loads(cli("runs", "--json", db=db).stdout)
    for r in runs:
        show = json.loads(cli("show", r["run_id"], "--json", db=db).stdout)
        assert r["accuracy"] == pytest.approx(show["accuracy"])
        assert r["task_success"] == pytest.approx(show["task_success"])
        assert r["params"] == show["params"] and "depth" in r["params"]
        assert r["batch_size"] >= 1
    table = cli("runs", db=db, env={**os.environ, "COLUMNS": "80"}).stdout
    assert "depth=1" in table and "depth=2" in table


# compare: the baseline and mixed runs


@layout
def test_compare_includes_a_baseline_not_among_the_runs(populated):
    db, _ = populated
    proc = cli("compare", "5", "7", "--baseline", "3", "--json", db=db)
    rows = json.loads(proc.stdout)
    assert [r["run_id"] for r in rows][0] == 3
    assert {r["baseline_run_id"] for r in rows} == {3}
    assert "baseline run 3" in proc.stderr and "included" in proc.stderr
    text = cli("compare", "5", "7", "--baseline", "3", db=db, env={**os.environ, "COLUMNS": "80"}).stdout
    assert "relative to run 3" in text


@layout
def test_compare_unknown_baseline_or_run_is_a_clear_error(populated):
    db, _ = populated
    for args, needle in ((["1", "2", "--baseline", "999"], "--baseline 999: no run 999"), (["1", "998"], "no run 998")):
        proc = cli("compare", *args, db=db, check=False)
        assert proc.returncode == 2, proc.stderr
        assert needle in proc.stderr
        no_traceback(proc)


@layout
def test_compare_warns_when_runs_differ_in_scenario_or_params(populated, tmp_path):
    db, _ = populated
    runs = {(r["scenario"], r["backend"], r["mode"]): r["run_id"] for r in json.loads(cli("runs", "--json", db=db).stdout)}
    a = runs[("chain-linear", "oracle", "free")]
    b = runs[("fanin-dag", "oracle", "free")]
    proc = cli("compare", a, b, db=db, env={**os.environ, "COLUMNS": "80"})
    assert "warning" in proc.stderr and "2 different scenarios" in proc.stderr
    assert "chain-linear" in proc.stdout and "fanin-dag" in proc.stdout
    same = cli("compare", a, runs[("chain-linear", "noisy,p=0.3,seed=1", "free")], db=db)
    assert "warning" not in same.stderr
    db2 = tmp_path / "p.db"
    cli("run", "chain-arith", "-p", "depth=1|2", "-b", "oracle", "-n", "2", db=db2)
    proc = cli("compare", "1", "2", db=db2)
    assert "2 different scenarios" in proc.stderr and "chain-arith(depth=1)" in proc.stderr


# validate: every problem, with hints for the YAML traps


def test_validate_lists_every_problem_with_line_hop_and_field(tmp_path):
    bad = tmp_path / "many.yaml"
    bad.write_text(
        "name: x\n"
        "hops:\n"
        "  - id: a\n"
        "    prompt: 'Is it raining?'\n"
        "    parse: {type: choice, options: [yes, no]}\n"
        "    expect: \"'yes'\"\n"
        "    bogus: 1\n"
        "  - id: b\n"
        "    prompt: hi\n"
    )
    proc = cli("validate", bad, check=False)
    assert proc.returncode == 2
    err = proc.stderr
    assert "4 problems" in err
    assert f"{bad}:5: hop 'a', field 'parse.options.0'" in err
    assert f"{bad}:5: hop 'a', field 'parse.options.1'" in err
    assert f"{bad}:7: hop 'a', field 'bogus': unknown field" in err
    assert f"{bad}:8: hop 'b'" in err and "needs 'expect'" in err
    assert "more problem" not in err
    assert "boolean" in err and "'yes'" in err
    no_traceback(proc)


def test_validate_hint_for_unquoted_yes_no(tmp_path):
    bad = tmp_path / "yn.yaml"
    bad.write_text("name: x\nhops:\n  - id: a\n    prompt: 'Rain?'\n    parse: {type: choice, options: [yes, no]}\n"
                   "    expect: \"'yes'\"\n")
    proc = cli("validate", bad, check=False)
    assert proc.returncode == 2
    assert "hint: YAML reads an unquoted yes/no" in proc.stderr


def test_an_unquoted_pipe_in_a_param_gets_a_hint(tmp_path):
    """``--param distractors=4|16 -b ...`` in a shell pipes into a command named 16: agentsim
    sees no backend and its output is a pipe; the error says why."""
    cmd = " ".join(AGENTSIM) + f" run pointer-chase --db {tmp_path / 'p.db'} --param depth=1 --param distractors=4|cat"
    proc = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert "no --backend given" in proc.stderr
    assert "unquoted | in a --param value" in proc.stderr and "'distractors=4|16'" in proc.stderr
    with (tmp_path / "out.txt").open("w") as out:  # output to a file, not a pipe: the usual hint
        plain = subprocess.run(AGENTSIM + ["run", "pointer-chase", "--param", "depth=1", "--db", str(tmp_path / "q.db")],
                               stdout=out, stderr=subprocess.PIPE, text=True, timeout=120)
    assert plain.returncode == 2 and "no --backend given" in plain.stderr and "unquoted |" not in plain.stderr


def test_scenarios_show_prints_brackets_literally(tmp_path):
    """Names, prompts and expected answers holding [...] are text, not rich markup."""
    f = tmp_path / "br.yaml"
    f.write_text('name: "shop [v2]"\nsystem: "rules [strict]"\nhops:\n'
                 '  - id: a\n    prompt: "Say [ok] please"\n    expect: "\'[ok]\'"\n')
    out = cli("scenarios", "show", f)
    for text in ("shop [v2]", "rules [strict]", "Say [ok] please", "'[ok]'"):
        assert text in out.stdout, (text, out.stdout)
    listed = cli("scenarios", "list", "--dir", tmp_path, env={**os.environ, "COLUMNS": "200"})
    assert "br" in listed.stdout and listed.returncode == 0


def test_run_help_lists_every_backends_precisions(capsys):
    """The precisions come from agentsim.precision (the one list), all of them, in run --help."""
    from agentsim.cli import main
    from agentsim.precision import HF_PRECISIONS, LLAMA_PRECISIONS

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    tail = out[out.index("llama precisions"):]
    for name in (*LLAMA_PRECISIONS, *HF_PRECISIONS):
        assert re.search(rf"^  {re.escape(name)} ", tail, re.M), name
    assert "declared, not verified" in tail
