"""baseline: the schema as it stood when migrations replaced add-columns-on-open

The run, instance and hop tables as agentsim created them before batching (commit a510e17).
A database written before migrations existed has these tables already and no
``alembic_version``: this revision adopts it, creating a missing table and adding any missing
nullable column of this schema (what the old add-columns-on-open code did), and leaves its rows
alone.

Revision ID: 0001_baseline
Revises:
Create Date: 2025-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def _str() -> sa.String:
    return sa.String()


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _run_table(meta: sa.MetaData) -> sa.Table:
    return sa.Table(
        "run", meta,
        sa.Column("scenario", _str(), nullable=False),
        sa.Column("scenario_ref", sa.JSON(), nullable=True),
        sa.Column("scenario_fingerprint", _str(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("backend", _str(), nullable=False),
        sa.Column("backend_name", _str(), nullable=False),
        sa.Column("model", _str(), nullable=True),
        sa.Column("precision", _str(), nullable=True),
        sa.Column("precision_mode", _str(), nullable=True),
        sa.Column("kernel", _str(), nullable=True),
        sa.Column("model_path", _str(), nullable=True),
        sa.Column("model_sha256", _str(), nullable=True),
        sa.Column("source_precision", _str(), nullable=True),
        sa.Column("backend_info", sa.JSON(), nullable=True),
        sa.Column("mode", _str(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("n_instances", sa.Integer(), nullable=False),
        sa.Column("hops_per_instance", sa.Integer(), nullable=False),
        sa.Column("status", _str(), nullable=False),
        sa.Column("error", _str(), nullable=True),
        sa.Column("batch", sa.String(), nullable=True),  # the launch id (its first name kept)
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("finished_at", _when(), nullable=True),
        sa.Column("machine", sa.JSON(), nullable=True),
        sa.Column("energy_meter", sa.JSON(), nullable=True),
        sa.Column("run_energy_j", sa.Float(), nullable=True),
        sa.Column("run_energy_kind", _str(), nullable=True),
        sa.Column("run_energy_source", _str(), nullable=True),
        sa.Column("run_energy_resolution_j", sa.Float(), nullable=True),
        sa.Column("run_energy_note", _str(), nullable=True),
        sa.Column("run_energy_hops", sa.Integer(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("host", _str(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.Index("ix_run_backend", "backend"),
        sa.Index("ix_run_batch", "batch"),
        sa.Index("ix_run_scenario", "scenario"),
    )


def _instance_table(meta: sa.MetaData) -> sa.Table:
    return sa.Table(
        "instance", meta,
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("vars", sa.JSON(), nullable=True),
        sa.Column("expected", sa.JSON(), nullable=True),
        sa.Column("system_prompt", _str(), nullable=True),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=True),
        sa.Column("final_correct", sa.Boolean(), nullable=True),
        sa.Column("root_causes", sa.JSON(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "index", name="uq_instance_run_index"),
        sa.Index("ix_instance_run_id", "run_id"),
    )


def _hop_table(meta: sa.MetaData) -> sa.Table:
    return sa.Table(
        "hop", meta,
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("instance_index", sa.Integer(), nullable=False),
        sa.Column("hop_id", _str(), nullable=False),
        sa.Column("topo_index", sa.Integer(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("kind", _str(), nullable=False),
        sa.Column("parents", sa.JSON(), nullable=True),
        sa.Column("prompt", _str(), nullable=True),
        sa.Column("completion", _str(), nullable=True),
        sa.Column("parsed", sa.JSON(), nullable=True),
        sa.Column("parse_error", _str(), nullable=True),
        sa.Column("expected", sa.JSON(), nullable=True),
        sa.Column("expected_given_inputs", sa.JSON(), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("correct_given_inputs", sa.Boolean(), nullable=True),
        sa.Column("parents_ok", sa.Boolean(), nullable=False),
        sa.Column("error_kind", _str(), nullable=False),
        sa.Column("error_detail", _str(), nullable=True),
        sa.Column("root_cause", sa.JSON(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("cached_tokens", sa.Integer(), nullable=True),
        sa.Column("prefill_s", sa.Float(), nullable=True),
        sa.Column("decode_s", sa.Float(), nullable=True),
        sa.Column("ttft_s", sa.Float(), nullable=True),
        sa.Column("wall_s", sa.Float(), nullable=True),
        sa.Column("energy_j", sa.Float(), nullable=True),
        sa.Column("energy_kind", _str(), nullable=False),
        sa.Column("energy_source", _str(), nullable=True),
        sa.Column("energy_resolution_j", sa.Float(), nullable=True),
        sa.Column("energy_note", _str(), nullable=True),
        sa.Column("energy_below_resolution", sa.Boolean(), nullable=True),
        sa.Column("peak_mem_bytes", sa.Integer(), nullable=True),
        sa.Column("peak_rss_bytes", sa.Integer(), nullable=True),
        sa.Column("peak_gpu_mem_bytes", sa.Integer(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "instance_index", "hop_id", name="uq_hop_run_instance_hop"),
        sa.Index("ix_hop_run_instance", "run_id", "instance_index"),
        sa.Index("ix_hop_run_kind", "run_id", "error_kind"),
    )


def upgrade() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    tables = [_run_table(meta), _instance_table(meta), _hop_table(meta)]
    insp = sa.inspect(bind)
    for table in tables:
        if not insp.has_table(table.name):
            table.create(bind)
            continue
        # adopted from before migrations: add the nullable columns it lacks
        have = {c["name"] for c in insp.get_columns(table.name)}
        missing = [c for c in table.columns if c.name not in have]
        if not missing:
            continue
        with op.batch_alter_table(table.name) as batch:
            for col in missing:
                if not col.nullable:
                    raise RuntimeError(f"database table {table.name} lacks the required column {col.name}: "
                                       "not written by agentsim")
                batch.add_column(sa.Column(col.name, col.type, nullable=True))


def downgrade() -> None:
    op.drop_table("hop")
    op.drop_table("instance")
    op.drop_table("run")
