"""Reading fidelity back: a run's pooled figures with their interval, flips against a reference,
and what is shown beside accuracy (with the noise floor)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentsim.fidelity_tables import fidelity_passes, fidelity_rows
from agentsim.result import Result
from agentsim.store import RunRead, Store, batch_size_of

from .passes import default_reference, floor_partner, same_rung

__all__ = ["FidelitySummary", "fidelity_summary", "Flips", "flips", "FloorFigure", "RunFidelity", "MeasuredFloor",
           "run_figures", "flat_figures", "flips_cell", "kld_cell", "estimate_label", "measured_floors", "floor_text", "floor_of"]


# --------------------------------------------------------------------------------------------
# reading it back


@dataclass(frozen=True)
class FidelitySummary(Result):
    """A run's fidelity against one reference, pooled over its compared hops."""

    run_id: int
    reference_run_id: int
    kind: str  # exact | topk | unavailable
    hops: int
    compared: int
    diverged: int
    unavailable: int
    positions: int
    kld_mean: float | None  # pooled over positions
    kld_ci95: list[float] | None  # bootstrap over instances
    same_top: float | None
    delta_p_rms: float | None
    parted_hops: int  # compared hops whose top tokens differed somewhere
    seconds: float | None
    layout: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def estimate_label(self) -> str:
        """What a figure must say about how it was computed: ``""`` for exact figures,
        ``"top-k estimate (k=20)"`` for a server's top-k lists."""
        if self.kind != "topk":
            return ""
        k = (self.layout or {}).get("top_k")
        return f"top-k estimate (k={k})" if k else "top-k estimate"


def fidelity_summary(store: Store, run_id: int, reference_id: int | None = None, *,
                     resamples: int = 2000, seed: int = 0) -> FidelitySummary | None:
    """The stored fidelity of ``run_id`` (against ``reference_id``, default: the newest pass),
    or None when it has none. The interval of the mean KLD is a percentile bootstrap over
    instances (hops of one instance are resampled together)."""
    passes = fidelity_passes(store, run_id)
    if reference_id is not None:
        passes = [p for p in passes if p.reference_run_id == int(reference_id)]
    if not passes:
        return None
    ps = passes[-1]
    rows = fidelity_rows(store, run_id, ps.reference_run_id)
    comp = [r for r in rows if r.status in ("exact", "topk")]
    reasons: dict[str, int] = {}
    for r in rows:
        if r.status not in ("exact", "topk"):
            reasons[r.reason or r.status] = reasons.get(r.reason or r.status, 0) + 1
    kinds = {r.status for r in comp}
    kind = "topk" if "topk" in kinds else ("exact" if kinds else "unavailable")
    pos = sum(r.positions or 0 for r in comp)
    kld = same = dprms = None
    ci = None
    if comp and pos:
        k_sum = np.array([(r.kld_mean or 0.0) * (r.positions or 0) for r in comp])
        n_pos = np.array([r.positions or 0 for r in comp], dtype=float)
        kld = float(k_sum.sum() / n_pos.sum())
        same = float(sum((r.same_top or 0.0) * (r.positions or 0) for r in comp) / pos)
        dprms = float(math.sqrt(sum((r.delta_p_rms or 0.0) ** 2 * (r.positions or 0) for r in comp) / pos))
        ci = _bootstrap_ratio([r.instance_index for r in comp], k_sum, n_pos, resamples, seed)
    return FidelitySummary(
        run_id=run_id, reference_run_id=ps.reference_run_id, kind=kind, hops=len(rows), compared=len(comp),
        diverged=sum(1 for r in rows if r.status == "diverged"),
        unavailable=sum(1 for r in rows if r.status == "unavailable"), positions=pos, kld_mean=kld,
        kld_ci95=ci, same_top=same, delta_p_rms=dprms,
        parted_hops=sum(1 for r in comp if r.parted_at is not None), seconds=ps.seconds,
        layout=dict(ps.layout or {}), note=ps.note, reasons=reasons)


