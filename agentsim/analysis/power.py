"""How many instances would decide it: sample size for the observed effect.

When an interval is too wide to give a verdict, the report says how many instances would make
it decisive if the observed effect were the true one (two-sided level 0.05, power 0.8 by default):

- paired task success: Connor's (1987) sample size for McNemar's test,
  n = [z_{α/2} √ψ + z_β √(ψ − δ²)]² / δ², with ψ = p₁₀ + p₀₁ (discordance) and δ = p₁₀ − p₀₁;
- any other bootstrapped figure: standard-error scaling, n* = n · ((z_{α/2} + z_β) · SE / |θ − θ₀|)²,
  θ₀ being the boundary the interval has to clear (0 for a difference, 0 on the log scale for a
  ratio, −margin for non-inferiority); SE ∝ 1/√n is the normal approximation.
"""

from __future__ import annotations

import math

from scipy import stats

__all__ = ["z_values", "mcnemar_n", "se_scaling_n"]


def z_values(level: float = 0.95, power: float = 0.8) -> tuple[float, float]:
    return float(stats.norm.ppf(1 - (1 - level) / 2)), float(stats.norm.ppf(power))


def mcnemar_n(p10: float, p01: float, *, level: float = 0.95, power: float = 0.8) -> int | None:
    """Instances for McNemar's test to detect δ = p10 − p01 (None when δ = 0)."""
    delta = p10 - p01
    psi = p10 + p01
    if abs(delta) < 1e-12 or psi <= 0:
        return None
    za, zb = z_values(level, power)
    n = (za * math.sqrt(psi) + zb * math.sqrt(max(0.0, psi - delta * delta))) ** 2 / (delta * delta)
    return int(math.ceil(n))


def se_scaling_n(n: int, se: float | None, effect: float | None, boundary: float = 0.0, *,
                 level: float = 0.95, power: float = 0.8) -> int | None:
    """Instances for an interval around ``effect`` to clear ``boundary`` (None when undefined)."""
    if se is None or effect is None or n <= 0 or se <= 0:
        return None
    gap = abs(effect - boundary)
    if gap < 1e-12:
        return None
    za, zb = z_values(level, power)
    return int(math.ceil(n * ((za + zb) * se / gap) ** 2))
