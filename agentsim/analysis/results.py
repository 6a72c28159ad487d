"""The typed results of the analysis, and the one way they become JSON.

Every result is a frozen dataclass deriving from :class:`Result`; :func:`to_json` (also
``Result.to_json()``) turns a result, and anything nested in it, into plain JSON types:

- a field left at :data:`ABSENT` is not written (the key is absent, as opposed to ``null``);
  optional keys of a figure (``kind``, ``se_log``, ``reason``, ...) use it;
- a field with ``metadata={"flatten": True}`` writes its own fields into its parent's object;
- numpy scalars become Python numbers, non-finite floats ``null``, tuples lists.

The JSON of these types is the schema of ``evaluate()`` (docs/statistics.md, held byte for byte by
``tests/unit/test_analysis_golden.py``); readers in render/, cli/ and tui/ read the attributes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

__all__ = ["ABSENT", "Result", "to_json", "Estimate", "PairedEstimate", "Discordant", "Pairing",
           "PairedComparison", "present"]


class _Absent:
    """The value of an optional field that is not there (falsy; never written to JSON)."""

    _it: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._it is None:
            cls._it = super().__new__(cls)
        return cls._it

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "ABSENT"

    def __reduce__(self) -> str:
        return "ABSENT"


#: an optional field that is not there (its key is left out of the JSON)
ABSENT: Any = _Absent()


def present(v: Any) -> bool:
    """Whether an optional field holds a value (``None`` is a value; :data:`ABSENT` is not)."""
    return v is not ABSENT


def to_json(obj: Any) -> Any:
    """Plain JSON types of a result (dataclasses, dicts, lists, numpy scalars; see the module doc)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if v is ABSENT or f.metadata.get("internal"):
                continue
            if f.metadata.get("flatten"):
                out.update(to_json(v) if v is not None else {})
            else:
                out[f.name] = to_json(v)
        return out
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class Result:
    """The base of every analysis result: ``to_json()`` is :func:`to_json`."""

    def to_json(self) -> Any:
        return to_json(self)


@dataclasses.dataclass(frozen=True)
class Estimate(Result):
    """One figure with its 95 % interval: a value of one run (``single``), a paired difference or
    ratio (:class:`PairedEstimate`), or one that could not be formed (``value`` None, ``reason``)."""

    value: float | None
    ci95: list[float] | None = None
    se: float | None = ABSENT
    method: str = ABSENT
    undefined_resamples: float = ABSENT   # share of resamples with an undefined figure (when any)
    extended_to_point: bool = ABSENT      # the percentile interval was widened to hold the point
    kind: str | None = ABSENT             # energy figures: measured / estimated
    reason: str = ABSENT                  # why there is no value

    @property
    def defined(self) -> bool:
        return self.value is not None


@dataclasses.dataclass(frozen=True)
class Discordant(Result):
    """Instances right in one run only: the run (``run_only``) or the baseline (``baseline_only``)."""

    run_only: int
    baseline_only: int


@dataclasses.dataclass(frozen=True)
class PairedEstimate(Estimate):
    """A paired difference (run − baseline) or ratio (run / baseline) with the two runs' own figures,
    its test where it has one, and (cost ratios) the bootstrap SE of its log."""

    run: float | None = ABSENT
    baseline: float | None = ABSENT
    unpaired_ci95: list[float] | None = ABSENT   # what independent resampling would give
    p_value: float = ABSENT
    test: str = ABSENT
    discordant: Discordant = ABSENT
    se_log: float | None = ABSENT
    simulated: bool = ABSENT


@dataclasses.dataclass(frozen=True)
class Pairing(Result):
    """What two runs have in common (the units of a paired comparison)."""

    paired: bool
    instances_paired: int
    hops_paired: int
    model_hops_paired: int
    instances_only_in_run: int
    instances_only_in_baseline: int
    hop_ids_differ: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class PairedComparison(Result):
    """A run against its baseline on the instances and hops both have (:func:`.paired.compare_pair`).

    ``differences``: accuracy figures, run − baseline; ``ratios``: accuracy and cost figures, run /
    baseline (None where a figure is undefined on a side). ``identity``: the baseline itself."""

    pairing: Pairing | None = dataclasses.field(default=None, metadata={"flatten": True})
    identity: bool
    differences: dict[str, PairedEstimate | None]
    ratios: dict[str, PairedEstimate | None]
    note: str = ABSENT
    zero_discordance_bound: float = ABSENT

    def difference(self, name: str) -> PairedEstimate | None:
        return self.differences.get(name)

    def ratio(self, name: str) -> PairedEstimate | None:
        return self.ratios.get(name)
