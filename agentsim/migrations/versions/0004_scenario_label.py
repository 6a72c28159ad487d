"""scenario label: run.scenario_label, what listings show for the run's workload

Two different workloads can carry one scenario name (the name seeds the instances, so it stays):
the label differs whenever the scenario does (see :mod:`agentsim.scenario.label`). This revision
adds the column with its index and fills it for every stored run, in id order, from the run's
scenario reference and fingerprint: exactly what :meth:`agentsim.store.Store.create_run` would
have given those runs.

Revision ID: 0004_scenario_label
Revises: 0003_model_scale
Create Date: 2026-01-10
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from agentsim.migrations import add_columns, drop_columns

revision = "0004_scenario_label"
down_revision = "0003_model_scale"
branch_labels = None
depends_on = None

COLUMNS = {"run": [("scenario_label", sa.String())]}
INDEX = "ix_run_scenario_label"


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def backfill(conn: sa.engine.Connection) -> int:
    """Fill ``scenario_label`` where it is empty; returns how many runs were labelled."""
    from agentsim.scenario.label import base_label, pick_label

    rows = conn.execute(sa.text(
        "SELECT id, scenario, scenario_ref, scenario_fingerprint, scenario_label FROM run ORDER BY id")).all()
    holders: dict[str, set[str]] = {}
    done = 0
    for rid, scenario, ref, fp, label in rows:
        fp = fp or ""
        if not label:
            label = pick_label(base_label(_json(ref), str(scenario)), fp, holders)
            conn.execute(sa.text("UPDATE run SET scenario_label = :label WHERE id = :id"),
                         {"label": label, "id": rid})
            done += 1
        holders.setdefault(label, set()).add(fp)
    return done


def upgrade() -> None:
    add_columns(COLUMNS)
    bind = op.get_bind()
    if INDEX not in {ix["name"] for ix in sa.inspect(bind).get_indexes("run")}:
        op.create_index(INDEX, "run", ["scenario_label"])
    backfill(bind)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="run")
    drop_columns(COLUMNS)
