"""hop stop reason and input parents: why generation stopped, and the parents attribution used

``stop_reason``: why the backend stopped generating this hop's completion -- ``eos`` (end of
turn / end-of-generation token), ``stop`` (a stop sequence), ``grammar`` (the grammar admitted
nothing more), ``length`` (the token budget). None: not an LLM hop, or a backend that cannot
tell. A wrong answer cut by the budget is the error kind ``truncated`` (issue 27).

``inputs``: the parents the hop's error attribution used (its expected answer's inputs, per
instance where the hop declares ``inputs``), beside ``parents`` (its ``depends_on``). Rows written
before this revision read None for both (for them, read ``parents``).

Revision ID: 0006_hop_stop_reason
Revises: 0005_hop_sources
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa

from agentsim.migrations import add_columns, drop_columns

revision = "0006_hop_stop_reason"
down_revision = "0005_hop_sources"
branch_labels = None
depends_on = None

COLUMNS: dict[str, list[tuple[str, sa.types.TypeEngine]]] = {
    "hop": [("stop_reason", sa.String()), ("inputs", sa.JSON())],
}


def upgrade() -> None:
    add_columns(COLUMNS)


def downgrade() -> None:
    drop_columns(COLUMNS)
