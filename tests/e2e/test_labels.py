"""Two runs of one scenario name and different workloads (scenarios/pointer-chase-d4.yaml sets
distractors 8; ``pointer-chase --param depth=4`` keeps the default 6; both are named
``pointer-chase-d4``) read as two scenarios wherever runs are listed: runs, show, compare,
export, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.test_cli import cli

FILE_LABEL = "pointer-chase(depth=4 distractors=8)"
FAMILY_LABEL = "pointer-chase(depth=4)"
COLUMNS_80 = {**os.environ, "COLUMNS": "80"}


@pytest.fixture(scope="module")
def two(tmp_path_factory, db_kind):
    from tests.pg_server import new_db

    db = new_db(db_kind, tmp_path_factory.mktemp("labels"), "labels")
    cli("run", "pointer-chase-d4", "-b", "oracle", "-n", "2", db=db)
    cli("run", "pointer-chase", "--param", "depth=4", "-b", "oracle", "-n", "2", db=db)
    return db


def test_runs_lists_two_labels_for_one_name(two):
    listed = {r["run_id"]: r for r in json.loads(cli("runs", "--json", db=two).stdout)}
    assert listed[1]["scenario"] == listed[2]["scenario"] == "pointer-chase-d4"
    assert listed[1]["scenario_label"] == FILE_LABEL and listed[2]["scenario_label"] == FAMILY_LABEL
    assert listed[1]["scenario_fingerprint"] != listed[2]["scenario_fingerprint"]
    assert listed[1]["params"]["distractors"] == 8 and listed[2]["params"]["distractors"] == 6
    wide = cli("runs", db=two, env={**os.environ, "COLUMNS": "120"}).stdout
    assert f"2 {FAMILY_LABEL} " in wide and f"1 {FILE_LABEL} " in wide
    table = cli("runs", db=two, env=COLUMNS_80).stdout  # a long label folds within its column
    assert max(len(line) for line in table.splitlines()) <= 80
    assert f"2 {FAMILY_LABEL} " in table and "1 pointer-chase(depth=4 " in table and "distractors=8)" in table


def test_show_names_the_label_the_name_and_the_params(two):
    out = cli("show", "1", db=two, env=COLUMNS_80).stdout
    assert out.splitlines()[0].startswith(f"run 1: {FILE_LABEL} [free] oracle")
    assert "pointer-chase-d4 (family pointer-chase" in out and "distractors=8" in out
    s = json.loads(cli("show", "2", "--json", db=two).stdout)
    assert s["scenario_label"] == FAMILY_LABEL and s["scenario"] == "pointer-chase-d4"


def test_compare_labels_the_rows_and_warns(two):
    proc = cli("compare", "1", "2", db=two, env=COLUMNS_80)
    flat = " ".join(proc.stdout.split())
    assert FILE_LABEL in flat and FAMILY_LABEL in flat
    assert "backend, scenario" in proc.stdout  # no single scenario in the title
    assert "2 different scenarios" in proc.stderr
    rows = json.loads(cli("compare", "1", "2", "--json", db=two).stdout)
    assert [r["baseline_run_id"] for r in rows] == [1, 2]  # never paired with the other scenario
    same = cli("compare", "2", db=two, env=COLUMNS_80)
    assert same.stdout.lstrip().startswith(FAMILY_LABEL + ":") and "warning" not in same.stderr


def test_export_carries_the_label(two, tmp_path):
    cli("export", "1", "2", "-o", tmp_path / "x.json", db=two)
    payload = json.loads((tmp_path / "x.json").read_text())
    assert [b["run"]["scenario_label"] for b in payload["runs"]] == [FILE_LABEL, FAMILY_LABEL]
    assert [b["summary"]["scenario_label"] for b in payload["runs"]] == [FILE_LABEL, FAMILY_LABEL]
    assert {h["scenario_label"] for h in payload["runs"][0]["hops"]} == {FILE_LABEL}
    cli("export", "1", "2", "-o", tmp_path / "x.csv", db=two)
    head, *lines = (tmp_path / "x.csv").read_text().splitlines()
    assert "scenario_label" in head.split(",")
    assert any(FILE_LABEL in line for line in lines) and any(FAMILY_LABEL in line for line in lines)


def test_the_report_names_both(two, tmp_path):
    out = tmp_path / "r.md"
    cli("report", "1", "2", "-o", out, db=two)
    body = out.read_text()
    assert FILE_LABEL in body and FAMILY_LABEL in body


def test_the_migration_fills_labels_on_postgresql_too(tmp_path):
    """Revision 0004 on a real PostgreSQL server (JSON comes back parsed there)."""
    from agentsim.migrations import HEAD, migrate
    from agentsim.scenario import resolve_scenario
    from agentsim.store import Store
    from tests.pg_server import new_db, unavailable_reason

    if reason := unavailable_reason():
        pytest.skip(reason)
    url = new_db("postgresql", tmp_path, "labels_migration")
    eng = create_engine(url)
    migrate(eng, "0003_model_scale")
    with eng.begin() as conn:
        for ref in ("pointer-chase-d4", resolve_scenario("pointer-chase", {"depth": 4})):
            sc = resolve_scenario(ref)
            conn.execute(text(
                "INSERT INTO run (scenario, scenario_ref, scenario_fingerprint, params, backend, backend_name,"
                " backend_info, mode, seed, n_instances, hops_per_instance, status, created_at, machine,"
                " energy_meter) VALUES (:n, :ref, :fp, '{}', 'oracle', 'oracle', '{}', 'free', 0, 1, 1,"
                " 'complete', now(), '{}', '{}')"), {"n": sc.name, "ref": json.dumps(sc.ref), "fp": sc.fingerprint})
    eng.dispose()
    store = Store(url)
    assert migrate(store.engine) == HEAD
    assert [r.scenario_label for r in reversed(store.list_runs())] == [FILE_LABEL, FAMILY_LABEL]
    store.close()
