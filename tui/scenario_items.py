"""The scenario list the Scenarios and Launch screens show: bundled items, then each file of the
user's folders validated in its own thread within a budget, so that a folder of files from
strangers cannot stall the app (a screen-free module: the app context uses it too)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from agentsim.errors import ScenarioError

__all__ = ["FILE_BUDGET_S", "validate_file", "file_item", "scenario_items"]


#: CPU seconds (and, doubled, wall seconds) the Scenarios screen spends validating one file of a
#: user folder before it lists the file as invalid and moves on: a folder of files from
#: strangers cannot stall the list, whatever the files hold
FILE_BUDGET_S = 5.0


def validate_file(path: Path, budget_s: float | None = None) -> tuple[Any, ScenarioError | None]:
    """``(scenario, None)`` or ``(None, error)`` for one scenario file, within ``budget_s``.

    The validation runs in a daemon thread under one CPU-time budget for the whole file (the
    limits' watchdog stops it there); if it still has not ended after twice the budget in wall
    time (a long call the watchdog cannot interrupt), it is abandoned and the file is reported
    as such. Never raises."""
    from dataclasses import replace

    from agentsim import limits
    from agentsim.scenario import load_scenario

    budget = FILE_BUDGET_S if budget_s is None else budget_s
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            with limits.guard(f"validating {path.name}", replace(limits.current(), render_s=budget)):
                result["scenario"] = load_scenario(path)
        except limits.LimitExceeded as exc:
            result["error"] = exc.located(source=str(path))
        except ScenarioError as exc:
            result["error"] = exc
        except Exception as exc:  # noqa: BLE001 - shown on the file, never a crash of the screen
            result["error"] = ScenarioError(f"cannot validate: {type(exc).__name__}: {exc}", source=str(path))

    worker = threading.Thread(target=target, name=f"validate {path.name}", daemon=True)
    worker.start()
    worker.join(2 * budget + 1.0)
    if worker.is_alive():
        return None, ScenarioError(
            f"validation did not end within {2 * budget + 1.0:g} s and was abandoned", source=str(path),
            hint="run agentsim validate on it to see where it spends its time",
        )
    return result.get("scenario"), result.get("error")


def file_item(stem: str, path: Path, budget_s: float | None = None) -> dict[str, Any]:
    """A user folder's file as a listing item (the shape of ``list_scenarios``'s), validated
    within a budget; an invalid file keeps its error as text (``error``) and as the exception
    (``exception``, for the preview's file lines)."""
    from agentsim.scenario.listing import scenario_shape

    item: dict[str, Any] = {"name": stem, "kind": "file", "description": "", "params": {}, "param_help": {},
                            "family": None, "shape": None, "path": str(path), "error": None}
    sc, exc = validate_file(path, budget_s)
    if exc is not None or sc is None:
        item["error"] = str(exc)
        item["exception"] = exc
        return item
    item["description"] = sc.description
    item["params"] = dict(sc.ref.get("params", {}))
    item["family"] = sc.ref.get("name") if sc.ref.get("kind") == "generator" else None
    item["scenario_name"] = sc.name
    item["shape"] = scenario_shape(sc)
    item["warnings"] = [str(w) for w in sc.warnings]
    return item


def scenario_items(scenario_dirs: list[str], include_bundled: bool) -> list[dict[str, Any]]:
    """``list_scenarios`` items for the bundled families and files (none when ``include_bundled``
    is off: tests get a list that does not move with the bundled set), then the files of
    ``scenario_dirs``, each validated within :data:`FILE_BUDGET_S` (see :func:`validate_file`)."""
    from agentsim.scenario.listing import list_scenarios

    items = list_scenarios(include_bundled=True) if include_bundled else []
    for d in scenario_dirs:
        folder = Path(d)
        if not folder.is_dir():
            raise ScenarioError("not a folder", source=str(d))
        items.extend(file_item(f.stem, f) for f in sorted(folder.glob("*.y*ml")))
    return items