def _bootstrap_ratio(clusters: list[int], num: np.ndarray, den: np.ndarray, resamples: int,
                     seed: int) -> list[float] | None:
    keys = sorted(set(clusters))
    if len(keys) < 2:
        return None
    pos = {k: i for i, k in enumerate(keys)}
    cn = np.zeros(len(keys))
    cd = np.zeros(len(keys))
    for c, a, b in zip(clusters, num, den, strict=True):
        cn[pos[c]] += a
        cd[pos[c]] += b
    rng = np.random.default_rng(seed)
    draw = rng.integers(0, len(keys), size=(resamples, len(keys)))
    n, d = cn[draw].sum(axis=1), cd[draw].sum(axis=1)
    vals = n[d > 0] / d[d > 0]
    if not vals.size:
        return None
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return [float(lo), float(hi)]


@dataclass(frozen=True)
class Flips(Result):
    """Answers that changed against the reference run, instance by instance (task success) and
    hop by hop (model hops): right -> wrong and wrong -> right; ``task_flips`` and ``hop_flips``
    are their sums (computed, and written to the JSON after the counts)."""

    run_id: int
    reference_run_id: int
    tasks_paired: int
    task_right_to_wrong: int
    task_wrong_to_right: int
    hops_paired: int
    hop_right_to_wrong: int
    hop_wrong_to_right: int
    task_flips: int = field(init=False)
    hop_flips: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "task_flips", self.task_right_to_wrong + self.task_wrong_to_right)
        object.__setattr__(self, "hop_flips", self.hop_right_to_wrong + self.hop_wrong_to_right)


def flips(store: Store, run_id: int, reference_id: int) -> Flips:
    """Flips of ``run_id`` against ``reference_id``, paired by instance index (and hop id)."""
    a = {i.index: i.success for i in store.instances(run_id) if i.finished}
    b = {i.index: i.success for i in store.instances(reference_id) if i.finished}
    keys = sorted(set(a) & set(b))
    rw = sum(1 for k in keys if b[k] and not a[k])
    wr = sum(1 for k in keys if a[k] and not b[k])
    cols = ["instance_index", "hop_id", "correct", "kind"]
    ha = {(r["instance_index"], r["hop_id"]): bool(r["correct"]) for r in store.hop_rows([run_id], cols)
          if r["kind"] != "tool"}
    hb = {(r["instance_index"], r["hop_id"]): bool(r["correct"]) for r in store.hop_rows([reference_id], cols)
          if r["kind"] != "tool"}
    hk = set(ha) & set(hb)
    return Flips(run_id, reference_id, len(keys), rw, wr, len(hk),
                 sum(1 for k in hk if hb[k] and not ha[k]), sum(1 for k in hk if ha[k] and not hb[k]))


# --------------------------------------------------------------------------------------------
# the figures shown beside accuracy


@dataclass(frozen=True)
class FloorFigure(Result):
    """A run's noise floor against one run of the *same rung* at another batch size or spec: the
    flips between them and the stored pass (None: not computed)."""

    against_run_id: int
    against_batch: int
    against_backend: str
    batch: int
    flips: Flips
    fidelity: FidelitySummary | None


@dataclass(frozen=True)
class RunFidelity(Result):
    """What is shown beside a run's accuracy (:func:`run_figures`): its reference run (None: it
    is the top rung), the flips against it and its fidelity (None: no reference, or no pass; a
    pass against another rung names its own ``fidelity.reference_run_id``), and its noise floors."""

    reference_run_id: int | None
    flips: Flips | None = None
    fidelity: FidelitySummary | None = None
    floor: tuple[FloorFigure, ...] = ()

    @property
    def first_floor(self) -> FloorFigure | None:
        """The floor shown beside the run (the first: a stored pass, else its batch-1 partner)."""
        return self.floor[0] if self.floor else None

    @property
    def own_floor_kld(self) -> float | None:
        """The mean KLD of the run's own floor, where measured."""
        fl = self.first_floor
        return fl.fidelity.kld_mean if fl is not None and fl.fidelity is not None else None


