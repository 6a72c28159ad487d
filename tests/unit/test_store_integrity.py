"""Store.integrity_check on SQLite and on a real PostgreSQL server (tests/pg_server.py): "ok" for
what the engine writes, and one line naming each kind of damage done to it behind its back."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, text

from agentsim.launch import execute
from agentsim.store import Store
from tests.pg_server import new_db, unavailable_reason


@pytest.fixture
def db(db_kind: str, tmp_path) -> str:
    url = str(new_db(db_kind, tmp_path, "integrity"))
    store = Store(url)
    execute(["chain-linear"], ["oracle", "noisy,p=0.3,seed=1"], store=store, instances=3, seed=1)
    store.close()
    return url


def _sql(db: str, *statements: str, bypass_foreign_keys: bool = False) -> None:
    """Change the database behind the store's back (as a bug or a hand edit would)."""
    if "://" not in db:
        con = sqlite3.connect(db)  # foreign keys are off on a plain connection
        for s in statements:
            con.execute(s)
        con.commit()
        con.close()
        return
    engine = create_engine(db)
    with engine.begin() as conn:
        if bypass_foreign_keys:
            conn.execute(text("SET session_replication_role = replica"))  # the tests' server: superuser
        for s in statements:
            conn.execute(text(s))
    engine.dispose()


def _check(db: str) -> str:
    store = Store(db, readonly=True)
    try:
        return store.integrity_check()
    finally:
        store.close()


def test_what_the_engine_writes_is_ok(db):
    assert _check(db) == "ok"
    # a run still being written (status running, hops missing) is not damage
    _sql(db, "UPDATE run SET status = 'running' WHERE id = 1", "DELETE FROM hop WHERE run_id = 1 AND instance_index = 2")
    assert _check(db) == "ok"


def test_a_complete_run_missing_a_hop_or_a_finished_instance(db):
    _sql(db, "DELETE FROM hop WHERE run_id = 1 AND instance_index = 0 AND topo_index = 0")
    report = _check(db)
    assert "complete runs with hops missing or extra (run, hops, expected): 1 (e.g. 1, 8, 9)" in report
    _sql(db, "UPDATE instance SET finished = false WHERE run_id = 2 AND \"index\" = 1")
    report = _check(db)
    assert "complete runs with instances missing or unfinished (run, finished, n_instances): 1 (e.g. 2, 2, 3)" in report
    assert len(report.splitlines()) == 2


def test_hops_outside_their_runs_instances(db):
    _sql(db, "UPDATE hop SET instance_index = 7 WHERE run_id = 2 AND instance_index = 0")
    report = _check(db)
    assert "hops outside their run's instances" in report and ": 3 (" in report
    assert "hops of complete runs without their instance (hop id, run, instance): 3" in report


def test_orphan_hops_and_instances(db):
    _sql(db, "UPDATE hop SET run_id = 99 WHERE run_id = 1 AND instance_index = 0",
         "UPDATE instance SET run_id = 98 WHERE run_id = 2 AND \"index\" = 2", bypass_foreign_keys=True)
    report = _check(db)
    assert "hops without their run (hop id, run): 3" in report
    assert "instances without their run (instance id, run): 1" in report
    if "://" not in db:  # SQLite's own foreign key check names them too
        assert "hop row" in report and "its run row is missing (foreign key)" in report


_DUPLICATE_FIRST_HOP = (
    "INSERT INTO hop (run_id, instance_index, hop_id, topo_index, depth, kind, correct, parents_ok, error_kind, "
    "energy_kind, created_at) SELECT run_id, instance_index, hop_id, topo_index, depth, kind, correct, "
    "parents_ok, error_kind, energy_kind, created_at FROM hop WHERE id = 1")


@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_postgresql_without_its_unique_key_reports_the_duplicates(tmp_path):
    db = str(new_db("postgresql", tmp_path, "dupes"))
    execute(["chain-linear"], ["oracle"], store=Store(db), instances=2, seed=1)
    _sql(db, "ALTER TABLE hop DROP CONSTRAINT uq_hop_run_instance_hop", _DUPLICATE_FIRST_HOP)
    report = _check(db)
    assert "unique key uq_hop_run_instance_hop is missing" in report
    assert "duplicate hop rows (run, instance, hop, count): 1 (e.g. 1, 0, " in report and ", 2)" in report
    assert "complete runs with hops missing or extra" in report  # one hop too many


@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_postgresql_with_amcheck_checks_indexes_and_pages(tmp_path):
    db = str(new_db("postgresql", tmp_path, "amcheck"))
    execute(["chain-linear"], ["noisy,p=0.3"], store=Store(db), instances=4, seed=1)
    _sql(db, "CREATE EXTENSION amcheck")
    assert _check(db) == "ok"  # every B-tree index and page checked (an error would be a line here)
    # a unique index whose build failed is left invalid: amcheck says so, on one line
    _sql(db, "ALTER TABLE hop DROP CONSTRAINT uq_hop_run_instance_hop", _DUPLICATE_FIRST_HOP)
    engine = create_engine(db, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn, pytest.raises(Exception, match="could not create unique index"):
        conn.execute(text("CREATE UNIQUE INDEX CONCURRENTLY ix_again ON hop (run_id, instance_index, hop_id)"))
    engine.dispose()
    lines = _check(db).splitlines()
    assert 'index ix_again: cannot check index "ix_again" DETAIL: Index is not valid.' in lines
