"""A run killed with SIGKILL at an arbitrary moment finishes with ``--resume``: no lost hops,
no duplicates, an intact database, and the same results as an uninterrupted run. The run that
is killed is a process of its own (a SIGKILL is process behaviour); the resume and the reference
run go through ``cli.main`` in this process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from agentsim.cli import main
from agentsim.store import Store

RUN = ["chain-arith", "-p", "depth=4", "-b", "noisy,p=0.25,latency_ms=15", "-n", "30", "--seed", "11"]


def _count(db) -> int:
    if "://" in str(db):  # PostgreSQL: a short read-only connection
        from sqlalchemy import create_engine, text

        eng = create_engine(str(db))
        try:
            with eng.connect() as conn:
                return int(conn.execute(text("SELECT count(*) FROM hop")).scalar() or 0)
        except Exception:  # noqa: BLE001 - the table does not exist yet
            return 0
        finally:
            eng.dispose()
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM hop").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def test_sigkill_then_resume(tmp_path, db_kind):
    _kill_then_resume(tmp_path, RUN, db_kind)


def test_sigkill_mid_batch_then_resume(tmp_path, db_kind):
    """Batch 4: hops are committed as each batched call returns; a kill while a call is in flight
    (or between the commits of its hops) loses nothing and duplicates nothing."""
    run = _kill_then_resume(tmp_path, [*RUN, "--batch", "4"], db_kind)
    assert run.batch_size == 4


def _kill_then_resume(tmp_path, args, db_kind="sqlite"):
    """On SQLite or on a real PostgreSQL server (``db_kind``, tests/e2e/conftest.py)."""
    from tests.pg_server import new_db

    RUN = args  # noqa: N806 - the run under test
    db = new_db(db_kind, tmp_path, "kill")
    proc = subprocess.Popen([sys.executable, "-m", "agentsim.cli", "run", *RUN, "--db", str(db)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _count(db) < 37 and time.time() < deadline:
        assert proc.poll() is None, "the run finished before it could be killed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    recorded = _count(db)
    assert 37 <= recorded < 120

    store = Store(db)
    run = store.list_runs()[0]
    assert run.status == "running"  # the process died without a word
    from agentsim.store import effective_status

    assert effective_status(run) == "interrupted"
    store.close()

    # only the kill needs a process of its own; the resume and the reference run go through
    # cli.main here (the resumed run's pid is the dead process's, not this one's)
    assert main(["run", "--resume", str(run.id), "--db", str(db)]) == 0

    store = Store(db)
    if db_kind == "sqlite":
        assert store.integrity_check() == "ok"
    hops = store.hops(run.id)
    assert len(hops) == 120
    assert len({(h.instance_index, h.hop_id) for h in hops}) == 120
    assert store.get_run(run.id).status == "complete"
    assert all(i.finished for i in store.instances(run.id))

    # the resumed run equals an uninterrupted one, hop by hop
    ref_db = new_db(db_kind, tmp_path, "ref")
    assert main(["run", *RUN, "--db", str(ref_db)]) == 0
    ref = Store(ref_db)
    ref_hops = ref.hops(ref.list_runs()[0].id)
    key = lambda h: (h.instance_index, h.hop_id, h.parsed, h.error_kind, h.correct)  # noqa: E731
    assert sorted(map(key, hops)) == sorted(map(key, ref_hops))
    ref_inst = [(i.success, i.root_causes) for i in ref.instances(ref.list_runs()[0].id)]
    assert [(i.success, i.root_causes) for i in store.instances(run.id)] == ref_inst
    return store.get_run(run.id)
