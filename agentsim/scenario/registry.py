"""Scenario families: Python generators that build a scenario from parameters, and their registry.

A generator returns the scenario as plain data (the same shape as a YAML scenario file) plus,
optionally, a function that draws each instance's variables from a seeded ``random.Random``.
Register one with :func:`generator`; a scenario file refers to it with::

    generator: chain-arith
    params: {depth: 4}

and the CLI with ``agentsim run chain-arith --param depth=4`` (sweeps: :mod:`agentsim.launch`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentsim.errors import ScenarioError
from agentsim.registry import Registry

__all__ = [
    "Generated",
    "GeneratorInfo",
    "generator",
    "get_generator",
    "available_generators",
    "build_generator",
]


@dataclass
class Generated:
    """What a generator returns: the scenario data and an optional per-instance drawer."""

    spec: dict[str, Any]
    #: ``draw(rng, world)``, or ``draw(rng, world, *, seed, index)`` (see ``VarDrawer``)
    draw_vars: Callable[..., dict[str, Any]] | None = None
    var_names: list[str] = field(default_factory=list)


@dataclass
class GeneratorInfo:
    name: str
    description: str
    params: dict[str, Any]
    fn: Callable[..., Generated]
    param_help: dict[str, str] = field(default_factory=dict)
    #: old parameter names -> the name that replaced them (an old file gets pointed to it)
    renamed: dict[str, str] = field(default_factory=dict)


#: the built-in families: lazy "module" entries (importing a module runs its @generator decorators)
BUILTIN_FAMILY_MODULES: tuple[str, ...] = (
    "agentsim.scenario.families.arithmetic",
    "agentsim.scenario.families.tracking",
    "agentsim.scenario.families.relations",
    "agentsim.scenario.families.fan_in",
    "agentsim.scenario.families.workflow",
    "agentsim.scenario.families.gsm8k",
    "agentsim.scenario.families.lab_arith",
)


def _load_builtin() -> None:
    import importlib

    for module in BUILTIN_FAMILY_MODULES:
        importlib.import_module(module)
    from .families.user import load_user_generators

    load_user_generators()


#: every family by name (built-ins, $AGENTSIM_GENERATORS modules, ``agentsim.generators`` entry points)
FAMILIES: Registry[GeneratorInfo] = Registry("family", error=ScenarioError, on_first_use=_load_builtin)


def generator(
    name: str,
    *,
    description: str,
    params: dict[str, Any],
    param_help: dict[str, str] | None = None,
    renamed: dict[str, str] | None = None,
) -> Callable[[Callable[..., Generated]], Callable[..., Generated]]:
    """Register a generator. ``params`` maps each parameter to its default (its type too);
    ``renamed`` maps parameter names it no longer takes to the ones that replaced them."""

    def deco(fn: Callable[..., Generated]) -> Callable[..., Generated]:
        info = GeneratorInfo(name, description, dict(params), fn, dict(param_help or {}), dict(renamed or {}))
        FAMILIES.register(name, info,
                          description=description, origin=fn.__module__)
        return fn

    return deco


def get_generator(name: str) -> GeneratorInfo | None:
    return FAMILIES.find(name)


def available_generators() -> dict[str, GeneratorInfo]:
    return dict(FAMILIES.items())


def _coerce(name: str, value: Any, default: Any, source: str | None) -> Any:
    if default is None or isinstance(value, type(default)) and not (
        isinstance(value, bool) and not isinstance(default, bool)
    ):
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return value.lower() in ("1", "true", "yes", "on")
            raise ValueError
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):
            return str(value)
        if isinstance(default, list) and isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
    except (TypeError, ValueError):
        pass
    raise ScenarioError(
        f"parameter {name!r} must be of type {type(default).__name__}, got {value!r}",
        source=source,
        field=f"params.{name}",
    )


def build_generator(name: str, params: dict[str, Any], *, source: str | None = None) -> Any:
    """Build the scenario of generator ``name`` with ``params`` (validated against its defaults)."""
    from .compile import scenario_from_dict

    info = get_generator(name)
    if info is None:
        raise ScenarioError(
            f"unknown generator family {name!r}",
            source=source,
            field="generator",
            hint=f"families: {', '.join(available_generators())}",
        )
    unknown = sorted(set(params) - set(info.params))
    if unknown:
        moved = [f"{old!r} is now {info.renamed[old]!r} (--param {info.renamed[old]}={params[old]})"
                 for old in unknown if old in info.renamed]
        raise ScenarioError(
            f"unknown parameter(s) {', '.join(unknown)} for family {name!r} "
            f"(parameters: {', '.join(f'{k}={v!r}' for k, v in info.params.items()) or 'none'})",
            source=source,
            field="params",
            hint="; ".join(moved) or None,
        )
    merged = {k: _coerce(k, params.get(k, d), d, source) for k, d in info.params.items()}
    try:
        gen = info.fn(**merged)
    except ScenarioError:
        raise
    except (ValueError, TypeError) as exc:
        raise ScenarioError(f"family {name!r}: {exc}", source=source, field="params") from None
    ref = {"kind": "generator", "name": name, "params": merged, "var_names": gen.var_names}
    return scenario_from_dict(
        gen.spec, source=source or name, draw_vars=gen.draw_vars, ref=ref
    )


def scenario_from_generator_ref(
    data: dict[str, Any], *, source: str, lines: dict[tuple[Any, ...], int]
) -> Any:
    """A scenario file that names a generator: ``{generator: NAME, params: {...}}``."""
    extra = sorted(set(data) - {"generator", "params", "name", "description"})
    if extra:
        raise ScenarioError(
            f"a generator reference takes only generator, params, name, description; got {', '.join(extra)}",
            source=source,
            line=lines.get((extra[0],)),
            field=extra[0],
        )
    name = data.get("generator")
    params = data.get("params") or {}
    if not isinstance(name, str):
        raise ScenarioError("'generator' must be a family name", source=source,
                            line=lines.get(("generator",)), field="generator")
    if not isinstance(params, dict):
        raise ScenarioError("'params' must be a mapping", source=source,
                            line=lines.get(("params",)), field="params")
    scenario = build_generator(name, params, source=source)
    if isinstance(data.get("name"), str):
        scenario.spec.name = data["name"]
        scenario.ref["name_override"] = data["name"]
    if isinstance(data.get("description"), str):
        scenario.spec.description = data["description"]
    return scenario
