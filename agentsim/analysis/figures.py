"""Each figure of a run defined once: its numerator and denominator (per-instance sums), name and unit.

Every figure is a ratio of two sums over instances (task success = Σ successes / instances,
energy per correct task = Σ joules / Σ successes, ...), so its point value and its bootstrap
replicates come from the same two columns. The paired comparison (:mod:`.paired`), the trap
verdict and the scale axis (:mod:`.scale`) all read these definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .bootstrap import ratio_of_sums
from .data import InstanceTable

__all__ = ["FigureDef", "FIGURES", "SCALE_FIGURES"]


@dataclass(frozen=True)
class FigureDef:
    """One figure: Σ numerator / Σ denominator over instances."""

    name: str
    label: str
    unit: str
    numerator: Callable[[InstanceTable], np.ndarray | None]
    denominator: Callable[[InstanceTable], np.ndarray]
    defined: Callable[[InstanceTable], bool] = lambda t: True
    #: its name on the scale axis (``scale_analysis``'s JSON), where the scale axis draws it
    scale_name: str | None = None
    #: why it can be undefined for a run: (what the run lacks, the test), in the order they are said
    lacks: tuple[tuple[str, Callable[[InstanceTable], bool]], ...] = ()

    def lacking(self, t: InstanceTable) -> list[str]:
        """What ``t`` lacks for this figure (why it is undefined or zero), e.g. ``["no correct task"]``."""
        return [what for what, test in self.lacks if test(t)] or ["a zero or missing figure"]

    def columns(self, t: InstanceTable) -> tuple[np.ndarray, np.ndarray] | None:
        num = self.numerator(t)
        if num is None or not self.defined(t):
            return None
        return num, self.denominator(t)

    def point(self, t: InstanceTable) -> float | None:
        cols = self.columns(t)
        if cols is None:
            return None
        den = float(cols[1].sum())
        return float(cols[0].sum()) / den if den > 0 else None

    def reps(self, w: np.ndarray, t: InstanceTable) -> np.ndarray:
        cols = self.columns(t)
        if cols is None:
            raise ValueError(f"{self.name} is undefined for this table")
        return ratio_of_sums(w, cols[0], cols[1])


def _ones(t: InstanceTable) -> np.ndarray:
    return np.ones(t.m)


_NO_SUCCESS = ("no correct task", lambda t: float(t.success.sum()) == 0)
_NO_TIME = ("no recorded time", lambda t: float(t.wall_s.sum()) == 0)


FIGURES: dict[str, FigureDef] = {f.name: f for f in (
    FigureDef("model_hop_accuracy", "hop accuracy (model hops)", "share", lambda t: t.mh_correct, lambda t: t.mh_n),
    FigureDef("task_success", "task success", "share", lambda t: t.success, _ones, scale_name="task_success"),
    FigureDef("all_hop_accuracy", "all-hop accuracy (tool hops included)", "share",
              lambda t: t.all_correct, lambda t: t.hops_n),
    FigureDef("energy_per_correct_task_j", "energy per correct task", "J", lambda t: t.energy_j, lambda t: t.success,
              scale_name="energy_per_correct_task",
              lacks=(("no energy reading", lambda t: t.energy_j is None), _NO_SUCCESS)),
    FigureDef("seconds_per_correct_task", "seconds per correct task", "s", lambda t: t.wall_s, lambda t: t.success,
              scale_name="seconds_per_correct_task", lacks=(_NO_SUCCESS, _NO_TIME)),
    FigureDef("seconds_per_hop", "seconds per hop", "s", lambda t: t.wall_s, lambda t: t.hops_n, lacks=(_NO_TIME,)),
    FigureDef("seconds_per_task", "seconds per task", "s", lambda t: t.wall_s, _ones, lacks=(_NO_TIME,)),
    FigureDef("tokens_per_s", "decode tokens per second", "tokens/s", lambda t: t.tokens, lambda t: t.decode_s,
              defined=lambda t: t.has_tokens,
              lacks=(("no token count", lambda t: not t.has_tokens),
                     ("no decode time", lambda t: t.has_tokens and float(t.decode_s.sum()) == 0))),
)}

#: the scale axis's figures by their scale name (its order: ``agentsim.analysis.scale.METRICS``)
SCALE_FIGURES: dict[str, FigureDef] = {f.scale_name: f for f in FIGURES.values() if f.scale_name}
