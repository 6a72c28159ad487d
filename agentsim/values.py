"""JSON-safe values: what a value looks like after a round trip through the database."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    """Values that survive a JSON round trip unchanged (tuples become lists, etc.)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        if hasattr(value, "item"):
            return value.item()
        return json.loads(json.dumps(value, default=str))

