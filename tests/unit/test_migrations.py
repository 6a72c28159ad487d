"""Schema migrations (Alembic): the revisions build exactly the schema the tables define, a
database made by an earlier schema (or before migrations existed) is upgraded with its rows
kept, concurrent first opens are safe, and a database from a newer agentsim is a clear error.
The same checks against a real PostgreSQL server are in tests/e2e/test_postgres.py."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from agentsim.errors import StoreError
from agentsim.migrations import HEAD, alembic_config, current_revision, downgrade, migrate
from agentsim.store import Store


def schema_diff(engine) -> list:
    """What Alembic's autogenerate would change to reach the tables as defined now."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from agentsim.store import SQLModel

    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                SQLModel.metadata)


def insert_old_run(conn, **extra) -> None:
    """A run row as the baseline schema had it (no batch_size, no model_params)."""
    cols = {"scenario": "'old'", "scenario_ref": "'{}'", "scenario_fingerprint": "''", "params": "'{}'",
            "backend": "'oracle'", "backend_name": "'oracle'", "backend_info": "'{}'", "mode": "'free'",
            "seed": "0", "n_instances": "1", "hops_per_instance": "1", "status": "'complete'",
            "created_at": "'2024-01-01 00:00:00+00:00'", "machine": "'{}'", "energy_meter": "'{}'", **extra}
    conn.execute(text(f"INSERT INTO run ({', '.join(cols)}) VALUES ({', '.join(cols.values())})"))
    conn.execute(text(
        "INSERT INTO hop (run_id, instance_index, hop_id, topo_index, depth, kind, parents, correct,"
        " parents_ok, error_kind, root_cause, energy_kind, created_at) VALUES (1, 0, 'h1', 0, 1, 'llm',"
        " '[]', true, true, 'none', '[]', 'unavailable', '2024-01-01 00:00:00+00:00')"))


def test_head_is_the_one_head_of_the_scripts():
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [HEAD]


def test_a_new_database_is_built_by_the_revisions_exactly_as_the_tables_define_it(tmp_path):
    store = Store(tmp_path / "new.db")
    assert current_revision(store.engine) == HEAD
    assert schema_diff(store.engine) == []
    # and the check can fail: a database one revision behind differs
    eng = create_engine(f"sqlite:///{tmp_path / 'behind.db'}")
    migrate(eng, "0001_baseline")
    assert any(d[0] == "add_column" and d[3].name == "batch_size" for d in schema_diff(eng))


def test_a_database_made_by_the_previous_schema_is_upgraded_with_its_rows(tmp_path):
    db = tmp_path / "prev.db"
    eng = create_engine(f"sqlite:///{db}")
    assert migrate(eng, "0001_baseline") == "0001_baseline"
    with eng.begin() as conn:
        insert_old_run(conn)
    eng.dispose()
    have = {r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(run)")}
    assert "batch_size" not in have and "model_params" not in have

    ro = Store(db, readonly=True)  # a reader upgrades it once
    assert current_revision(ro.engine) == HEAD
    run = ro.list_runs()[0]
    assert run.scenario == "old" and run.batch_size is None and run.model_params is None
    assert [h.hop_id for h in ro.hops(run.id)] == ["h1"] and ro.hops(run.id)[0].batch_n is None
    assert schema_diff(ro.engine) == []


def test_a_database_from_before_migrations_is_adopted(tmp_path):
    """No alembic_version table, and a column the old add-columns-on-open code would have added
    is missing: the baseline adds it, the later revisions add theirs."""
    db = tmp_path / "legacy.db"
    eng = create_engine(f"sqlite:///{db}")
    migrate(eng, "0001_baseline")
    with eng.begin() as conn:
        insert_old_run(conn)
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("ALTER TABLE hop DROP COLUMN energy_note"))
    eng.dispose()
    store = Store(db)
    assert current_revision(store.engine) == HEAD
    assert schema_diff(store.engine) == []
    assert store.list_runs()[0].scenario == "old"
    assert store.hops(1)[0].energy_note is None


def _open(db: str, q) -> None:  # a child process opening the same fresh file
    try:
        Store(db).close()
        q.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        q.put(f"{type(exc).__name__}: {exc}")


