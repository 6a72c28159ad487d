"""Listing scenarios (bundled files, user folders, generator families) and describing instances.

What ``agentsim scenarios list`` and ``agentsim scenarios show`` print, also used by the TUI: plain
dicts that serialise to JSON as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentsim import expr
from agentsim.errors import ScenarioError

from .bundled import bundled_scenarios
from .load import load_scenario
from .model import Scenario

__all__ = ["list_scenarios", "describe_instance", "scenario_shape"]

#: tool arguments longer than this are shown abbreviated in a rendered tool call
_ARG_REPR_LIMIT = 60


def scenario_shape(sc: Scenario) -> dict[str, Any]:
    """Counts that say how big a scenario is: hops, model hops, tool hops, critical-path depth."""
    kinds = [sc.hop(h).kind for h in sc.order]
    return {
        "hops": len(kinds),
        "llm_hops": kinds.count("llm"),
        "tool_hops": kinds.count("tool"),
        "depth": max(sc.depth.values()),
        "width": max(sum(1 for h in sc.order if sc.depth[h] == d) for d in set(sc.depth.values())),
    }


def list_scenarios(extra_dirs: list[str] | None = None, *, include_bundled: bool = True) -> list[dict[str, Any]]:
    """Bundled families, bundled files and files in ``extra_dirs`` (only the latter when
    ``include_bundled`` is off).

    Each item: ``name``, ``kind`` (family | file), ``description``, ``params`` (a family's
    defaults, or the parameters a file passes to its generator), ``param_help``, ``family`` (the
    generator a file refers to, else None), ``shape`` (see :func:`scenario_shape`, at the default
    parameters), ``path``, and ``error`` when a file does not validate (the item is still listed,
    so a viewer can show why).
    """
    from .registry import available_generators, build_generator

    items: list[dict[str, Any]] = []
    for name, info in (available_generators() if include_bundled else {}).items():
        item: dict[str, Any] = {
            "name": name, "kind": "family", "description": info.description,
            "params": dict(info.params), "param_help": dict(info.param_help),
            "family": name, "shape": None, "path": None, "error": None,
        }
        try:
            item["shape"] = scenario_shape(build_generator(name, {}))
        except ScenarioError as exc:  # a user-registered generator with bad defaults
            item["error"] = str(exc)
        items.append(item)
    files: list[tuple[str, Path]] = list(bundled_scenarios().items()) if include_bundled else []
    for d in extra_dirs or []:
        folder = Path(d)
        if not folder.is_dir():
            raise ScenarioError("not a folder", source=str(d))
        files.extend((f.stem, f) for f in sorted(folder.glob("*.y*ml")))
    for stem, path in files:
        item = {"name": stem, "kind": "file", "description": "", "params": {}, "param_help": {},
                "family": None, "shape": None, "path": str(path), "error": None}
        try:
            sc = load_scenario(path)
        except ScenarioError as exc:
            item["error"] = str(exc)
        else:
            item["description"] = sc.description
            item["params"] = dict(sc.ref.get("params", {}))
            item["family"] = sc.ref.get("name") if sc.ref.get("kind") == "generator" else None
            item["scenario_name"] = sc.name
            item["shape"] = scenario_shape(sc)
        items.append(item)
    return items


def _short(value: Any) -> str:
    text = repr(value)
    if len(text) <= _ARG_REPR_LIMIT:
        return text
    if isinstance(value, dict):
        return f"<table of {len(value)} entries>"
    if isinstance(value, (list, tuple)):
        return f"<list of {len(value)} items>"
    return text[: _ARG_REPR_LIMIT - 3] + "..."


def describe_instance(sc: Scenario, *, seed: int = 0, index: int = 0) -> dict[str, Any]:
    """One instance with its rendered prompts (parents bound to their expected answers).

    A tool hop's ``prompt`` is the call as the engine records it, with big tables abbreviated;
    its full arguments are under ``args``.
    """
    inst = sc.instance(seed, index)
    base = inst.context(sc.spec.world)
    hops = []
    for hop_id in sc.order:
        spec = sc.hop(hop_id)
        ctx = dict(base)
        for p in spec.depends_on:
            ctx[p] = inst.expected[p]
        args: dict[str, Any] | None = None
        if spec.kind == "llm":
            prompt = expr.render(spec.prompt or "", ctx)
        else:
            args = {k: expr.evaluate(v, ctx) for k, v in spec.args.items()}
            prompt = f"{spec.tool}(" + ", ".join(f"{k}={_short(v)}" for k, v in args.items()) + ")"
        hops.append({
            "id": hop_id, "kind": spec.kind, "depends_on": list(spec.depends_on),
            "depth": sc.depth[hop_id], "description": spec.description, "prompt": prompt,
            "tool": spec.tool, "args": args, "expected": inst.expected[hop_id],
            "parse": spec.parse.model_dump(exclude_none=True),
            "check": spec.check.model_dump() if spec.check else None,
            "grammar": spec.grammar, "max_tokens": spec.max_tokens,
        })
    return {
        "name": sc.name, "description": sc.description, "params": dict(sc.ref.get("params", {})),
        "family": sc.ref.get("name") if sc.ref.get("kind") == "generator" else None,
        "shape": scenario_shape(sc),
        "seed": seed, "index": index, "vars": inst.vars, "system": sc.render_system(inst), "hops": hops,
        "edges": [list(e) for e in sc.graph.edges],
    }
