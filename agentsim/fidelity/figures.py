"""Reading fidelity back: a run's pooled figures with their interval, flips against a reference,
and what is shown beside accuracy (with the noise floor)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentsim.fidelity_tables import fidelity_passes, fidelity_rows
from agentsim.store import RunRead, Store, batch_size_of

from .passes import default_reference, floor_partner, same_rung

__all__ = ["FidelitySummary", "fidelity_summary", "Flips", "flips", "run_figures", "flat_figures"]


# --------------------------------------------------------------------------------------------
# reading it back


@dataclass(frozen=True)
class FidelitySummary:
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

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


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
class Flips:
    """Answers that changed against the reference run, instance by instance (task success) and
    hop by hop (model hops): right -> wrong and wrong -> right."""

    run_id: int
    reference_run_id: int
    tasks_paired: int
    task_right_to_wrong: int
    task_wrong_to_right: int
    hops_paired: int
    hop_right_to_wrong: int
    hop_wrong_to_right: int

    @property
    def task_flips(self) -> int:
        return self.task_right_to_wrong + self.task_wrong_to_right

    @property
    def hop_flips(self) -> int:
        return self.hop_right_to_wrong + self.hop_wrong_to_right

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "task_flips": self.task_flips, "hop_flips": self.hop_flips}


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


def run_figures(store: Store, run: RunRead | int, reference_id: int | None = None) -> dict[str, Any]:
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
    out: dict[str, Any] = {"reference_run_id": reference_id, "flips": None, "fidelity": None, "floor": []}
    if reference_id is not None and int(reference_id) != run.id:
        out["flips"] = flips(store, run.id, int(reference_id)).to_dict()
        fs = fidelity_summary(store, run.id, int(reference_id))
        if fs is None and rung_passes:
            # no pass against this reference (e.g. the verdicts' baseline is the top rung at
            # another batch size): the newest pass against another rung, which names its own
            # reference (``fidelity.reference_run_id``) -- renderers say "vs run N"
            fs = fidelity_summary(store, run.id, rung_passes[-1].reference_run_id)
        out["fidelity"] = fs.to_dict() if fs else None
    floor_ids = [p.reference_run_id for p in passes if p.reference_run_id in runs
                 and same_rung(runs[p.reference_run_id], run)]
    partner = floor_partner(store, run)
    if partner is not None and partner.id not in floor_ids:
        floor_ids.append(partner.id)
    for fid in dict.fromkeys(floor_ids):
        fs = fidelity_summary(store, run.id, fid)
        other = runs[fid]
        out["floor"].append({"against_run_id": fid, "against_batch": batch_size_of(other),
                             "against_backend": other.backend, "batch": batch_size_of(run),
                             "flips": flips(store, run.id, fid).to_dict(),
                             "fidelity": fs.to_dict() if fs else None})
    return out


def flat_figures(fig: dict[str, Any]) -> dict[str, Any]:
    """:func:`run_figures` as flat columns (``to_pandas()``)."""
    f = fig.get("flips") or {}
    d = fig.get("fidelity") or {}
    ci = d.get("kld_ci95") or [None, None]
    floor = (fig.get("floor") or [{}])[0] if fig.get("floor") else {}
    ff = floor.get("flips") or {}
    fd = floor.get("fidelity") or {}
    return {
        "reference_run_id": fig.get("reference_run_id"),
        "flips_task_right_to_wrong": f.get("task_right_to_wrong"),
        "flips_task_wrong_to_right": f.get("task_wrong_to_right"),
        "flips_hop_right_to_wrong": f.get("hop_right_to_wrong"),
        "flips_hop_wrong_to_right": f.get("hop_wrong_to_right"),
        "fidelity_kind": d.get("kind"),
        "kld_mean": d.get("kld_mean"),
        "kld_ci95_low": ci[0],
        "kld_ci95_high": ci[1],
        "same_top": d.get("same_top"),
        "delta_p_rms": d.get("delta_p_rms"),
        "fidelity_hops_compared": d.get("compared"),
        "fidelity_hops_diverged": d.get("diverged"),
        "floor_run_id": floor.get("against_run_id"),
        "floor_hop_flips": ff.get("hop_flips"),
        "floor_task_flips": ff.get("task_flips"),
        "floor_kld_mean": fd.get("kld_mean"),
        "floor_same_top": fd.get("same_top"),
    }


def estimate_label(d: dict[str, Any] | Any | None) -> str:
    """What a figure of ``d`` (a summary or its dict) must say about how it was computed:
    ``""`` for exact figures, ``"top-k estimate (k=20)"`` for a server's top-k lists."""
    if d is None:
        return ""
    get = d.get if isinstance(d, dict) else lambda k, default=None: getattr(d, k, default)
    if get("kind") != "topk":
        return ""
    k = (get("layout") or {}).get("top_k")
    return f"top-k estimate (k={k})" if k else "top-k estimate"


def measured_floors(figs: dict[Any, Any]) -> list[dict[str, Any]]:
    """Every noise floor measured among these runs' figures (:func:`run_figures` dicts by run id):
    the run, the same rung it was held against (other batch size or spec), its KLD and flips.
    Largest KLD first: the conservative floor to hold other rungs against."""
    out: list[dict[str, Any]] = []
    for rid, fig in (figs or {}).items():
        for fl in (fig or {}).get("floor") or []:
            fd = fl.get("fidelity") or {}
            if fd.get("kld_mean") is None:
                continue
            f = fl.get("flips") or {}
            out.append({"run_id": int(rid), "against_run_id": fl.get("against_run_id"), "batch": fl.get("batch"),
                        "against_batch": fl.get("against_batch"), "kld_mean": fd["kld_mean"],
                        "kld_ci95": fd.get("kld_ci95"), "same_top": fd.get("same_top"),
                        "hop_flips": f.get("hop_flips"), "hops_paired": f.get("hops_paired"),
                        "task_flips": f.get("task_flips"), "tasks_paired": f.get("tasks_paired")})
    return sorted(out, key=lambda x: -x["kld_mean"])


def floor_text(fl: dict[str, Any]) -> str:
    """One measured floor in words: ``KLD 1.5e-05 [0, 3.3e-05], 0 of 36 hops flipped (run 12 at
    batch 8 against run 21 at batch 1)``."""
    ci = fl.get("kld_ci95")
    return (f"KLD {fl['kld_mean']:.3g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")
            + f", {fl.get('hop_flips', 0)} of {fl.get('hops_paired', 0)} hops flipped (run {fl['run_id']} at batch "
            f"{fl.get('batch')} against run {fl['against_run_id']} at batch {fl.get('against_batch')})")


def floor_of(fig: dict[str, Any] | None, floors: list[dict[str, Any]]) -> tuple[float | None, bool]:
    """The floor a run's KLD stands beside: its own (the same rung at batch 1) where measured,
    else the largest one measured among the runs shown (``own`` False: another rung's)."""
    own = (((fig or {}).get("floor") or [{}])[0].get("fidelity") or {}).get("kld_mean") if (fig or {}).get("floor") else None
    if own is not None:
        return float(own), True
    return (float(floors[0]["kld_mean"]), False) if floors else (None, False)
