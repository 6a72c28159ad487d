"""End-to-end tests use the root conftest's ``db_kind`` (SQLite and a real PostgreSQL server)."""
