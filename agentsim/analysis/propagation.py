"""Error propagation: where failure chains start, and how much a wrong parent hurts its child.

- root causes: for every failed instance, the hops where its failure chains started (the
  engine's attribution, ``InstanceRecord.root_causes``), counted by hop id and by hop kind;
- propagation factor (free mode only): among hops with at least one parent,
  P(child wrong | a parent wrong) / P(child wrong | all parents right), each probability with a
  Wilson interval clustered by instance, the factor and the difference with a cluster bootstrap.
  In oracle mode children never see a wrong parent output, so the factor is not defined there.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from .bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, ratio_of_sums, weights, wilson_clustered
from .data import RunData
from .paired import estimate
from .results import ClusteredEstimate, Propagation, RootCauses

__all__ = ["root_causes", "propagation_factor", "propagation"]


def root_causes(rd: RunData) -> RootCauses:
    kind_of: dict[str, str] = {}
    for (_, hop_id), r in rd.hops.items():
        kind_of.setdefault(hop_id, r["kind"])
    by_hop: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    failed = 0
    for inst in rd.by_key.values():
        if inst.success:
            continue
        failed += 1
        for h in inst.root_causes or []:
            by_hop[h] += 1
            by_kind[kind_of.get(h, "unknown")] += 1
    return RootCauses(failed, dict(by_hop.most_common()), dict(by_kind.most_common()))


def propagation_factor(rd: RunData, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The fields of :class:`.results.Propagation` but its root causes."""
    if rd.run.mode != "free":
        return {"applicable": False, "reason": "oracle mode: a child sees its parents' expected outputs"}
    keys = rd.keys
    pos = {k: i for i, k in enumerate(keys)}
    m = len(keys)
    wrong_pw, n_pw, wrong_pr, n_pr = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m)
    for (key, _), r in rd.hops.items():
        if not r["parents"]:
            continue
        i = pos[key]
        wrong = 0.0 if r["correct"] else 1.0
        if r["parents_ok"]:
            wrong_pr[i] += wrong
            n_pr[i] += 1
        else:
            wrong_pw[i] += wrong
            n_pw[i] += 1
    pw, pr = wilson_clustered(wrong_pw, n_pw), wilson_clustered(wrong_pr, n_pr)
    out: dict[str, Any] = {
        "applicable": True,
        "children": "hops with at least one parent",
        "hops_parent_wrong": int(n_pw.sum()),
        "hops_parents_right": int(n_pr.sum()),
        "p_wrong_given_parent_wrong": None if pw is None else ClusteredEstimate(**pw),
        "p_wrong_given_parents_right": None if pr is None else ClusteredEstimate(**pr),
        "factor": None,
        "difference": None,
    }
    if n_pw.sum() == 0 or n_pr.sum() == 0:
        out["reason"] = "no hop with a wrong parent" if n_pw.sum() == 0 else "no hop with right parents"
        return out
    w = weights(m, resamples, seed + 11)
    a = ratio_of_sums(w, wrong_pw, n_pw)
    b = ratio_of_sums(w, wrong_pr, n_pr)
    pa = float(wrong_pw.sum() / n_pw.sum())
    pb = float(wrong_pr.sum() / n_pr.sum())
    method = "cluster bootstrap over instances (percentile)"
    out["difference"] = estimate(pa - pb, a - b, method=method)
    if pb > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["factor"] = estimate(pa / pb, np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan), method=method)
    else:
        out["factor_reason"] = "no child was wrong with right parents: the factor is unbounded"
    return out


def propagation(rd: RunData, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> Propagation:
    return Propagation(root_causes=root_causes(rd), **propagation_factor(rd, resamples=resamples, seed=seed))
