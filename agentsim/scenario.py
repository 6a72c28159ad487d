"""Scenarios: multi-hop workflows as validated networkx DAGs, and their seeded instances.

A scenario comes from a YAML file (see README, "Scenario files") or from a registered generator
(:mod:`agentsim.generators`). Loading validates everything up front and raises
:class:`~agentsim.errors.ScenarioError` naming the file, line, hop and field; nothing in a scenario
can run code (templates and expressions are sandboxed, see :mod:`agentsim.expr`).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import expr
from .answers import CheckSpec, ParseSpec, default_check
from .errors import ScenarioError
from .tools import ToolError, call_tool, get_tool

__all__ = [
    "HopSpec",
    "ScenarioSpec",
    "Scenario",
    "Instance",
    "load_scenario",
    "load_scenario_text",
    "scenario_from_dict",
    "resolve_scenario",
]

MAX_FILE_BYTES = 5_000_000
_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = {"world", "vars", "hop", "loop", "range", "true", "false", "none", "True", "False", "None"}


# --------------------------------------------------------------------------------------------
# the file format


class HopSpec(BaseModel):
    """One hop: an LLM call or a deterministic tool call."""

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: Literal["llm", "tool"] = "llm"
    depends_on: list[str] = Field(default_factory=list)
    description: str | None = None
    prompt: str | None = None
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    parse: ParseSpec = Field(default_factory=ParseSpec)
    expect: str | int | float | bool | None = None
    check: CheckSpec | None = None
    max_tokens: int = Field(default=32, ge=1, le=32768)
    stop: list[str] = Field(default_factory=list)
    grammar: str | None = None

    @field_validator("id")
    @classmethod
    def _valid_id(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError(
                f"hop id {v!r} must start with a letter or '_' and contain only letters, digits "
                "and '_' (templates refer to hops by id)"
            )
        if v in _RESERVED:
            raise ValueError(f"hop id {v!r} is reserved")
        return v

    @field_validator("parse", mode="before")
    @classmethod
    def _parse_shorthand(cls, v: Any) -> Any:
        return {"type": v} if isinstance(v, str) else v

    @field_validator("check", mode="before")
    @classmethod
    def _check_shorthand(cls, v: Any) -> Any:
        return {"type": v} if isinstance(v, str) else v

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_shorthand(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _kind_fields(self) -> HopSpec:
        if self.kind == "llm":
            if not self.prompt:
                raise ValueError("an 'llm' hop needs a 'prompt' template")
            if self.expect is None:
                raise ValueError("an 'llm' hop needs 'expect': the expected answer (an expression)")
            if self.tool or self.args:
                raise ValueError("'tool' and 'args' belong to 'tool' hops (set kind: tool)")
        else:
            if not self.tool:
                raise ValueError("a 'tool' hop needs 'tool': the name of a registered tool")
            if get_tool(self.tool) is None:
                from .tools import available_tools

                raise ValueError(
                    f"unknown tool {self.tool!r}; registered tools: {', '.join(available_tools())}"
                )
        if self.check is None:
            self.check = default_check(self.parse)
        return self


class ScenarioSpec(BaseModel):
    """A whole scenario file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    system: str | None = None
    world: dict[str, Any] = Field(default_factory=dict)
    vars: dict[str, Any] = Field(default_factory=dict)
    hops: list[HopSpec] = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)

    @field_validator("world", "vars")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if not isinstance(key, str) or not _ID_RE.match(key):
                raise ValueError(f"name {key!r} must be an identifier (letters, digits, '_')")
            if key in _RESERVED:
                raise ValueError(f"name {key!r} is reserved")
        return v


# --------------------------------------------------------------------------------------------
# instances


@dataclass
class Instance:
    """One seeded draw of a scenario: its variables and the expected answer of every hop."""

    index: int
    seed: int
    vars: dict[str, Any]
    expected: dict[str, Any]

    def context(self, world: Mapping[str, Any]) -> dict[str, Any]:
        ctx = dict(world)
        ctx["world"] = dict(world)
        ctx.update(self.vars)
        ctx["vars"] = dict(self.vars)
        return ctx


VarDrawer = Callable[[random.Random, dict[str, Any]], dict[str, Any]]


