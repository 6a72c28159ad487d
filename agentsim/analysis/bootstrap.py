"""Seeded cluster bootstrap over instances, and the interval rules every figure shares.

Resampling instances (not hops) keeps the hops of one instance together, so intervals account
for the correlation between them (a wrong hop makes its children wrong in free mode). Paired
comparisons draw *one* set of instance weights and apply it to both runs.

Rules (see docs/statistics.md):

- percentile interval of the resampled statistic (Efron & Tibshirani 1993, ch. 13);
- resamples where a ratio is undefined (zero denominator) are dropped and counted; more than
  10 % undefined gives no interval;
- the interval always contains the point estimate (in rare discrete cases a percentile interval
  does not; it is then extended to the point, and ``extended_to_point`` says so);
- a resampling distribution with no spread, for two *different* runs, is not certainty: the
  caller replaces it by the zero-discordance bound (:func:`zero_discordance_bound`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_RESAMPLES", "DEFAULT_SEED", "weights", "percentile_ci", "ratio_of_sums",
    "zero_discordance_bound", "wilson", "wilson_clustered", "Z95",
]

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 20_240_601
Z95 = 1.959963984540054


def weights(m: int, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """(resamples x m) multinomial counts: how often each instance is drawn in each resample."""
    if m == 0:
        return np.zeros((resamples, 0))
    rng = np.random.Generator(np.random.PCG64(seed))
    return rng.multinomial(m, np.full(m, 1.0 / m), size=resamples).astype(float)


def ratio_of_sums(w: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Σ w·num / Σ w·den per resample (nan where the denominator is 0)."""
    n = w @ num
    d = w @ den
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 0, n / np.where(d > 0, d, 1.0), np.nan)


def percentile_ci(replicates: np.ndarray, point: float | None, level: float = 0.95,
                  max_undefined: float = 0.10) -> dict[str, Any]:
    """Percentile interval of bootstrap replicates, containing ``point``.

    Returns ``{"ci": [lo, hi] | None, "se": sd of replicates, "undefined": share of undefined
    resamples, "spread": bool, "extended_to_point": bool}``.
    """
    reps = np.asarray(replicates, dtype=float)
    finite = reps[np.isfinite(reps)]
    undefined = 1.0 - finite.size / reps.size if reps.size else 1.0
    out: dict[str, Any] = {"ci": None, "se": None, "undefined": round(undefined, 4), "spread": False,
                           "extended_to_point": False}
    if point is None or not math.isfinite(point) or finite.size == 0 or undefined > max_undefined:
        return out
    alpha = 1 - level
    lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    lo, hi = float(lo), float(hi)
    if not lo <= point <= hi:
        out["extended_to_point"] = True
        lo, hi = min(lo, point), max(hi, point)
    out["ci"] = [lo, hi]
    out["se"] = float(np.std(finite, ddof=1)) if finite.size > 1 else 0.0
    out["spread"] = bool(np.ptp(finite) > 1e-12)
    return out


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion (Wilson 1927). None when n == 0."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p) / n + z * z / (4 * n * n))) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def zero_discordance_bound(m: int, z: float = Z95) -> float:
    """Upper 95 % bound on the share of instances on which two runs differ, when none did.

    The Wilson upper bound for 0 of ``m`` (≈ 3.84 / (m + 3.84)); for task success at 100 % vs
    100 % this equals Newcombe's (1998) method-10 interval for a paired difference, ±bound.
    """
    if m <= 0:
        return 1.0
    w = wilson(0, m, z)
    return w[1] if w else 1.0


def wilson_clustered(correct: np.ndarray, n: np.ndarray, z: float = Z95) -> dict[str, Any] | None:
    """Wilson interval of Σcorrect/Σn with the hops of one instance treated as a cluster.

    The effective sample size is n / design effect, the design effect being the ratio of the
    cluster (linearised ratio-estimator) variance to the binomial variance (Kish 1965; Korn &
    Graubard 1998 use it for Wilson/Clopper-Pearson intervals of survey proportions). It is capped
    at the number of hops; when every hop agrees (p = 0 or 1) the clustering cannot be estimated
    and the number of instances is used (conservative).
    """
    correct = np.asarray(correct, dtype=float)
    n = np.asarray(n, dtype=float)
    keep = n > 0
    correct, n = correct[keep], n[keep]
    m = int(correct.size)
    total = float(n.sum())
    if m == 0 or total == 0:
        return None
    p = float(correct.sum()) / total
    if m > 1 and 0 < p < 1:
        nbar = total / m
        resid = (correct - p * n) / nbar
        var_cluster = float(np.sum(resid ** 2)) / (m * (m - 1))
        n_eff = min(total, p * (1 - p) / var_cluster) if var_cluster > 0 else total
        n_eff = max(n_eff, 1.0)
    else:
        n_eff = float(m)
    lo, hi = wilson(p * n_eff, n_eff, z) or (0.0, 1.0)
    return {"value": p, "ci95": [lo, hi], "n_eff": n_eff, "design_effect": total / n_eff,
            "method": "wilson, clustered by instance (design effect)"}
