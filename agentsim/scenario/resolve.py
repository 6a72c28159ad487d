"""Resolving what a user names (a file, a bundled name, a family) or a run stored, to a Scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentsim.errors import ScenarioError

from .bundled import bundled_scenario_path, bundled_scenarios
from .compile import scenario_from_dict
from .load import load_scenario
from .model import Scenario
from .registry import available_generators, build_generator, get_generator

__all__ = ["resolve_scenario", "scenario_from_ref"]


def resolve_scenario(ref: str | Path | Scenario, params: dict[str, Any] | None = None) -> Scenario:
    """A scenario from a file path, a bundled scenario name, or a generator family name."""
    if isinstance(ref, Scenario):
        if params:
            raise ScenarioError("params apply to generator families, not to a loaded scenario")
        return ref
    text = str(ref)
    p = Path(text)
    if p.suffix in (".yaml", ".yml") or p.exists() or "/" in text:
        return _from_file(p, text, params)
    if get_generator(text) is not None:
        return build_generator(text, params or {}, source=text)
    bundled = bundled_scenario_path(text)
    if bundled is not None:
        return _from_file(bundled, text, params)
    names = sorted(set(available_generators()) | set(bundled_scenarios()))
    raise ScenarioError(
        f"no scenario file or family named {text!r}",
        hint=f"bundled: {', '.join(names)}; or give a path to a .yaml file",
    )


def _from_file(path: Path, text: str, params: dict[str, Any] | None) -> Scenario:
    """A scenario file; ``params`` override the parameters of a file that names a family."""
    scenario = load_scenario(path)
    if not params:
        return scenario
    if scenario.ref.get("kind") == "generator":
        merged = {**scenario.ref.get("params", {}), **params}
        return build_generator(scenario.ref["name"], merged, source=text)
    raise ScenarioError(
        "--param applies to generator families; this file defines its hops itself",
        source=str(path),
    )


def scenario_from_ref(ref: dict[str, Any]) -> Scenario:
    """Rebuild a scenario from the reference stored with a run (used by resume)."""
    kind = ref.get("kind")
    if kind == "generator":
        scenario = build_generator(ref["name"], ref.get("params", {}), source=ref["name"])
        if ref.get("name_override"):
            # a scenario file renamed the family's scenario: the name seeds the instances
            scenario.spec.name = ref["name_override"]
            scenario.ref["name_override"] = ref["name_override"]
        return scenario
    if kind == "spec":
        return scenario_from_dict(ref["spec"], source=f"<stored scenario {ref['spec'].get('name')}>")
    raise ScenarioError(f"unknown stored scenario reference {kind!r}")

