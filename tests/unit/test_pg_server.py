"""The test PostgreSQL server of a killed test session does not outlive it: the next session's
first server reaps it (tests/pg_server.py), and leaves a live session's alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pg_server import OWNER_FILE, ROOT_PREFIX, reap_orphans, unavailable_reason

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_a_killed_sessions_server_is_reaped_at_the_next_start(tmp_path: Path) -> None:
    code = ("import os; from tests.pg_server import PgServer; s = PgServer().start(); "
            "print(s.root, flush=True); os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == -9, proc.stderr
    root = Path(proc.stdout.strip().splitlines()[-1])
    postmaster = int((root / "data" / "postmaster.pid").read_text().split()[0])
    assert _alive(postmaster)  # the killed session left its server running
    mine = Path(tmp_path / f"{ROOT_PREFIX}live")  # a session still running: never reaped
    mine.mkdir()
    (mine / OWNER_FILE).write_text(str(os.getpid()))
    try:
        reaped = reap_orphans(root.parent)
        assert root in reaped and not root.exists()
        deadline = time.monotonic() + 10
        while _alive(postmaster) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(postmaster)
        assert reap_orphans(tmp_path) == [] and mine.exists()
    finally:
        if _alive(postmaster):
            os.kill(postmaster, 9)