def test_concurrent_first_opens_of_a_fresh_file(tmp_path):
    db = str(tmp_path / "race.db")
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_open, args=(db, q)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert sorted(q.get(timeout=5) for _ in procs) == ["ok"] * 4
    assert current_revision(Store(db).engine) == HEAD


def test_a_database_from_a_newer_agentsim_is_a_clear_error(tmp_path):
    db = tmp_path / "newer.db"
    Store(db).close()
    with sqlite3.connect(db) as con:
        con.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    with pytest.raises(StoreError) as ei:
        Store(db)
    assert "0099_from_the_future" in str(ei.value) and "newer agentsim" in (ei.value.hint or "")


def test_downgrade_to_base_and_back(tmp_path):
    eng = create_engine(f"sqlite:///{tmp_path / 'round.db'}")
    migrate(eng)
    downgrade(eng, "0001_baseline")
    assert current_revision(eng) == "0001_baseline"
    downgrade(eng, "base")
    with eng.connect() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
    assert not names & {"run", "hop", "instance"}
    assert migrate(eng) == HEAD and schema_diff(eng) == []


def test_the_command_line(tmp_path, capsys):
    from agentsim.migrations.__main__ import main

    db = str(tmp_path / "cli.db")
    assert main(["current", "--db", db]) == 0
    assert "none" in capsys.readouterr().out
    assert main(["upgrade", "--db", db]) == 0
    assert HEAD in capsys.readouterr().out
    # one call through ``python -m agentsim.migrations`` itself
    run = [sys.executable, "-m", "agentsim.migrations"]
    out = subprocess.run([*run, "history"], capture_output=True, text=True, check=True).stdout
    assert "0001_baseline" in out and HEAD in out


def test_the_scenario_label_is_back_filled_from_the_stored_reference(tmp_path):
    """Runs written by the previous schema (0003) get the labels Store.create_run gives: two
    scenarios of one name are told apart, a second run of one scenario shares its label."""
    import json

    from agentsim.scenario import resolve_scenario

    db = tmp_path / "labels.db"
    eng = create_engine(f"sqlite:///{db}")
    assert migrate(eng, "0003_model_scale") == "0003_model_scale"
    file_ref, family = resolve_scenario("pointer-chase-d4"), resolve_scenario("pointer-chase", {"depth": 4})
    rows = [(file_ref.name, file_ref.ref, file_ref.fingerprint), (family.name, family.ref, family.fingerprint),
            (file_ref.name, file_ref.ref, file_ref.fingerprint),
            ("shop", {"kind": "spec", "spec": {"name": "shop"}}, "1111111111111111"),
            ("shop", {"kind": "spec", "spec": {"name": "shop", "description": "v2"}}, "2222222222222222"),
            ("old", {}, "")]
    with eng.begin() as conn:
        for name, ref, fp in rows:
            conn.execute(text(
                "INSERT INTO run (scenario, scenario_ref, scenario_fingerprint, params, backend, backend_name,"
                " backend_info, mode, seed, n_instances, hops_per_instance, status, created_at, machine,"
                " energy_meter) VALUES (:n, :ref, :fp, '{}', 'oracle', 'oracle', '{}', 'free', 0, 1, 1,"
                " 'complete', '2024-01-01 00:00:00+00:00', '{}', '{}')"), {"n": name, "ref": json.dumps(ref), "fp": fp})
    eng.dispose()
    assert "scenario_label" not in {r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(run)")}

    store = Store(db, readonly=True)  # a reader upgrades it once
    assert current_revision(store.engine) == HEAD and schema_diff(store.engine) == []
    labels = [r.scenario_label for r in reversed(store.list_runs())]
    assert labels == ["pointer-chase(depth=4 distractors=8)", "pointer-chase(depth=4)",
                      "pointer-chase(depth=4 distractors=8)", "shop", "shop#222222", "old"]
    # a new run of the family scenario after the upgrade joins its back-filled label
    from agentsim.store import Run

    new = Store(db).create_run(Run(scenario=family.name, scenario_ref=family.ref,
                                   scenario_fingerprint=family.fingerprint, backend="oracle"))
    assert new.scenario_label == "pointer-chase(depth=4)"
    # and back: 0003 has no label column
    downgrade(create_engine(f"sqlite:///{db}"), "0003_model_scale")
    assert "scenario_label" not in {r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(run)")}
