"""The one home of a run's headline facts: its status, and its hop accuracy and task success.

Every view (``runs``, ``show``, ``compare``, ``report``, the TUI, the API and the end-of-run line)
reads these. **Hop accuracy is model-hop accuracy** (tool hops are deterministic calls, not the
model's work); the figure over every hop, tool hops included, is shown only under its own name,
"all-hop accuracy". Task success: finished instances whose every hop is right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentsim.store import RunRead, effective_status

__all__ = ["RunFigures", "run_status", "run_figures", "HOP_ACCURACY_NAME", "ALL_HOP_ACCURACY_NAME"]

HOP_ACCURACY_NAME = "hop accuracy (model hops)"
ALL_HOP_ACCURACY_NAME = "all-hop accuracy (tool hops included)"


def run_status(run: RunRead, hops_recorded: int) -> str:
    """``running`` only while its writer lives (else ``interrupted``); a run marked complete that
    recorded fewer hops than it expects is ``incomplete``."""
    status = effective_status(run)
    if status == "complete" and hops_recorded < run.n_instances * run.hops_per_instance:
        return "incomplete"
    return status


@dataclass(frozen=True)
class RunFigures:
    """Counts behind a run's headline figures (SQL-aggregated)."""

    run_id: int
    status: str
    hops_recorded: int
    hops_correct: int
    model_hops: int
    model_hops_correct: int
    instances_finished: int
    successes: int

    @property
    def hop_accuracy(self) -> float | None:
        """The headline: model hops right / model hops recorded."""
        return self.model_hops_correct / self.model_hops if self.model_hops else None

    @property
    def all_hop_accuracy(self) -> float | None:
        return self.hops_correct / self.hops_recorded if self.hops_recorded else None

    @property
    def task_success(self) -> float | None:
        return self.successes / self.instances_finished if self.instances_finished else None


def run_figures(store: Any, runs: Sequence[RunRead]) -> dict[int, RunFigures]:
    """The headline counts of many runs in two grouped queries."""
    from sqlalchemy import Integer, cast, func
    from sqlmodel import select

    from agentsim.store import HopTrace, InstanceRecord

    ids = [r.id for r in runs]
    hops: dict[int, list[int]] = {i: [0, 0, 0, 0] for i in ids}
    inst: dict[int, tuple[int, int]] = {}
    if ids:
        with store.session() as s:
            q = (select(HopTrace.run_id, HopTrace.kind, func.count(), func.sum(cast(HopTrace.correct, Integer)))
                 .where(HopTrace.run_id.in_(ids))  # type: ignore[attr-defined]
                 .group_by(HopTrace.run_id, HopTrace.kind))
            for rid, kind, n, ok in s.exec(q).all():
                h = hops[int(rid)]
                h[0] += int(n)
                h[1] += int(ok or 0)
                if kind != "tool":
                    h[2] += int(n)
                    h[3] += int(ok or 0)
            q2 = (select(InstanceRecord.run_id, func.count(), func.sum(cast(InstanceRecord.success, Integer)))
                  .where(InstanceRecord.run_id.in_(ids), InstanceRecord.finished == True)  # type: ignore[attr-defined]  # noqa: E712
                  .group_by(InstanceRecord.run_id))
            inst = {int(rid): (int(n), int(ok or 0)) for rid, n, ok in s.exec(q2).all()}
    out = {}
    for r in runs:
        h = hops[r.id]
        fin, ok = inst.get(r.id, (0, 0))
        out[r.id] = RunFigures(r.id, run_status(r, h[0]), h[0], h[1], h[2], h[3], fin, ok)
    return out
