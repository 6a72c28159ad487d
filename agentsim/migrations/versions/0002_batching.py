"""batching: run.batch_size and the hop's batch-call figures

A run advances ``batch_size`` instances together; a hop answered in one backend call with
others keeps that call's figures (``batch_n``, ``batch_share``, ``batch_wall_s``,
``batch_prefill_s``, ``batch_decode_s``, ``batch_timing``). All nullable: rows written before
batching read None (``batch_size`` None means 1). A database adopted from before migrations
may have them already (the old add-columns-on-open code): only missing ones are added.

Revision ID: 0002_batching
Revises: 0001_baseline
Create Date: 2025-12-01
"""

from __future__ import annotations

import sqlalchemy as sa

from agentsim.migrations import add_columns, drop_columns

revision = "0002_batching"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

COLUMNS: dict[str, list[tuple[str, sa.types.TypeEngine]]] = {
    "run": [("batch_size", sa.Integer())],
    "hop": [
        ("batch_n", sa.Integer()),
        ("batch_share", sa.Float()),
        ("batch_wall_s", sa.Float()),
        ("batch_prefill_s", sa.Float()),
        ("batch_decode_s", sa.Float()),
        ("batch_timing", sa.String()),
    ],
}


def upgrade() -> None:
    add_columns(COLUMNS)


def downgrade() -> None:
    drop_columns(COLUMNS)
