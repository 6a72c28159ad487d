"""The base of every typed result, and the one way a result becomes JSON.

Every result (the analysis's in :mod:`agentsim.analysis.results`, the fidelity figures of
:mod:`agentsim.fidelity.figures`) is a frozen dataclass deriving from :class:`Result`;
:func:`to_json` (also ``Result.to_json()``) turns a result, and anything nested in it, into plain
JSON types:

- a field left at :data:`ABSENT` is not written (the key is absent, as opposed to ``null``);
  optional keys of a figure (``kind``, ``se_log``, ``reason``, ...) use it;
- a field with ``metadata={"flatten": True}`` writes its own fields into its parent's object; one
  with ``metadata={"internal": True}`` is not written;
- a class's ``_json_order`` (the field names, in order) orders its keys where the JSON always had
  another order than the fields' (the fields it does not name follow, in declaration order);
- numpy scalars become Python numbers, non-finite floats ``null``, tuples lists.

A leaf module (it imports nothing of agentsim's), so that results of any layer can derive from it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

__all__ = ["ABSENT", "Result", "to_json", "present"]


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
        order = getattr(obj, "_json_order", ())
        fields = dataclasses.fields(obj)
        if order:
            fields = sorted(fields, key=lambda f: order.index(f.name) if f.name in order else len(order))
        for f in fields:
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
    """The base of every typed result: ``to_json()`` is :func:`to_json`."""

    def to_json(self) -> Any:
        return to_json(self)