@dataclass(frozen=True)
class MeasuredFloor(Result):
    """One noise floor measured among the runs shown (:func:`measured_floors`): the run, the same
    rung it was held against, its KLD and flips."""

    run_id: int
    against_run_id: int
    batch: int
    against_batch: int
    kld_mean: float
    kld_ci95: list[float] | None
    same_top: float | None
    hop_flips: int
    hops_paired: int
    task_flips: int
    tasks_paired: int


def run_figures(store: Store, run: RunRead | int, reference_id: int | None = None) -> RunFidelity:
    """What is shown beside a run's accuracy: its reference run, the flips against it, its
    fidelity against it (when a pass was stored), and its noise floor -- every stored pass of
    this run against the *same rung* at another batch size or spec, and the flips between them.
    ``reference_id``: the reference (default: the newest pass's, else the top rung of its group)."""
    run = store.get_run(run) if isinstance(run, int) else run
    passes = fidelity_passes(store, run.id)
    runs = {r.id: r for r in store.list_runs()}
    rung_passes = [p for p in passes if p.reference_run_id in runs and not same_rung(runs[p.reference_run_id], run)]
    if reference_id is None:
        if rung_passes:
            reference_id = rung_passes[-1].reference_run_id
        else:
            ref = default_reference(store, run)
            reference_id = ref.id if ref is not None else None
    fl: Flips | None = None
    fs: FidelitySummary | None = None
    if reference_id is not None and int(reference_id) != run.id:
        fl = flips(store, run.id, int(reference_id))
        fs = fidelity_summary(store, run.id, int(reference_id))
        if fs is None and rung_passes:
            # no pass against this reference (e.g. the verdicts' baseline is the top rung at
            # another batch size): the newest pass against another rung, which names its own
            # reference (``fidelity.reference_run_id``) -- renderers say "vs run N"
            fs = fidelity_summary(store, run.id, rung_passes[-1].reference_run_id)
    floor_ids = [p.reference_run_id for p in passes if p.reference_run_id in runs
                 and same_rung(runs[p.reference_run_id], run)]
    partner = floor_partner(store, run)
    if partner is not None and partner.id not in floor_ids:
        floor_ids.append(partner.id)
    floor = tuple(FloorFigure(against_run_id=fid, against_batch=batch_size_of(runs[fid]),
                              against_backend=runs[fid].backend, batch=batch_size_of(run),
                              flips=flips(store, run.id, fid), fidelity=fidelity_summary(store, run.id, fid))
                  for fid in dict.fromkeys(floor_ids))
    return RunFidelity(reference_run_id=reference_id, flips=fl, fidelity=fs, floor=floor)


def flat_figures(fig: RunFidelity) -> dict[str, Any]:
    """:func:`run_figures` as flat columns (``to_pandas()``)."""
    f, d, floor = fig.flips, fig.fidelity, fig.first_floor
    ci = (d.kld_ci95 if d else None) or [None, None]
    ff = floor.flips if floor else None
    fd = floor.fidelity if floor else None
    return {
        "reference_run_id": fig.reference_run_id,
        "flips_task_right_to_wrong": f.task_right_to_wrong if f else None,
        "flips_task_wrong_to_right": f.task_wrong_to_right if f else None,
        "flips_hop_right_to_wrong": f.hop_right_to_wrong if f else None,
        "flips_hop_wrong_to_right": f.hop_wrong_to_right if f else None,
        "fidelity_kind": d.kind if d else None,
        "kld_mean": d.kld_mean if d else None,
        "kld_ci95_low": ci[0],
        "kld_ci95_high": ci[1],
        "same_top": d.same_top if d else None,
        "delta_p_rms": d.delta_p_rms if d else None,
        "fidelity_hops_compared": d.compared if d else None,
        "fidelity_hops_diverged": d.diverged if d else None,
        "floor_run_id": floor.against_run_id if floor else None,
        "floor_hop_flips": ff.hop_flips if ff else None,
        "floor_task_flips": ff.task_flips if ff else None,
        "floor_kld_mean": fd.kld_mean if fd else None,
        "floor_same_top": fd.same_top if fd else None,
    }


