"""The tests behind a verdict: exact McNemar and its exact power, non-inferiority, cost tests, Holm.

Every rule here is stated in docs/statistics.md ("Decisions"). In short:

- **loss** on the primary figure (task success): McNemar's exact test on the discordant
  instances, two-sided (:func:`mcnemar_exact`); the instances a future run would need are found
  by searching n for an *exact* power of at least 0.8 (:func:`exact_mcnemar_n`), not from the
  asymptotic formula (Connor 1987), which the exact test does not reach;
- **non-inferiority** of task success within a margin δ: Tango's (1998) score test for a paired
  difference of proportions, one-sided, H0: p_run − p_base ≤ −δ (:func:`paired_noninferiority`);
  it is well defined with no discordant instance (an identical rung), where a Wald test is not;
- **cost** (a ratio of sums per correct task): one-sided z tests on the log ratio with its paired
  bootstrap standard error: costlier (H0: ratio ≤ 1) and not costlier than the margin
  (H0: ratio ≥ 1 + m), with the lower side (H0: ratio ≤ 1/(1 + m)) for TOST equivalence;
- **multiplicity**: Holm's (1979) step-down adjustment over the hypotheses of one family
  (:func:`holm`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import stats

__all__ = ["mcnemar_exact", "exact_mcnemar_power", "exact_mcnemar_n", "paired_noninferiority",
           "noninferiority_n", "log_ratio_tests", "holm", "ALPHA", "POWER", "MAX_N"]

ALPHA = 0.05
POWER = 0.8
#: the largest sample size searched (beyond it: "more than MAX_N")
MAX_N = 200_000


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: ``b``, ``c`` = the two kinds of discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * stats.binom.cdf(min(b, c), n, 0.5)))


def _critical(k: np.ndarray, alpha: float) -> np.ndarray:
    """Per number of discordant pairs k, the largest x with 2·P(Bin(k, ½) ≤ x) ≤ alpha (−1: none)."""
    size = 1 << max(6, int(k.max(initial=0)).bit_length())
    return _critical_table(float(alpha), size)[k]


@lru_cache(maxsize=32)
def _critical_table(alpha: float, size: int) -> np.ndarray:
    k = np.arange(size)
    x = stats.binom.ppf(alpha / 2, k, 0.5).astype(int)
    # ppf gives the smallest x with cdf ≥ alpha/2; step back where that cdf exceeds alpha/2
    over = 2 * stats.binom.cdf(x, k, 0.5) > alpha * (1 + 1e-12)
    x = np.where(over, x - 1, x)
    return np.where(k > 0, x, -1)


def exact_mcnemar_power(n: int, p10: float, p01: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided exact McNemar test at level ``alpha`` with n instances.

    The number of discordant instances is Binomial(n, p10 + p01); given k of them, the split is
    Binomial(k, p10 / (p10 + p01)) and the test rejects when min(b, c) is at most the critical value.
    """
    psi = p10 + p01
    if n <= 0 or psi <= 0:
        return 0.0
    # the discordant counts that carry any probability (±12 SD; the rest is below 1e-30)
    mu, sd = n * psi, math.sqrt(max(n * psi * (1 - psi), 1e-12))
    k = np.arange(max(0, int(mu - 12 * sd) - 1), min(n, int(mu + 12 * sd) + 2) + 1)
    pk = stats.binom.pmf(k, n, min(1.0, psi))
    q = p10 / psi
    x = _critical(k, alpha)
    rej = np.where(x >= 0, stats.binom.cdf(x, k, q) + stats.binom.sf(k - x - 1, k, q), 0.0)
    # the two tails overlap only when x ≥ k/2, which the level excludes
    return float(np.sum(pk * np.minimum(rej, 1.0)))


@lru_cache(maxsize=4096)
def exact_mcnemar_n(p10: float, p01: float, alpha: float = ALPHA, power: float = POWER,
                    max_n: int = MAX_N) -> int | None:
    """The smallest n (searched) whose exact McNemar power is ≥ ``power`` for the observed split.

    Power is not monotone in n for a discrete test (a sawtooth); the search doubles n until the
    power is reached, bisects, then steps down while the power still holds, so the n returned has
    the power (checked at that n). None when there is no difference (p10 == p01) or beyond ``max_n``.
    """
    if abs(p10 - p01) < 1e-12 or p10 + p01 <= 0:
        return None
    # start below the asymptotic (Connor 1987) n, which the exact test needs a little more than
    delta, psi = p10 - p01, p10 + p01
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    guess = (za * math.sqrt(psi) + zb * math.sqrt(max(0.0, psi - delta * delta))) ** 2 / (delta * delta)
    if guess > 2 * max_n:
        return None
    hi = max(8, int(0.8 * guess))
    while exact_mcnemar_power(hi, p10, p01, alpha) < power:
        hi = int(hi * 1.25) + 1
        if hi > max_n:
            return None
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if exact_mcnemar_power(mid, p10, p01, alpha) >= power:
            hi = mid
        else:
            lo = mid
    n = hi
    while n > 1 and exact_mcnemar_power(n - 1, p10, p01, alpha) >= power:
        n -= 1
    return n


