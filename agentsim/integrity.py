"""The checks behind :meth:`agentsim.store.Store.integrity_check`: each database's own, and what
the store promises whatever the engine or the database. Read-only SQL on an open connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["sqlite_problems", "postgres_problems", "promise_problems", "PROMISES"]


def sqlite_problems(conn: Any) -> list[str]:
    """SQLite's own checks: pages, indexes against their tables, UNIQUE and NOT NULL; foreign keys."""
    problems = [ln for ln in (str(r[0]) for r in conn.execute(text("PRAGMA integrity_check")).all()) if ln != "ok"]
    for table, rowid, parent, _fk in conn.execute(text("PRAGMA foreign_key_check")).all():
        problems.append(f"{table} row {rowid}: its {parent} row is missing (foreign key)")
    return problems


def postgres_problems(conn: Any) -> list[str]:
    """PostgreSQL: the unique and foreign keys exist; with ``amcheck``, every B-tree index of the
    three tables against its table, and the tables' pages."""
    problems: list[str] = []
    keys = conn.execute(text(
        "SELECT conname, conrelid::regclass::text, contype FROM pg_constraint "
        "WHERE conrelid IN ('hop'::regclass, 'instance'::regclass) AND contype IN ('u', 'f')")).all()
    for name in ("uq_hop_run_instance_hop", "uq_instance_run_index"):
        if name not in {k[0] for k in keys}:
            problems.append(f"unique key {name} is missing: duplicates would not be refused")
    for table in ("hop", "instance"):
        if (table, "f") not in {(k[1], k[2]) for k in keys}:
            problems.append(f"{table}.run_id has no foreign key to run")
    if not conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'")).first():
        return problems
    indexes = conn.execute(text(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am am ON am.oid = c.relam WHERE am.amname = 'btree' "
        "AND i.indrelid IN ('run'::regclass, 'instance'::regclass, 'hop'::regclass) "
        "ORDER BY c.relname")).scalars().all()
    for index in indexes:
        try:
            with conn.begin_nested():
                conn.execute(text("SELECT bt_index_check(CAST(:i AS regclass), true)"), {"i": index})
        except SQLAlchemyError as exc:
            problems.append(f"index {index}: {' '.join(str(getattr(exc, 'orig', exc)).split())}")
    for table in ("run", "instance", "hop"):
        for blk, off, att, msg in conn.execute(text(
                "SELECT blkno, offnum, attnum, msg FROM verify_heapam(CAST(:t AS regclass))"),
                {"t": table}).all()[:3]:
            problems.append(f"table {table} block {blk} item {off} column {att}: {msg}")
    return problems


#: what the store promises whatever the engine or the database: (what is wrong, the rows that show it)
PROMISES: tuple[tuple[str, str], ...] = (
    ("duplicate hop rows (run, instance, hop, count)",
     "SELECT run_id, instance_index, hop_id, COUNT(*) FROM hop "
     "GROUP BY run_id, instance_index, hop_id HAVING COUNT(*) > 1"),
    ("duplicate instance rows (run, instance, count)",
     'SELECT run_id, "index", COUNT(*) FROM instance GROUP BY run_id, "index" HAVING COUNT(*) > 1'),
    ("hops without their run (hop id, run)",
     "SELECT h.id, h.run_id FROM hop h LEFT JOIN run r ON r.id = h.run_id WHERE r.id IS NULL"),
    ("instances without their run (instance id, run)",
     "SELECT i.id, i.run_id FROM instance i LEFT JOIN run r ON r.id = i.run_id WHERE r.id IS NULL"),
    ("hops outside their run's instances (hop id, run, instance, n_instances)",
     "SELECT h.id, h.run_id, h.instance_index, r.n_instances FROM hop h JOIN run r ON r.id = h.run_id "
     "WHERE r.n_instances > 0 AND (h.instance_index < 0 OR h.instance_index >= r.n_instances)"),
    ("complete runs with hops missing or extra (run, hops, expected)",
     "SELECT r.id, COUNT(h.id), r.n_instances * r.hops_per_instance FROM run r "
     "LEFT JOIN hop h ON h.run_id = r.id WHERE r.status = 'complete' AND r.n_instances > 0 "
     "AND r.hops_per_instance > 0 GROUP BY r.id, r.n_instances, r.hops_per_instance "
     "HAVING COUNT(h.id) <> r.n_instances * r.hops_per_instance"),
    ("complete runs with instances missing or unfinished (run, finished, n_instances)",
     "SELECT r.id, SUM(CASE WHEN i.finished THEN 1 ELSE 0 END), r.n_instances FROM run r "
     "LEFT JOIN instance i ON i.run_id = r.id WHERE r.status = 'complete' AND r.n_instances > 0 "
     "GROUP BY r.id, r.n_instances "
     "HAVING COALESCE(SUM(CASE WHEN i.finished THEN 1 ELSE 0 END), 0) <> r.n_instances"),
    ("hops of complete runs without their instance (hop id, run, instance)",
     'SELECT h.id, h.run_id, h.instance_index FROM hop h JOIN run r ON r.id = h.run_id '
     'LEFT JOIN instance i ON i.run_id = h.run_id AND i."index" = h.instance_index '
     "WHERE r.status = 'complete' AND i.id IS NULL"),
)


def promise_problems(conn: Any) -> list[str]:
    problems: list[str] = []
    for label, sql in PROMISES:
        rows = conn.execute(text(sql)).all()
        if rows:
            shown = "; ".join(", ".join(str(v) for v in r) for r in rows[:3])
            problems.append(f"{label}: {len(rows)} (e.g. {shown})")
    return problems
