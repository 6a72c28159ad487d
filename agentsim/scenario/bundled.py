"""The scenario files bundled with agentsim (``scenarios/`` in a checkout, ``agentsim.scenarios`` installed)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["bundled_dir", "bundled_scenarios", "bundled_scenario_path"]


def bundled_dir() -> Path:
    """The folder of bundled scenario files (``scenarios/`` in a checkout)."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here.parent / "scenarios", here / "scenarios"):
        if cand.is_dir():
            return cand
    try:
        from importlib.resources import files

        return Path(str(files("agentsim.scenarios")))
    except (ModuleNotFoundError, TypeError):
        return here.parent / "scenarios"


def bundled_scenarios() -> dict[str, Path]:
    d = bundled_dir()
    out: dict[str, Path] = {}
    if d.is_dir():
        for f in sorted(d.glob("*.y*ml")):
            out[f.stem] = f
    return out


def bundled_scenario_path(name: str) -> Path | None:
    return bundled_scenarios().get(name)
