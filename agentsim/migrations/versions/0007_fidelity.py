"""fidelity: hop_fidelity (per-hop aggregates of a teacher-forced pass) and fidelity_pass

A run's fidelity against a reference run (agentsim.fidelity): one row per model hop with the
mean KL divergence over its completion positions, the share of positions with the same top
token, the reference token's delta-p and where the distributions parted; one row per pass with
its method, layout and seconds. New tables only: nothing stored before is touched.

Revision ID: 0007_fidelity
Revises: 0006_hop_stop_reason
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_fidelity"
down_revision = "0006_hop_stop_reason"
branch_labels = None
depends_on = None


def upgrade() -> None:
    insp = sa.inspect(op.get_bind())
    if not insp.has_table("hop_fidelity"):
        op.create_table(
            "hop_fidelity",
            sa.Column("run_id", sa.Integer(), sa.ForeignKey("run.id"), nullable=False),
            sa.Column("reference_run_id", sa.Integer(), sa.ForeignKey("run.id"), nullable=False),
            sa.Column("instance_index", sa.Integer(), nullable=False),
            sa.Column("hop_id", sa.String(), nullable=False),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("reason", sa.String(), nullable=True),
            sa.Column("positions", sa.Integer(), nullable=True),
            sa.Column("kld_mean", sa.Float(), nullable=True),
            sa.Column("kld_max", sa.Float(), nullable=True),
            sa.Column("kld_max_at", sa.Integer(), nullable=True),
            sa.Column("same_top", sa.Float(), nullable=True),
            sa.Column("delta_p_mean", sa.Float(), nullable=True),
            sa.Column("delta_p_rms", sa.Float(), nullable=True),
            sa.Column("parted_at", sa.Integer(), nullable=True),
            sa.Column("id", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("run_id", "reference_run_id", "instance_index", "hop_id", name="uq_hop_fidelity"),
        )
    if not insp.has_table("fidelity_pass"):
        op.create_table(
            "fidelity_pass",
            sa.Column("run_id", sa.Integer(), sa.ForeignKey("run.id"), nullable=False),
            sa.Column("reference_run_id", sa.Integer(), sa.ForeignKey("run.id"), nullable=False),
            sa.Column("method", sa.String(), nullable=False),
            sa.Column("seconds", sa.Float(), nullable=True),
            sa.Column("layout", sa.JSON(), nullable=True),
            sa.Column("note", sa.String(), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("id", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("run_id", "reference_run_id", name="uq_fidelity_pass"),
            sa.Index("ix_fidelity_pass_run_id", "run_id"),
        )


def downgrade() -> None:
    op.drop_table("fidelity_pass")
    op.drop_table("hop_fidelity")