def _restricted_p01(b: int, c: int, n: int, delta: float) -> float:
    """Tango's restricted MLE of P(run wrong, baseline right) under H0: p10 − p01 = ``delta``.

    Maximises b·log(p01 + δ) + c·log(p01) + (n − b − c)·log(1 − 2·p01 − δ); the root of
    2n·q² + (−(b + c) + (2n − b + c)·δ)·q − c·δ·(1 − δ) = 0 (Tango 1998, with δ the difference
    run − baseline).
    """
    a = 2.0 * n
    bb = -(b + c) + (2.0 * n - b + c) * delta
    cc = -c * delta * (1.0 - delta)
    disc = max(0.0, bb * bb - 4 * a * cc)
    return (math.sqrt(disc) - bb) / (2 * a)


def paired_noninferiority(b: int, c: int, n: int, margin: float) -> float:
    """One-sided p of Tango's score test, H0: p_run − p_base ≤ −margin (b: run-only right, c: baseline-only)."""
    if n <= 0:
        return 1.0
    delta = -margin
    q = _restricted_p01(b, c, n, delta)
    var = (2.0 * q + delta - delta * delta) / n
    d = (b - c) / n
    if var <= 0:
        return 0.0 if d > delta else 1.0
    z = (d - delta) / math.sqrt(var)
    return float(stats.norm.sf(z))


def noninferiority_n(p10: float, p01: float, margin: float, alpha: float = ALPHA,
                     power: float = POWER) -> int | None:
    """Instances for Tango's test to show non-inferiority at the observed discordance (normal
    approximation: variance under H0 from the restricted estimate, under H1 from the observed
    split). None when the observed difference is not above −margin."""
    d = p10 - p01
    gap = d + margin
    if gap <= 1e-12:
        return None
    # the restricted estimate at the population level: the same root with counts scaled to 1
    q0 = _restricted_p01(p10 * 1e6, p01 * 1e6, 1_000_000, -margin)
    v0 = max(2 * q0 - margin - margin * margin, 1e-12)
    v1 = max(p10 + p01 - d * d, 0.0)
    za, zb = stats.norm.ppf(1 - alpha), stats.norm.ppf(power)
    n = ((za * math.sqrt(v0) + zb * math.sqrt(v1)) / gap) ** 2
    return int(math.ceil(n)) if n < MAX_N else None


def log_ratio_tests(ratio: float | None, se_log: float | None, margin: float,
                    df: int | None = None) -> dict[str, float | None]:
    """One-sided p-values for a cost ratio from its log and the SE of the log: Student's t with
    ``df`` degrees of freedom (the paired instances less one, as the interval uses), or the
    normal where ``df`` is not given.

    ``costlier``: H0 ratio ≤ 1; ``not_costlier``: H0 ratio ≥ 1 + margin; ``not_cheaper``:
    H0 ratio ≤ 1 / (1 + margin); ``equivalent`` (TOST) = max of the last two.
    """
    if ratio is None or ratio <= 0 or not se_log or se_log <= 0 or not math.isfinite(se_log):
        return {"costlier": None, "not_costlier": None, "not_cheaper": None, "equivalent": None}
    x = math.log(ratio)
    up = math.log1p(margin)
    dist = stats.t(df) if df is not None and df >= 1 else stats.norm
    costlier = float(dist.sf(x / se_log))
    not_costlier = float(dist.cdf((x - up) / se_log))
    not_cheaper = float(dist.sf((x + up) / se_log))
    return {"costlier": costlier, "not_costlier": not_costlier, "not_cheaper": not_cheaper,
            "equivalent": max(not_costlier, not_cheaper)}


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm (1979) step-down adjusted p-values (None stays None and is not counted)."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda j: pvalues[j])):  # type: ignore[arg-type, return-value]
        adj = min(1.0, (m - rank) * float(pvalues[i]))  # type: ignore[arg-type]
        running = max(running, adj)
        out[i] = running
    return out
