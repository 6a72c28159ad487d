"""Scenarios: multi-hop workflows as validated networkx DAGs, and their seeded instances.

A scenario comes from a YAML file (see README, "Scenario files") or from a registered family
(a generator). Loading validates everything up front and raises
:class:`~agentsim.errors.ScenarioError` naming the file, line, hop and field; nothing in a scenario
can run code (templates and expressions are sandboxed, see :mod:`agentsim.expr`).

The layers of this package, each importing only those before it:

``spec``      the file format (pydantic models)
``vars``      instance variables (randint, choice, ...)
``model``     a validated Scenario and its seeded Instances
``compile``   plain data -> Scenario (names, templates, tools, graph checks)
``registry``  families: ``@generator``, the family registry, building a family's scenario
``families``  the bundled families (they register themselves)
``load``      files -> YAML with line numbers -> Scenario (or a family reference)
``bundled``   the bundled scenario files
``resolve``   a name, a path or a stored reference -> Scenario
``listing``   what ``agentsim scenarios list/show`` and the TUI print
"""

from __future__ import annotations

from .bundled import bundled_dir, bundled_scenario_path, bundled_scenarios
from .compile import scenario_from_dict
from .load import load_scenario, load_scenario_bytes, load_scenario_text
from .model import Instance, Scenario, ScenarioWarning
from .registry import (
    Generated,
    GeneratorInfo,
    available_generators,
    build_generator,
    generator,
    get_generator,
)
from .resolve import resolve_scenario, scenario_from_ref
from .spec import HopSpec, ScenarioSpec

__all__ = [
    "HopSpec",
    "ScenarioSpec",
    "Scenario",
    "Instance",
    "ScenarioWarning",
    "load_scenario",
    "load_scenario_bytes",
    "load_scenario_text",
    "scenario_from_dict",
    "resolve_scenario",
    "scenario_from_ref",
    "bundled_dir",
    "bundled_scenarios",
    "bundled_scenario_path",
    "Generated",
    "GeneratorInfo",
    "generator",
    "get_generator",
    "available_generators",
    "build_generator",
]
