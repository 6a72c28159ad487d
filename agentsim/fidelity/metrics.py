"""One hop's fidelity figures from two teacher-forced score arrays (exact) or two sets of top-k
logprobs (an estimate with a tail bucket)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["HopMetrics", "hop_metrics", "topk_hop_metrics"]


# --------------------------------------------------------------------------------------------
# one hop


@dataclass(frozen=True)
class HopMetrics:
    """One hop's comparison of two teacher-forced score arrays."""

    positions: int
    kld_mean: float
    kld_max: float
    kld_max_at: int
    same_top: float
    delta_p_mean: float
    delta_p_rms: float
    parted_at: int | None
    kld_sum: float


def hop_metrics(ref_logprobs: np.ndarray, rung_logprobs: np.ndarray, token_ids: Sequence[int]) -> HopMetrics:
    """Exact full-vocabulary figures of one hop: ``ref_logprobs`` and ``rung_logprobs`` are
    ``[m, vocab]`` arrays of log-probabilities up to a constant per row (raw logits do: each row
    is normalised here, in float64) at the positions that predict ``token_ids`` (length m)."""
    lp = _log_softmax(ref_logprobs)
    lq = _log_softmax(rung_logprobs)
    if lp.shape != lq.shape or lp.ndim != 2 or lp.shape[0] != len(token_ids):
        raise ValueError(f"score shapes differ: reference {lp.shape}, rung {lq.shape}, {len(token_ids)} tokens")
    m = lp.shape[0]
    if m == 0:
        raise ValueError("no completion positions to compare")
    p = np.exp(lp)
    # KL(P || Q) = sum_x P(x) (log P(x) - log Q(x)); terms with P(x) = 0 contribute 0
    kld = np.where(p > 0, p * (lp - lq), 0.0).sum(axis=1)
    kld = np.maximum(kld, 0.0)  # rounding can leave -1e-17
    top_p, top_q = lp.argmax(axis=1), lq.argmax(axis=1)
    same = top_p == top_q
    idx = np.asarray(token_ids, dtype=np.int64)
    rows = np.arange(m)
    dp = p[rows, idx] - np.exp(lq[rows, idx])
    differ = np.flatnonzero(~same)
    return HopMetrics(
        positions=m,
        kld_mean=float(kld.mean()),
        kld_max=float(kld.max()),
        kld_max_at=int(kld.argmax()),
        same_top=float(same.mean()),
        delta_p_mean=float(dp.mean()),
        delta_p_rms=float(np.sqrt((dp ** 2).mean())),
        parted_at=int(differ[0]) if differ.size else None,
        kld_sum=float(kld.sum()),
    )


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64)
    if z.ndim != 2:
        return z
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def topk_hop_metrics(ref: Sequence[dict[int, float]], rung: Sequence[dict[int, float]],
                     token_ids: Sequence[int]) -> HopMetrics:
    """The top-k estimate (a server's ``logprobs``): each side's returned tokens plus one tail
    bucket holding the rest of its mass; a token one side lists and the other does not is in the
    other's tail. An estimate, stored with status ``topk``."""
    if len(ref) != len(rung) or len(ref) != len(token_ids) or not ref:
        raise ValueError("top-k scores of different lengths")
    klds, same, dps, first = [], [], [], None
    for j, (a, b, t) in enumerate(zip(ref, rung, token_ids, strict=True)):
        keys = sorted(set(a) | set(b))
        pa = {k: math.exp(a[k]) for k in a}
        pb = {k: math.exp(b[k]) for k in b}
        tail_a = max(1.0 - sum(pa.values()), 1e-12)
        tail_b = max(1.0 - sum(pb.values()), 1e-12)
        miss_a = [k for k in keys if k not in pa]
        miss_b = [k for k in keys if k not in pb]
        # a token missing on one side gets an equal part of that side's tail
        va = [pa.get(k, tail_a / (len(miss_a) + 1)) for k in keys] + [tail_a / (len(miss_a) + 1)]
        vb = [pb.get(k, tail_b / (len(miss_b) + 1)) for k in keys] + [tail_b / (len(miss_b) + 1)]
        klds.append(max(0.0, sum(x * (math.log(x) - math.log(y)) for x, y in zip(va, vb, strict=True) if x > 0)))
        ta = max(a, key=a.get) if a else None  # type: ignore[arg-type]
        tb = max(b, key=b.get) if b else None  # type: ignore[arg-type]
        same.append(ta == tb)
        if ta != tb and first is None:
            first = j
        dps.append(pa.get(t, 0.0) - pb.get(t, 0.0))
    k = np.asarray(klds)
    d = np.asarray(dps)
    return HopMetrics(len(k), float(k.mean()), float(k.max()), int(k.argmax()), float(np.mean(same)),
                      float(d.mean()), float(np.sqrt((d ** 2).mean())), first, float(k.sum()))
