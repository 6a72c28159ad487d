"""hop sources: where a hop's times and token counts came from, when the backend says per hop

A backend whose sources vary from hop to hop (the ``openai`` backend: the server's own timings
in one reply, client-side TTFT in the next; the server's usage, or one token per streamed
chunk) reports them on each completion; the hop keeps them (``timing_source``,
``tokens_source``). Nullable: rows written before, and backends whose sources are one fact
for the whole run (stored in ``run.backend_info``), read None.

Revision ID: 0005_hop_sources
Revises: 0004_scenario_label
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa

from agentsim.migrations import add_columns, drop_columns

revision = "0005_hop_sources"
down_revision = "0004_scenario_label"
branch_labels = None
depends_on = None

COLUMNS: dict[str, list[tuple[str, sa.types.TypeEngine]]] = {
    "hop": [("timing_source", sa.String()), ("tokens_source", sa.String())],
}


def upgrade() -> None:
    add_columns(COLUMNS)


def downgrade() -> None:
    drop_columns(COLUMNS)
