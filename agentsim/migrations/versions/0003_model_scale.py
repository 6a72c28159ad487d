"""model scale: run.model_params (from the GGUF header) and run.model_bytes (file size)

Both nullable: runs written before read None.

Revision ID: 0003_model_scale
Revises: 0002_batching
Create Date: 2025-12-01
"""

from __future__ import annotations

import sqlalchemy as sa

from agentsim.migrations import add_columns, drop_columns

revision = "0003_model_scale"
down_revision = "0002_batching"
branch_labels = None
depends_on = None

COLUMNS = {"run": [("model_params", sa.Integer()), ("model_bytes", sa.Integer())]}


def upgrade() -> None:
    add_columns(COLUMNS)


def downgrade() -> None:
    drop_columns(COLUMNS)
