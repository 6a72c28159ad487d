"""Alembic's environment for agentsim: run with a connection handed in by
:func:`agentsim.migrations.migrate` (``config.attributes["connection"]``), or from the
``sqlalchemy.url`` main option (``python -m agentsim.migrations``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from agentsim.migrations import ADVISORY_LOCK_ID


def _target_metadata():  # type: ignore[no-untyped-def]
    """The tables as agentsim defines them now (for ``alembic revision --autogenerate`` and
    the test that the revisions build exactly that schema)."""
    from agentsim.store import SQLModel

    return SQLModel.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    is_sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=_target_metadata(),
        render_as_batch=is_sqlite,  # SQLite cannot ALTER most things: copy-and-move
        transactional_ddl=True,  # the whole upgrade is one transaction (SQLite: BEGIN IMMEDIATE)
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # two first opens at once: the second waits here, then finds the schema current
            connection.execute(text(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_ID})"))
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=_target_metadata(), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        engine = create_engine(url)
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
        engine.dispose()
