"""Listing scenarios (bundled files, user folders, generator families) and describing instances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import expr
from .errors import ScenarioError
from .scenario import Scenario, bundled_scenarios, load_scenario

__all__ = ["list_scenarios", "describe_instance"]


def list_scenarios(extra_dirs: list[str] | None = None) -> list[dict[str, Any]]:
    """Bundled families, bundled files and files in ``extra_dirs``.

    Each item: ``name``, ``kind`` (family | file), ``description``, ``params``, ``path``, and
    ``error`` when a file does not validate (the item is still listed, so a viewer can show why).
    """
    from .generators import available_generators

    items: list[dict[str, Any]] = []
    for name, info in available_generators().items():
        items.append({"name": name, "kind": "family", "description": info.description,
                      "params": dict(info.params), "param_help": dict(info.param_help),
                      "path": None, "error": None})
    files: list[tuple[str, Path]] = list(bundled_scenarios().items())
    for d in extra_dirs or []:
        folder = Path(d)
        if not folder.is_dir():
            raise ScenarioError("not a folder", source=str(d))
        files.extend((f.stem, f) for f in sorted(folder.glob("*.y*ml")))
    for stem, path in files:
        item: dict[str, Any] = {"name": stem, "kind": "file", "description": "", "params": {},
                                "param_help": {}, "path": str(path), "error": None}
        try:
            sc = load_scenario(path)
        except ScenarioError as exc:
            item["error"] = str(exc)
        else:
            item["description"] = sc.description
            item["params"] = dict(sc.ref.get("params", {}))
            item["scenario_name"] = sc.name
        items.append(item)
    return items


def describe_instance(sc: Scenario, *, seed: int = 0, index: int = 0) -> dict[str, Any]:
    """One instance with its rendered prompts (parents bound to their expected answers)."""
    inst = sc.instance(seed, index)
    base = inst.context(sc.spec.world)
    hops = []
    for hop_id in sc.order:
        spec = sc.hop(hop_id)
        ctx = dict(base)
        for p in spec.depends_on:
            ctx[p] = inst.expected[p]
        if spec.kind == "llm":
            prompt = expr.render(spec.prompt or "", ctx)
        else:
            args = {k: expr.evaluate(v, ctx) for k, v in spec.args.items()}
            prompt = f"{spec.tool}(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")"
        hops.append({
            "id": hop_id, "kind": spec.kind, "depends_on": list(spec.depends_on),
            "depth": sc.depth[hop_id], "prompt": prompt, "expected": inst.expected[hop_id],
            "parse": spec.parse.model_dump(exclude_none=True),
            "check": spec.check.model_dump() if spec.check else None,
            "grammar": spec.grammar, "max_tokens": spec.max_tokens,
        })
    return {
        "name": sc.name, "description": sc.description, "params": dict(sc.ref.get("params", {})),
        "seed": seed, "index": index, "vars": inst.vars, "system": sc.render_system(inst), "hops": hops,
        "edges": [list(e) for e in sc.graph.edges],
    }
