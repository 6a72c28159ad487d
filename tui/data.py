"""Read queries of the TUI: SQL aggregates and pages, never "all hops of all runs".

The runs list is one ``GROUP BY`` over the hop table and one over the instance table, so a
database with 100k hop rows opens in milliseconds; a trace loads the hops of one instance only.
Everything here takes a read-only :class:`~agentsim.store.Store` and returns read models or
plain dataclasses (never live ORM rows), so it is safe to call from thread workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import select

from agentsim.store import (
    HopRead,
    HopTrace,
    InstanceRead,
    InstanceRecord,
    Run,
    RunRead,
    Store,
)

__all__ = [
    "RunRow",
    "InstancePage",
    "run_rows",
    "get_run",
    "instance_page",
    "instance_hops",
    "instance_fidelity",
    "counterpart_run",
    "ERROR_STYLE",
    "ERROR_MARK",
    "energy_text",
]

#: the error kinds of a correct hop (the engine's attribution: right, or right despite a parent)
CORRECT_KINDS = ("none", "recovered")

#: colour of each error kind (the same everywhere in the UI)
ERROR_STYLE: dict[str, str] = {
    "none": "green",
    "recovered": "cyan",
    "local": "bold red",
    "propagated": "dark_orange",
    "parse": "magenta",
    "truncated": "yellow",
    "backend": "bold bright_red",
    "pending": "grey50",
}
#: a one-character mark per error kind, so outcomes read without colour too
ERROR_MARK: dict[str, str] = {
    "none": "✓",
    "recovered": "↺",
    "local": "✗",
    "propagated": "↓",
    "parse": "?",
    "truncated": "✂",
    "backend": "!",
    "pending": "·",
}


@dataclass(frozen=True)
class RunRow:
    """One line of the runs list: the run and its SQL-aggregated figures."""

    run: RunRead
    status: str
    hops_recorded: int
    correct: int
    instances_finished: int
    successes: int
    error_kinds: dict[str, int] = field(default_factory=dict)
    #: model hops recorded (``correct`` counts model hops right: the headline hop accuracy)
    model_hops: int = 0

    @property
    def hops_expected(self) -> int:
        return self.run.n_instances * self.run.hops_per_instance

    @property
    def accuracy(self) -> float | None:
        """Hop accuracy: model hops right / model hops (:mod:`agentsim.analysis.headline`)."""
        return self.correct / self.model_hops if self.model_hops else None

    @property
    def task_success(self) -> float | None:
        return self.successes / self.instances_finished if self.instances_finished else None

    def key(self) -> tuple[Any, ...]:
        """What changes while a run is written (to skip redrawing an unchanged table)."""
        return (self.run.id, self.status, self.hops_recorded, self.correct, self.instances_finished)


def run_rows(store: Store, *, limit: int = 1000) -> list[RunRow]:
    """The newest ``limit`` runs with hop and instance aggregates (three grouped queries in all)."""
    runs = store.list_runs(limit=limit)
    if not runs:
        return []
    ids = [r.id for r in runs]
    with store.session() as s:
        # error kinds per run (the headline counts come from agentsim.analysis.headline)
        hop_q = (
            select(HopTrace.run_id, HopTrace.error_kind, func.count())
            .where(HopTrace.run_id.in_(ids))  # type: ignore[attr-defined]
            .group_by(HopTrace.run_id, HopTrace.error_kind)
        )
        kinds: dict[int, dict[str, int]] = {}
        for run_id, kind, n in s.exec(hop_q).all():
            kinds.setdefault(int(run_id), {})[str(kind)] = int(n)
    from agentsim.analysis.headline import run_figures

    figs = run_figures(store, runs)
    out = []
    for r in runs:
        f = figs[r.id]
        out.append(RunRow(r, f.status, f.hops_recorded, f.model_hops_correct, f.instances_finished, f.successes,
                          kinds.get(r.id, {}), model_hops=f.model_hops))
    return out


def get_run(store: Store, run_id: int) -> RunRead | None:
    with store.session() as s:
        run = s.get(Run, run_id)
        return RunRead.model_validate(run) if run is not None else None


@dataclass(frozen=True)
class InstancePage:
    """A page of a run's instances (a run may have thousands; the UI shows a page at a time)."""

    run_id: int
    offset: int
    total: int
    failed_only: bool
    items: list[InstanceRead]


def instance_page(store: Store, run_id: int, *, offset: int = 0, limit: int = 200,
                  failed_only: bool = False) -> InstancePage:
    with store.session() as s:
        cond = [InstanceRecord.run_id == run_id]
        if failed_only:
            cond.append(InstanceRecord.success == False)  # noqa: E712 - SQL expression
        total = int(s.exec(select(func.count()).select_from(InstanceRecord).where(*cond)).one())
        q = select(InstanceRecord).where(*cond).order_by(InstanceRecord.index).offset(offset).limit(limit)  # type: ignore[arg-type]
        items = [InstanceRead.model_validate(r) for r in s.exec(q).all()]
    return InstancePage(run_id, offset, total, failed_only, items)


def instance_hops(store: Store, run_id: int, index: int) -> list[HopRead]:
    """The recorded hops of one instance, in topological order."""
    return store.hops(run_id, index)


def instance_fidelity(store: Store, run_id: int, index: int) -> dict[str, Any]:
    """One instance's per-hop fidelity rows (agentsim.fidelity) by hop id, from the newest pass
    of the run against another rung (a noise-floor pass against its own rung only where there is
    no other); empty when none was computed."""
    from agentsim.fidelity_tables import fidelity_passes, fidelity_rows

    passes = fidelity_passes(store, run_id)
    if not passes:
        return {}
    run = store.get_run(run_id)
    others = [p for p in passes if store.get_run(p.reference_run_id).precision != run.precision]
    ref = (others or passes)[-1].reference_run_id
    return {r.hop_id: r for r in fidelity_rows(store, run_id, ref, index)}


def counterpart_run(store: Store, run: RunRead) -> RunRead | None:
    """The same scenario and backend in the other mode (free <-> oracle), same batch first.

    Runs launched together (``--mode both``) share ``Run.launch_id``; without a shared batch the
    newest run with the same scenario fingerprint, backend, seed and the other mode is used.
    """
    other = "oracle" if run.mode == "free" else "free"
    with store.session() as s:
        base = select(Run).where(
            Run.scenario_fingerprint == run.scenario_fingerprint,
            Run.backend == run.backend,
            Run.mode == other,
            Run.seed == run.seed,
        )
        if run.launch_id:
            hit = s.exec(base.where(Run.launch_id == run.launch_id).order_by(Run.id.desc())).first()  # type: ignore[union-attr]
            if hit is not None:
                return RunRead.model_validate(hit)
        hit = s.exec(base.order_by(Run.id.desc())).first()  # type: ignore[union-attr]
        return RunRead.model_validate(hit) if hit is not None else None


def energy_text(joules: float | None, kind: str | None, source: str | None = None) -> str:
    """Energy with its kind, always: an estimate is never shown as a measurement."""
    kind = kind or "unavailable"
    if kind == "unavailable" or joules is None:
        return "unavailable" if kind in ("unavailable", None) else f"- ({kind})"
    src = f", {source}" if source else ""
    return f"{joules:.3g} J ({kind}{src})"
