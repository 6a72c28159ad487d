"""``python -m agentsim.migrations upgrade|current|history|stamp|downgrade [--db URL]``."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import create_engine


def main(argv: list[str] | None = None) -> int:
    from agentsim.paths import default_db

    from . import HEAD, current_revision, downgrade, migrate, stamp

    ap = argparse.ArgumentParser(prog="python -m agentsim.migrations",
                                 description="agentsim's schema migrations (Alembic)")
    ap.add_argument("action", choices=("upgrade", "current", "history", "stamp", "downgrade"))
    ap.add_argument("revision", nargs="?", default="head", help="for upgrade/stamp/downgrade (default: head)")
    ap.add_argument("--db", default=None, help="database path or SQLAlchemy URL (default: $AGENTSIM_DB or ./agentsim.db)")
    args = ap.parse_args(argv)
    if args.action == "history":
        from alembic.script import ScriptDirectory

        from . import alembic_config

        for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions():
            print(f"{rev.revision}: {rev.doc}")
        return 0
    db = args.db or default_db()
    url = db if "://" in db else f"sqlite:///{db}"
    engine = create_engine(url)
    try:
        if args.action == "current":
            rev = current_revision(engine)
            print(f"{rev or '(none: empty, or written before migrations)'}"
                  f"{' (head)' if rev == HEAD else ''}")
        elif args.action == "upgrade":
            print(f"at {migrate(engine, args.revision)}")
        elif args.action == "stamp":
            stamp(engine, args.revision)
        else:
            if args.revision == "head":
                ap.error("downgrade needs a revision (e.g. 0001_baseline, or base)")
            downgrade(engine, args.revision)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
