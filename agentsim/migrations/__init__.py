"""Schema migrations (Alembic), for SQLite and PostgreSQL alike.

:func:`migrate` brings a database to the newest schema: a new database is created by the
revisions in ``versions/`` (never by ``create_all``), a database written by an older agentsim
is upgraded, and one written before migrations existed (no ``alembic_version`` table) is
adopted by the baseline revision, which adds what the old add-columns-on-open code would have.
:class:`agentsim.store.Store` calls it on every writable open; it costs one query when the
database is already current.

Concurrent first opens are safe: on SQLite the whole upgrade is one ``BEGIN IMMEDIATE``
transaction (a second process waits for it, then finds the database current); on PostgreSQL
it runs in one transaction under an advisory lock.

From a shell (the same as opening the database with agentsim, but explicit)::

    python -m agentsim.migrations upgrade --db postgresql+psycopg://user@host/agentsim
    python -m agentsim.migrations current --db agentsim.db
    python -m agentsim.migrations history
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine

__all__ = ["HEAD", "SCRIPT_DIR", "alembic_config", "current_revision", "needs_upgrade", "migrate",
           "stamp", "downgrade", "add_columns", "drop_columns", "ADVISORY_LOCK_ID"]

#: the newest revision in versions/ (tests check it against Alembic's own view of the scripts)
HEAD = "0007_fidelity"
SCRIPT_DIR = Path(__file__).resolve().parent
#: the PostgreSQL advisory lock taken while migrating (any constant that agentsim alone uses)
ADVISORY_LOCK_ID = 0x6167_656E_7473_696D & 0x7FFF_FFFF_FFFF_FFFF  # "agentsim"


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Any:
    """An Alembic :class:`~alembic.config.Config` for agentsim's scripts (no alembic.ini)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def current_revision(engine_or_conn: Engine | Connection) -> str | None:
    """The revision the database is at; None for an empty database or one from before
    migrations existed."""
    def read(conn: Connection) -> str | None:
        if not inspect(conn).has_table("alembic_version"):
            return None
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return str(row[0]) if row else None

    if isinstance(engine_or_conn, Connection):
        return read(engine_or_conn)
    with engine_or_conn.connect() as conn:
        return read(conn)


def needs_upgrade(engine: Engine) -> bool:
    return current_revision(engine) != HEAD


def _in_memory(url: Any) -> bool:
    """An in-memory SQLite database (``sqlite://``, ``:memory:``, ``mode=memory``)."""
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _migration_engine(engine: Engine) -> Engine:
    """An engine for the upgrade itself: on SQLite, one whose transactions really are
    transactions for DDL too (pysqlite leaves DDL in autocommit) and take the write lock first."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or _in_memory(url):
        return engine  # an in-memory database lives in its one connection: no other engine sees it
    eng = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(eng, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver's implicit BEGIN off: we emit our own
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(eng, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return eng


def migrate(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade the database behind ``engine`` to ``revision`` (default: the newest); returns
    the revision it is at afterwards. A database already there costs one query."""
    if revision in ("head", HEAD) and current_revision(engine) == HEAD:
        return HEAD
    from alembic import command
    from alembic.util import CommandError

    from agentsim.errors import StoreError

    eng = _migration_engine(engine)
    try:
        with eng.connect() as conn:
            try:
                command.upgrade(alembic_config(conn), revision)
            except CommandError as exc:
                at = current_revision(conn)
                raise StoreError(
                    f"cannot upgrade the database's schema (at {at or 'none'}) to {revision}: {exc}",
                    hint=f"a database written by a newer agentsim needs that version (this one knows up to {HEAD})",
                ) from None
            conn.commit()
        return current_revision(eng)
    finally:
        if eng is not engine:
            eng.dispose()


def stamp(engine: Engine, revision: str) -> None:
    """Record ``revision`` as the database's schema without running anything."""
    from alembic import command

    eng = _migration_engine(engine)
    try:
        with eng.connect() as conn:
            command.stamp(alembic_config(conn), revision)
            conn.commit()
    finally:
        if eng is not engine:
            eng.dispose()


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    eng = _migration_engine(engine)
    try:
        with eng.connect() as conn:
            command.downgrade(alembic_config(conn), revision)
            conn.commit()
    finally:
        if eng is not engine:
            eng.dispose()


def add_columns(columns: dict[str, list[tuple[str, Any]]]) -> None:
    """For a revision: add nullable columns ``{table: [(name, type), ...]}``, skipping those a
    database already has (one adopted from before migrations may have them)."""
    import sqlalchemy as sa
    from alembic import op

    insp = sa.inspect(op.get_bind())
    for table, cols in columns.items():
        have = {c["name"] for c in insp.get_columns(table)}
        todo = [(n, t) for n, t in cols if n not in have]
        if todo:
            with op.batch_alter_table(table) as batch:
                for name, type_ in todo:
                    batch.add_column(sa.Column(name, type_, nullable=True))


def drop_columns(columns: dict[str, list[tuple[str, Any]]]) -> None:
    from alembic import op

    for table, cols in columns.items():
        with op.batch_alter_table(table) as batch:
            for name, _ in cols:
                batch.drop_column(name)
