"""Analysis over stored runs: summaries (summary), paired statistics, fits, verdicts."""

from __future__ import annotations

from .summary import (
    accuracy_by_depth,
    compare_runs,
    energy_summary,
    fit_reliability,
    ratio_ci,
    summarize_run,
    wilson,
)
from .trap import analyse, evaluate

__all__ = [
    "evaluate", "analyse",
    "summarize_run", "energy_summary", "wilson", "compare_runs", "accuracy_by_depth",
    "fit_reliability", "ratio_ci",
]