@dataclass
class Scenario:
    """A validated scenario: spec, DAG and a way to draw instances."""

    spec: ScenarioSpec
    source: str
    ref: dict[str, Any]
    graph: nx.DiGraph = field(repr=False)
    order: list[str]
    depth: dict[str, int]
    draw_vars: VarDrawer | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str:
        return self.spec.description

    @property
    def hops(self) -> dict[str, HopSpec]:
        return {h.id: h for h in self.spec.hops}

    def hop(self, hop_id: str) -> HopSpec:
        return self.graph.nodes[hop_id]["spec"]

    def parents(self, hop_id: str) -> list[str]:
        return list(self.hop(hop_id).depends_on)

    @property
    def sinks(self) -> list[str]:
        return [n for n in self.order if self.graph.out_degree(n) == 0]

    @property
    def fingerprint(self) -> str:
        blob = json.dumps(self.ref, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # instances -------------------------------------------------------------------------

    def instance(self, seed: int, index: int) -> Instance:
        """Instance ``index`` of ``seed``: independent of how many instances are drawn."""
        rng = random.Random(f"agentsim:{self.spec.name}:{seed}:{index}")
        world = self.spec.world
        values = self._draw(rng, world)
        inst = Instance(index=index, seed=seed, vars=values, expected={})
        base = inst.context(world)
        for hop_id in self.order:
            spec = self.hop(hop_id)
            ctx = dict(base)
            for p in spec.depends_on:
                ctx[p] = inst.expected[p]
            try:
                inst.expected[hop_id] = self.expected_given(spec, ctx)
            except ToolError as exc:
                raise ScenarioError(
                    f"the tool fails on the expected inputs ({exc})",
                    source=self.source,
                    hop=hop_id,
                    field="args",
                ) from None
            except ScenarioError:
                raise
            except Exception as exc:  # noqa: BLE001 - sandboxed evaluation error
                raise ScenarioError(
                    f"cannot compute the expected answer: {type(exc).__name__}: {exc}",
                    source=self.source,
                    hop=hop_id,
                    field="expect",
                ) from None
        return inst

    def instances(self, n: int, seed: int = 0) -> list[Instance]:
        return [self.instance(seed, i) for i in range(n)]

    def _draw(self, rng: random.Random, world: dict[str, Any]) -> dict[str, Any]:
        if self.draw_vars is not None:
            values = self.draw_vars(rng, dict(world))
            return _jsonable(values)
        values: dict[str, Any] = {}
        for name, spec in self.spec.vars.items():
            try:
                values[name] = _draw_var(spec, rng, {**world, "world": world, **values})
            except ScenarioError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise ScenarioError(
                    f"cannot draw variable: {type(exc).__name__}: {exc}",
                    source=self.source,
                    field=f"vars.{name}",
                ) from None
        return _jsonable(values)

    @staticmethod
    def expected_given(spec: HopSpec, ctx: dict[str, Any]) -> Any:
        """The right answer of ``spec`` given the context (parents bound in ``ctx``)."""
        if spec.kind == "tool" and spec.expect is None:
            assert spec.tool is not None
            args = {k: expr.evaluate(v, ctx) for k, v in spec.args.items()}
            return _jsonable(call_tool(spec.tool, args))
        return _jsonable(expr.evaluate(spec.expect, ctx))

    def render_system(self, inst: Instance) -> str | None:
        if not self.spec.system:
            return None
        return expr.render(self.spec.system, inst.context(self.spec.world))


def _jsonable(value: Any) -> Any:
    """Values that survive a JSON round trip unchanged (tuples become lists, etc.)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        if hasattr(value, "item"):
            return value.item()
        return json.loads(json.dumps(value, default=str))


_VAR_KINDS = ("randint", "choice", "sample", "shuffle", "uniform", "expr", "value")


def _draw_var(spec: Any, rng: random.Random, ctx: dict[str, Any]) -> Any:
    if not isinstance(spec, dict):
        return spec
    if len(spec) != 1 or next(iter(spec)) not in _VAR_KINDS:
        # a literal mapping
        return spec
    kind, arg = next(iter(spec.items()))
    if kind == "value":
        return arg
    if kind == "randint":
        lo, hi = arg
        return rng.randint(int(lo), int(hi))
    if kind == "uniform":
        lo, hi = arg[:2]
        digits = int(arg[2]) if len(arg) > 2 else 2
        return round(rng.uniform(float(lo), float(hi)), digits)
    if kind == "choice":
        return rng.choice(list(arg))
    if kind == "sample":
        return rng.sample(list(arg["from"]), int(arg["k"]))
    if kind == "shuffle":
        items = list(arg)
        rng.shuffle(items)
        return items
    if kind == "expr":
        return expr.evaluate(arg, ctx)
    raise AssertionError(kind)


def _check_var_spec(name: str, spec: Any) -> None:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in _VAR_KINDS:
        return
    kind, arg = next(iter(spec.items()))
    ok = True
    if kind in ("randint", "uniform"):
        ok = (
            isinstance(arg, list)
            and len(arg) in ((2,) if kind == "randint" else (2, 3))
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in arg)
            and arg[0] <= arg[1]
        )
        if kind == "randint" and ok:
            ok = all(float(x).is_integer() for x in arg)
        msg = f"'{kind}' takes [low, high] numbers with low <= high"
    elif kind in ("choice", "shuffle"):
        ok = isinstance(arg, list) and len(arg) > 0
        msg = f"'{kind}' takes a non-empty list"
    elif kind == "sample":
        ok = (
            isinstance(arg, dict)
            and isinstance(arg.get("from"), list)
            and isinstance(arg.get("k"), int)
            and 0 <= arg["k"] <= len(arg["from"])
        )
        msg = "'sample' takes {from: [..], k: N} with N <= the list's length"
    elif kind == "expr":
        ok = isinstance(arg, str)
        msg = "'expr' takes an expression string"
    else:
        msg = ""
    if not ok:
        raise ValueError(msg)


# --------------------------------------------------------------------------------------------
# loading


def _line_map(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map each path in a YAML document to its 1-based line."""
    out: dict[tuple[Any, ...], int] = {}
    if node is None:
        return out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = getattr(key_node, "value", None)
            out.update(_line_map(value_node, path + (key,)))
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.update(_line_map(item, path + (i,)))
    return out


def _line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file (YAML)."""
    p = Path(path)
    source = str(path)
    if not p.exists():
        raise ScenarioError("file not found", source=source)
    if p.is_dir():
        raise ScenarioError("is a directory, not a scenario file", source=source)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(
                f"file is {size} bytes; scenario files are limited to {MAX_FILE_BYTES}",
                source=source,
            )
        raw = p.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read the file: {exc.strerror or exc}", source=source) from None
    return load_scenario_bytes(raw, source=source, base_dir=p.parent)


def load_scenario_bytes(raw: bytes, *, source: str, base_dir: Path | None = None) -> Scenario:
    if b"\x00" in raw:
        raise ScenarioError("this is a binary file, not a YAML scenario", source=source)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            f"not UTF-8 text (byte {exc.start}); a scenario file is YAML text", source=source
        ) from None
    return load_scenario_text(text, source=source)


def load_scenario_text(text: str, *, source: str = "<string>") -> Scenario:
    if not text.strip():
        raise ScenarioError("the file is empty; a scenario needs at least 'name' and 'hops'", source=source)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        msg = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
        raise ScenarioError(msg, source=source, line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise ScenarioError("invalid YAML: nested too deeply", source=source) from None
    lines = _line_map(node)
    return scenario_from_dict(data, source=source, lines=lines)


def scenario_from_dict(
    data: Any,
    *,
    source: str = "<dict>",
    lines: dict[tuple[Any, ...], int] | None = None,
    draw_vars: VarDrawer | None = None,
    ref: dict[str, Any] | None = None,
) -> Scenario:
    """Validate a scenario given as plain data (what a YAML file or a generator produces)."""
    lines = lines or {}
    if not isinstance(data, dict):
        raise ScenarioError(
            f"the top level must be a mapping with 'name' and 'hops', not a {type(data).__name__}",
            source=source,
            line=lines.get(()),
        )
    if "generator" in data:
        from .generators import scenario_from_generator_ref

        return scenario_from_generator_ref(data, source=source, lines=lines)

    hops_raw = data.get("hops") if isinstance(data.get("hops"), list) else []

    def hop_id_at(index: Any) -> str | None:
        if isinstance(index, int) and index < len(hops_raw) and isinstance(hops_raw[index], dict):
            hid = hops_raw[index].get("id")
            return str(hid) if hid is not None else f"#{index + 1}"
        return None

    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        hop = hop_id_at(loc[1]) if len(loc) > 1 and loc[0] == "hops" else None
        fld_parts = [str(x) for x in (loc[2:] if hop else loc)]
        # pydantic puts the model-level validator failures at the hop itself
        fld = ".".join(p for p in fld_parts if not p.startswith("function-")) or None
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = f"unknown field (allowed: {_allowed_fields(loc, hop)})"
        elif err["type"] == "missing":
            msg = "required field is missing"
        more = len(exc.errors()) - 1
        if more:
            msg += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ScenarioError(msg, source=source, line=_line_for(lines, loc), hop=hop, field=fld) from None

    def hop_line(i: int, fld: str | None = None) -> int | None:
        return _line_for(lines, ("hops", i, fld) if fld else ("hops", i))

    # ids, dependencies and the graph
    graph = nx.DiGraph()
    for i, hop in enumerate(spec.hops):
        if hop.id in graph:
            raise ScenarioError(
                "duplicate hop id", source=source, line=hop_line(i, "id"), hop=hop.id, field="id"
            )
        if hop.id in spec.world or hop.id in spec.vars:
            raise ScenarioError(
                "hop id shadows a world or vars name of the same spelling",
                source=source,
                line=hop_line(i, "id"),
                hop=hop.id,
                field="id",
            )
        graph.add_node(hop.id, spec=hop, index=i)
    for i, hop in enumerate(spec.hops):
        seen: set[str] = set()
        for dep in hop.depends_on:
            if dep == hop.id:
                raise ScenarioError(
                    "a hop cannot depend on itself",
                    source=source,
                    line=hop_line(i, "depends_on"),
                    hop=hop.id,
                    field="depends_on",
                )
            if dep not in graph:
                raise ScenarioError(
                    f"depends on unknown hop {dep!r} (hops: {', '.join(graph.nodes)})",
                    source=source,
                    line=hop_line(i, "depends_on"),
                    hop=hop.id,
                    field="depends_on",
                )
            if dep in seen:
                raise ScenarioError(
                    f"lists {dep!r} twice",
                    source=source,
                    line=hop_line(i, "depends_on"),
                    hop=hop.id,
                    field="depends_on",
                )
            seen.add(dep)
            graph.add_edge(dep, hop.id)
    if not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(graph)
        path = " -> ".join([e[0] for e in cycle] + [cycle[0][0]])
        first = cycle[0][1]
        raise ScenarioError(
            f"dependency cycle: {path}",
            source=source,
            line=hop_line(graph.nodes[first]["index"], "depends_on"),
            hop=first,
            field="depends_on",
        )
    order = list(nx.lexicographical_topological_sort(graph, key=lambda n: graph.nodes[n]["index"]))
    depth: dict[str, int] = {}
    for n in order:
        depth[n] = 1 + max((depth[p] for p in graph.predecessors(n)), default=0)

    # names used by templates and expressions
    world_names = set(spec.world) | {"world"}
    var_names: set[str] = set()
    for name, vspec in spec.vars.items():
        try:
            _check_var_spec(name, vspec)
        except ValueError as exc:
            raise ScenarioError(str(exc), source=source, line=_line_for(lines, ("vars", name)), field=f"vars.{name}") from None
        if isinstance(vspec, dict) and list(vspec) == ["expr"]:
            _check_names(
                vspec["expr"], world_names | var_names | {"vars"}, set(), expression=True,
                source=source, line=_line_for(lines, ("vars", name)), hop=None, fld=f"vars.{name}",
            )
        var_names.add(name)
    if draw_vars is not None:
        var_names |= set((ref or {}).get("var_names", []))
    base_names = world_names | var_names | {"vars"}
    if spec.system:
        _check_names(
            spec.system, base_names, set(), expression=False, source=source,
            line=_line_for(lines, ("system",)), hop=None, fld="system",
        )
    all_hops = set(graph.nodes)
    for i, hop in enumerate(spec.hops):
        parents = set(hop.depends_on)
        allowed = base_names | parents
        others = all_hops - parents
        if hop.prompt is not None:
            _check_names(hop.prompt, allowed, others, expression=False, source=source,
                         line=hop_line(i, "prompt"), hop=hop.id, fld="prompt")
        if isinstance(hop.expect, str):
            _check_names(hop.expect, allowed, others, expression=True, source=source,
                         line=hop_line(i, "expect"), hop=hop.id, fld="expect")
        for key, value in hop.args.items():
            if isinstance(value, str):
                _check_names(value, allowed, others, expression=True, source=source,
                             line=_line_for(lines, ("hops", i, "args", key)), hop=hop.id, fld=f"args.{key}")
        if hop.grammar is not None:
            from .grammar import check_grammar

            problem = check_grammar(hop.grammar)
            if problem:
                raise ScenarioError(problem, source=source, line=hop_line(i, "grammar"), hop=hop.id, field="grammar")

    scenario = Scenario(
        spec=spec,
        source=source,
        ref=ref or {"kind": "spec", "spec": spec.model_dump(mode="json")},
        graph=graph,
        order=order,
        depth=depth,
        draw_vars=draw_vars,
    )
    # a dry run: draw one instance and render every template with the expected inputs, so that
    # runtime errors (a missing key in a table, a failing tool) show up at load time
    inst = scenario.instance(0, 0)
    base = inst.context(spec.world)
    try:
        scenario.render_system(inst)
    except Exception as exc:  # noqa: BLE001
        raise ScenarioError(f"template fails to render: {exc}", source=source,
                            line=_line_for(lines, ("system",)), field="system") from None
    for i, hop in enumerate(spec.hops):
        if hop.prompt is None:
            continue
        ctx = dict(base)
        for p in hop.depends_on:
            ctx[p] = inst.expected[p]
        try:
            expr.render(hop.prompt, ctx)
        except Exception as exc:  # noqa: BLE001
            raise ScenarioError(f"template fails to render: {exc}", source=source,
                                line=hop_line(i, "prompt"), hop=hop.id, field="prompt") from None
    return scenario


def _allowed_fields(loc: tuple[Any, ...], hop: str | None) -> str:
    if hop is not None and len(loc) == 3:
        return ", ".join(HopSpec.model_fields)
    if hop is not None and len(loc) == 4 and loc[2] == "parse":
        return ", ".join(ParseSpec.model_fields)
    if hop is not None and len(loc) == 4 and loc[2] == "check":
        return ", ".join(CheckSpec.model_fields)
    return ", ".join(ScenarioSpec.model_fields) + ", generator, params"


def _check_names(
    source_text: str,
    allowed: set[str],
    other_hops: set[str],
    *,
    expression: bool,
    source: str,
    line: int | None,
    hop: str | None,
    fld: str,
) -> None:
    try:
        names = expr.expression_names(source_text) if expression else expr.template_names(source_text)
    except expr.TemplateSyntaxError as exc:
        offset = (exc.lineno - 1) if (exc.lineno and not expression) else 0
        raise ScenarioError(
            f"{'expression' if expression else 'template'} syntax error: {exc.message}",
            source=source,
            line=(line + offset) if line else None,
            hop=hop,
            field=fld,
        ) from None
    for name in sorted(names - allowed):
        if name in other_hops:
            msg = f"uses hop {name!r}, which is not in depends_on"
        else:
            known = ", ".join(sorted(allowed - {"world", "vars"})) or "none"
            msg = f"undeclared variable {name!r} (known here: {known})"
        raise ScenarioError(msg, source=source, line=line, hop=hop, field=fld)


# --------------------------------------------------------------------------------------------
# resolving a name, a file, or a stored reference


def resolve_scenario(ref: str | Path | Scenario, params: dict[str, Any] | None = None) -> Scenario:
    """A scenario from a file path, a bundled scenario name, or a generator family name."""
    if isinstance(ref, Scenario):
        if params:
            raise ScenarioError("params apply to generator families, not to a loaded scenario")
        return ref
    text = str(ref)
    p = Path(text)
    if p.suffix in (".yaml", ".yml") or p.exists() or "/" in text:
        if params:
            scenario = load_scenario(p)
            if scenario.ref.get("kind") == "generator":
                from .generators import build_generator

                merged = {**scenario.ref.get("params", {}), **params}
                return build_generator(scenario.ref["name"], merged, source=text)
            raise ScenarioError(
                "--param applies to generator families; this file defines its hops itself",
                source=text,
            )
        return load_scenario(p)
    from .generators import build_generator, get_generator

    if get_generator(text) is not None:
        return build_generator(text, params or {}, source=text)
    bundled = bundled_scenario_path(text)
    if bundled is not None:
        if params:
            raise ScenarioError(f"scenario {text!r} is a file; --param applies to generator families")
        return load_scenario(bundled)
    from .generators import available_generators

    names = sorted(set(available_generators()) | set(bundled_scenarios()))
    raise ScenarioError(
        f"no scenario file or family named {text!r}",
        hint=f"bundled: {', '.join(names)}; or give a path to a .yaml file",
    )


def scenario_from_ref(ref: dict[str, Any]) -> Scenario:
    """Rebuild a scenario from the reference stored with a run (used by resume)."""
    kind = ref.get("kind")
    if kind == "generator":
        from .generators import build_generator

        scenario = build_generator(ref["name"], ref.get("params", {}), source=ref["name"])
        if ref.get("name_override"):
            # a scenario file renamed the family's scenario: the name seeds the instances
            scenario.spec.name = ref["name_override"]
            scenario.ref["name_override"] = ref["name_override"]
        return scenario
    if kind == "spec":
        return scenario_from_dict(ref["spec"], source=f"<stored scenario {ref['spec'].get('name')}>")
    raise ScenarioError(f"unknown stored scenario reference {kind!r}")


def bundled_dir() -> Path:
    """The folder of bundled scenario files (``scenarios/`` in a checkout)."""
    here = Path(__file__).resolve().parent
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
