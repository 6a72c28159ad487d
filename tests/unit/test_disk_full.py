"""A full disk during a run is a clear message, not an internal error: nothing committed is lost,
and it names the run, how much is kept and the command that finishes it (with the run id and
--db); after space is freed, ``--resume`` completes with results equal to an uninterrupted run's.

Two ways: a real 1 MB tmpfs (needs root and mount; skipped with the reason otherwise), and the
SQLite error injected at the store boundary (always runs).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from agentsim.cli import main
from agentsim.store import Store


def _cli(args: list[str], cwd: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "AGENTSIM_DEBUG"}
    proc = subprocess.run([sys.executable, "-m", "agentsim.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)
    return proc.returncode, proc.stdout + proc.stderr


def _answers(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT instance_index, hop_id, completion, parsed, correct, error_kind FROM hop "
                           "ORDER BY instance_index, hop_id").fetchall()
    finally:
        con.close()


@pytest.fixture
def tiny_fs(tmp_path: Path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8) for a 1 MB tmpfs")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_says_what_is_kept_and_how_to_resume(tiny_fs: Path, tmp_path: Path, capsys) -> None:
    db = tiny_fs / "r.db"
    args = ["chain-linear", "-b", "oracle", "-n", "150", "--seed", "3"]
    rc, out = _cli(["run", *args, "--db", str(db)], tmp_path)
    # was: internal error (OperationalError: database or disk is full) ... This is a bug, exit 3
    assert rc == 1 and "internal error" not in out and "Traceback" not in out, out
    assert "is full" in out and "Nothing recorded is lost (run 1: " in out, out
    assert f"agentsim run --resume 1 --db {db}" in out, out
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_fs)], check=True)
    store = Store(db)
    try:
        assert store.integrity_check() == "ok"
    finally:
        store.close()
    # the full disk is met by a process of its own; the resume and the reference run go through
    # cli.main here
    capsys.readouterr()
    rc = main(["run", "--resume", "1", "--db", str(db)])
    out = capsys.readouterr()
    assert rc == 0 and "complete" in out.out + out.err, out
    assert main(["run", *args, "--db", str(tmp_path / "whole.db")]) == 0
    assert _answers(db) == _answers(tmp_path / "whole.db") and len(_answers(db)) == 450


def test_the_disk_full_error_at_the_store_boundary(tmp_path: Path, monkeypatch, capsys) -> None:
    """The same message when SQLite's error comes from the store's hop commit (injected there)."""
    real = Store.record_hop
    calls = {"n": 0}

    def record_hop(self, hop):
        calls["n"] += 1
        if calls["n"] > 7:
            raise OperationalError("INSERT INTO hoptrace ...", {}, sqlite3.OperationalError("database or disk is full"))
        return real(self, hop)

    monkeypatch.setattr(Store, "record_hop", record_hop)
    db = tmp_path / "my runs.db"
    rc = main(["run", "chain-linear", "-b", "oracle", "-n", "5", "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 1 and "internal error" not in err, err
    assert "run 1: 7 hops committed" in err and f"agentsim run --resume 1 --db '{db}'" in err, err
    monkeypatch.setattr(Store, "record_hop", real)
    assert main(["run", "--resume", "1", "--db", str(db)]) == 0


def test_an_interrupt_names_the_run_and_the_database(tmp_path: Path, monkeypatch, capsys) -> None:
    real = Store.record_hop
    calls = {"n": 0}

    def record_hop(self, hop):
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt
        return real(self, hop)

    monkeypatch.setattr(Store, "record_hop", record_hop)
    db = tmp_path / "r.db"
    rc = main(["run", "chain-linear", "-b", "oracle", "-n", "5", "--db", str(db)])
    err = capsys.readouterr().err
    # was: "agentsim run --resume RUN_ID finishes a run" (no id, no --db)
    assert rc == 130 and "run 1: 4 hops committed" in err and f"agentsim run --resume 1 --db {db}" in err, err
