from __future__ import annotations

import math

from agentsim.analysis import ratio_ci, wilson


def test_wilson_contains_the_estimate_and_narrows_with_n():
    lo, hi = wilson(8, 10)
    assert lo < 0.8 < hi
    lo2, hi2 = wilson(80, 100)
    assert hi2 - lo2 < hi - lo
    assert wilson(0, 0) is None


def test_ratio_ci_katz():
    lo, hi = ratio_ci(0.5, 100, 0.8, 100)
    # textbook Katz interval for 50/100 vs 80/100
    se = math.sqrt(1 / 50 - 1 / 100 + 1 / 80 - 1 / 100)
    assert math.isclose(lo, 0.625 * math.exp(-1.96 * se)) and math.isclose(hi, 0.625 * math.exp(1.96 * se))
    assert lo < 0.625 < hi
    same = ratio_ci(0.8, 1000, 0.8, 1000)
    assert same[0] < 1 < same[1] and same[1] - same[0] < 0.1
    assert ratio_ci(0.0, 10, 0.5, 10)[0] > 0  # zero counts get 0.5
    assert ratio_ci(0.5, 10, 0.0, 10) is None
    assert ratio_ci(None, 10, 0.5, 10) is None
