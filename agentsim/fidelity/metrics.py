"""One hop's fidelity figures from two teacher-forced score arrays (exact) or two sets of top-k
logprobs (an estimate with a tail bucket)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


def topk_hop_metrics(ref: Sequence[dict[Any, float]], rung: Sequence[dict[Any, float]],
                     token_ids: Sequence[Any]) -> HopMetrics:
    """The top-k estimate (a server's ``logprobs``): at each position the tokens that *both*
    sides list keep their own probabilities, and everything else is one tail bucket on each side
    holding the rest of its mass (1 - the listed tokens' sum). That is the KL divergence of a
    coarser partition of the same two distributions, so it never exceeds the exact figure and
    grows towards it as k grows (it equals it once every token with mass is listed: data
    processing). Same top: the top listed token of each side; delta-p: of the reference's token,
    0 where a side does not list it. Stored with status ``topk``, shown as an estimate."""
    if len(ref) != len(rung) or len(ref) != len(token_ids) or not ref:
        raise ValueError("top-k scores of different lengths")
    klds, same, dps, first = [], [], [], None
    for j, (a, b, t) in enumerate(zip(ref, rung, token_ids, strict=True)):
        both = [k for k in a if k in b]
        pa = [math.exp(a[k]) for k in both]
        pb = [math.exp(b[k]) for k in both]
        tail_a = max(0.0, 1.0 - sum(pa))
        tail_b = max(0.0, 1.0 - sum(pb))
        kl = sum(x * (math.log(x) - math.log(y)) for x, y in zip(pa, pb, strict=True) if x > 0)
        if tail_a > 1e-15:
            kl += tail_a * (math.log(tail_a) - math.log(max(tail_b, 1e-300)))
        klds.append(max(0.0, kl))
        ta = max(a, key=a.__getitem__) if a else None
        tb = max(b, key=b.__getitem__) if b else None
        same.append(ta == tb)
        if ta != tb and first is None:
            first = j
        dps.append((math.exp(a[t]) if t in a else 0.0) - (math.exp(b[t]) if t in b else 0.0))
    k = np.asarray(klds)
    d = np.asarray(dps)
    return HopMetrics(len(k), float(k.mean()), float(k.max()), int(k.argmax()), float(np.mean(same)),
                      float(d.mean()), float(np.sqrt((d ** 2).mean())), first, float(k.sum()))
