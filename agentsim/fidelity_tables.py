"""The fidelity tables (agentsim.fidelity): one row of aggregates per hop against a reference run,
one row per pass; and their reads and writes on a :class:`agentsim.store.Store`.

They live beside the store, in its layer (the store module imports this one, so that
``SQLModel.metadata`` always holds them); the schema is created by migration 0007_fidelity.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel, select

__all__ = ["HopFidelity", "HopFidelityRead", "FidelityPass", "FidelityPassRead", "replace_fidelity",
           "fidelity_passes", "fidelity_rows"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class HopFidelityBase(SQLModel):
    """One hop's fidelity against the same hop of a reference run (agentsim.fidelity): aggregates
    of a teacher-forced pass, never the distributions themselves (about 150 bytes per hop)."""

    run_id: int = Field(foreign_key="run.id")
    reference_run_id: int = Field(foreign_key="run.id")
    instance_index: int
    hop_id: str
    #: exact (full vocabulary) | topk (estimate with a tail bucket) | diverged (inputs differ
    #: from the reference hop's: nothing computed) | unavailable (reason says why)
    status: str
    reason: str | None = None
    positions: int | None = None  # completion positions compared
    kld_mean: float | None = None  # mean KL(reference || rung) over them, nats
    kld_max: float | None = None
    kld_max_at: int | None = None
    same_top: float | None = None  # share of positions with the same most likely token
    delta_p_mean: float | None = None  # p_ref(t) - p_rung(t) of the reference's token t
    delta_p_rms: float | None = None
    parted_at: int | None = None  # first position whose top tokens differ (None: never)


class HopFidelity(HopFidelityBase, table=True):
    __tablename__ = "hop_fidelity"
    __table_args__ = (
        UniqueConstraint("run_id", "reference_run_id", "instance_index", "hop_id", name="uq_hop_fidelity"),
    )
    id: int | None = Field(default=None, primary_key=True)


class HopFidelityRead(HopFidelityBase):
    id: int


class FidelityPassBase(SQLModel):
    """One fidelity pass of a run against a reference: how it was computed and what it cost."""

    run_id: int = Field(foreign_key="run.id", index=True)
    reference_run_id: int = Field(foreign_key="run.id")
    method: str = ""
    seconds: float | None = None
    layout: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    note: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class FidelityPass(FidelityPassBase, table=True):
    __tablename__ = "fidelity_pass"
    __table_args__ = (UniqueConstraint("run_id", "reference_run_id", name="uq_fidelity_pass"),)
    id: int | None = Field(default=None, primary_key=True)


class FidelityPassRead(FidelityPassBase):
    id: int


def replace_fidelity(store: Any, run_id: int, reference_run_id: int, rows: list[dict[str, Any]], *,
                     method: str, seconds: float | None, layout: dict[str, Any] | None = None,
                     note: str | None = None) -> None:
    """Store one fidelity pass (its rows replace any earlier pass of the same pair), in one
    transaction."""
    ft = HopFidelity.__table__  # type: ignore[attr-defined]
    pt = FidelityPass.__table__  # type: ignore[attr-defined]
    cols = [c.name for c in ft.columns if c.name != "id"]
    values = [{c: r.get(c) for c in cols} | {"run_id": run_id, "reference_run_id": reference_run_id}
              for r in rows]
    with store.engine.begin() as conn:
        conn.execute(ft.delete().where(ft.c.run_id == run_id, ft.c.reference_run_id == reference_run_id))
        conn.execute(pt.delete().where(pt.c.run_id == run_id, pt.c.reference_run_id == reference_run_id))
        if values:
            conn.execute(ft.insert(), values)
        conn.execute(pt.insert(), {"run_id": run_id, "reference_run_id": reference_run_id, "method": method,
                                   "seconds": seconds, "layout": layout or {}, "note": note,
                                   "created_at": utcnow()})

def fidelity_passes(store: Any, run_id: int | None = None) -> list[FidelityPassRead]:
    """Fidelity passes (of one run, or all), oldest first."""
    with store.session() as s:
        q = select(FidelityPass).order_by(FidelityPass.id)  # type: ignore[arg-type]
        if run_id is not None:
            q = q.where(FidelityPass.run_id == run_id)
        return [FidelityPassRead.model_validate(r) for r in s.exec(q).all()]

def fidelity_rows(store: Any, run_id: int, reference_run_id: int | None = None,
                  instance_index: int | None = None) -> list[HopFidelityRead]:
    with store.session() as s:
        q = select(HopFidelity).where(HopFidelity.run_id == run_id)
        if reference_run_id is not None:
            q = q.where(HopFidelity.reference_run_id == reference_run_id)
        if instance_index is not None:
            q = q.where(HopFidelity.instance_index == instance_index)
        q = q.order_by(HopFidelity.instance_index, HopFidelity.id)  # type: ignore[arg-type]
        return [HopFidelityRead.model_validate(r) for r in s.exec(q).all()]