def flips_cell(fig: RunFidelity) -> str:
    """A run's task flips against its reference as a table cell: ``-3 +1`` (right -> wrong, wrong ->
    right), with its first noise floor's task flips, ``-3 +1 (floor 0)``; ``-`` without flips."""
    f, floor = fig.flips, fig.first_floor
    if f is None:
        return "-"
    return f"-{f.task_right_to_wrong} +{f.task_wrong_to_right}" + (f" (floor {floor.flips.task_flips})" if floor else "")


def kld_cell(fig: RunFidelity, *, interval: bool = True) -> str:
    """A run's mean KLD as a table cell: the value (and its interval), how it was estimated, and
    ``vs rN`` when the pass was against another run than the reference; ``-`` without one."""
    d = fig.fidelity
    if d is None or d.kld_mean is None:
        return "-"
    ci = d.kld_ci95 if interval else None
    return (f"{d.kld_mean:.3g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")
            + (f" {d.estimate_label}" if d.estimate_label else "")
            + (f" vs r{d.reference_run_id}" if d.reference_run_id != fig.reference_run_id else ""))


def estimate_label(d: FidelitySummary | None) -> str:
    """What a figure of ``d`` must say about how it was computed (``""`` for none or exact figures;
    :attr:`FidelitySummary.estimate_label`)."""
    return d.estimate_label if d is not None else ""


def measured_floors(figs: Mapping[Any, RunFidelity | None]) -> list[MeasuredFloor]:
    """Every noise floor measured among these runs' figures (:func:`run_figures` by run id):
    the run, the same rung it was held against (other batch size or spec), its KLD and flips.
    Largest KLD first: the conservative floor to hold other rungs against."""
    out = [MeasuredFloor(run_id=int(rid), against_run_id=fl.against_run_id, batch=fl.batch,
                         against_batch=fl.against_batch, kld_mean=fl.fidelity.kld_mean,
                         kld_ci95=fl.fidelity.kld_ci95, same_top=fl.fidelity.same_top,
                         hop_flips=fl.flips.hop_flips, hops_paired=fl.flips.hops_paired,
                         task_flips=fl.flips.task_flips, tasks_paired=fl.flips.tasks_paired)
           for rid, fig in (figs or {}).items() if fig is not None
           for fl in fig.floor if fl.fidelity is not None and fl.fidelity.kld_mean is not None]
    return sorted(out, key=lambda x: -x.kld_mean)


def floor_text(fl: MeasuredFloor) -> str:
    """One measured floor in words: ``KLD 1.5e-05 [0, 3.3e-05], 0 of 36 hops flipped (run 12 at
    batch 8 against run 21 at batch 1)``."""
    ci = fl.kld_ci95
    return (f"KLD {fl.kld_mean:.3g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")
            + f", {fl.hop_flips} of {fl.hops_paired} hops flipped (run {fl.run_id} at batch "
            f"{fl.batch} against run {fl.against_run_id} at batch {fl.against_batch})")


def floor_of(fig: RunFidelity | None, floors: list[MeasuredFloor]) -> tuple[float | None, bool]:
    """The floor a run's KLD stands beside: its own (the same rung at batch 1) where measured,
    else the largest one measured among the runs shown (``own`` False: another rung's)."""
    own = fig.own_floor_kld if fig is not None else None
    if own is not None:
        return float(own), True
    return (float(floors[0].kld_mean), False) if floors else (None, False)
