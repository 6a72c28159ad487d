from __future__ import annotations

import threading

import pytest

from agentsim.errors import StoreError
from agentsim.scenario import resolve_scenario
from agentsim.store import Store


def test_wal_and_pragmas(tmp_path):
    store = Store(tmp_path / "a.db")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar().lower() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_readonly_store_refuses_writes_and_missing_files(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "none.db", readonly=True)
    Store(tmp_path / "a.db")
    ro = Store(tmp_path / "a.db", readonly=True)
    assert ro.list_runs() == []
    with pytest.raises(Exception):  # noqa: B017 - sqlite says "readonly database"
        with ro.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM run")


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="folder"):
        Store(tmp_path / "no" / "such" / "x.db")


def test_reader_while_writer_writes(tmp_path):
    """A read-only reader polls while a run commits hop after hop: never 'database is locked'."""
    from agentsim.launch import execute

    db = tmp_path / "live.db"
    writer = Store(db)
    sc = resolve_scenario("chain-arith", {"depth": 3})
    errors: list[BaseException] = []
    seen: list[int] = []
    done = threading.Event()

    def read_loop() -> None:
        reader = Store(db, readonly=True)
        try:
            while not done.is_set():
                for r in reader.list_runs():
                    seen.append(len(reader.hops(r.id)))
                reader.hop_counts()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=read_loop)
    t.start()
    try:
        runs, failures = execute([sc], ["noisy,p=0.2,latency_ms=2"], store=writer, instances=40, seed=1)
    finally:
        done.set()
        t.join()
    assert not errors and not failures
    assert seen and max(seen) <= 120
    assert len(writer.hops(runs[0].id)) == 120


def test_any_sqlalchemy_url(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'url.db'}")
    assert store.list_runs() == []


def test_reader_upgrades_a_database_from_an_older_version(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    Store(db).close()
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE hop DROP COLUMN energy_note")  # what an older agentsim wrote
    con.execute("DROP TABLE alembic_version")  # written before migrations existed
    con.commit()
    con.close()
    ro = Store(db, readonly=True)
    assert ro.list_runs() == [] and ro.hop_counts() == {}
    assert ro._missing_columns() == []


def test_an_in_memory_database_is_migrated_in_its_own_connection():
    """``sqlite://`` lives inside one connection: the schema must be made there, not elsewhere."""
    from agentsim.launch import execute

    store = Store("sqlite://")
    runs, failures = execute(["chain-linear"], ["oracle"], store=store, instances=2)
    assert not failures and store.get_run(runs[0].id).status == "complete"
    assert len(store.hops(runs[0].id)) == 2 * runs[0].hops_per_instance


def test_hop_record_has_the_hop_table_columns_with_their_types_and_defaults():
    """The engine's typed hop record and the hop table declare the same columns, types and
    defaults: a column added to, retyped or re-defaulted in one of them and not the other fails
    here. (HopRecord is written out rather than generated from HopBase so that type checkers
    and readers see its fields; this test is what keeps the two one declaration.)"""
    import dataclasses
    import typing

    from agentsim.store import HopBase, HopRead, HopRecord, HopTrace

    rec = HopRecord(run_id=1, instance_index=0, hop_id="h")
    fields = [f.name for f in dataclasses.fields(HopRecord) if f.name != "id"]
    assert fields == list(HopBase.model_fields)  # same names, same order
    hints = typing.get_type_hints(HopRecord)
    for name, info in HopBase.model_fields.items():
        assert hints[name] == info.annotation, (name, hints[name], info.annotation)
        if name in ("run_id", "instance_index", "hop_id", "created_at"):
            continue
        default = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
        assert getattr(rec, name) == default, name
    # the table and the read model are HopBase's columns plus the id, nothing of their own
    table = {c.name for c in HopTrace.__table__.columns}  # type: ignore[attr-defined]
    assert table == set(HopBase.model_fields) | {"id"} == set(HopRead.model_fields)
    assert hints["id"] == (int | None)


def test_record_hop_takes_and_returns_a_hop_record_and_never_duplicates(tmp_path):
    from agentsim.store import HopRecord, Run

    store = Store(tmp_path / "h.db")
    run = store.create_run(Run(scenario="s", backend="oracle", n_instances=1, hops_per_instance=1))
    first = HopRecord(run_id=run.id, instance_index=0, hop_id="h1", correct=True, parsed={"a": [1]})
    saved = store.record_hop(first)
    assert saved is first and isinstance(saved.id, int)
    again = store.record_hop(HopRecord(run_id=run.id, instance_index=0, hop_id="h1", correct=False))
    assert isinstance(again, HopRecord) and again.id == saved.id and again.correct is True
    assert again.parsed == {"a": [1]}
    assert [h.hop_id for h in store.hops(run.id)] == ["h1"]
