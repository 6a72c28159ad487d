"""A validated scenario (spec + networkx DAG) and its seeded instances."""

from __future__ import annotations

import hashlib
import inspect
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from agentsim import expr
from agentsim.errors import ScenarioError
from agentsim.limits import LimitExceeded
from agentsim.tools import ToolError, call_tool
from agentsim.values import jsonable

from .spec import HopSpec, ScenarioSpec
from .vars import draw_var

__all__ = ["Instance", "Scenario", "ScenarioWarning", "VarDrawer"]


@dataclass(frozen=True)
class ScenarioWarning:
    """Something valid but almost certainly wrong (a hop that can never be judged right), with
    its place in the file like a :class:`~agentsim.errors.ScenarioError`; ``validate`` prints it
    and ``validate --strict`` fails on it."""

    message: str
    source: str | None = None
    line: int | None = None
    hop: str | None = None
    field: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = ", ".join(x for x in (f"hop '{self.hop}'" if self.hop else "",
                                      f"field '{self.field}'" if self.field else "") if x)
        text = f"{where}: {self.message}" if where else self.message
        if self.source:
            text = f"{self.source}:{self.line}: {text}" if self.line else f"{self.source}: {text}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text


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


#: ``draw(rng, world)`` -> the instance's variables. A drawer that also declares keyword
#: parameters ``seed`` and ``index`` is given them (e.g. to walk a seeded permutation of a data
#: set: instance i of seed s takes its i-th item, no item twice until all have been used).
VarDrawer = Callable[..., dict[str, Any]]


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
    #: the line of each path in the file (``("hops", 0, "expect")`` -> 12), empty for families
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict, repr=False)
    #: what validation found valid but suspicious (see :class:`ScenarioWarning`)
    warnings: list[ScenarioWarning] = field(default_factory=list)

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

    def line_of(self, hop_id: str | None, fld: str | None = None) -> int | None:
        """The file line of a hop's field (or of the hop, or of a top-level field), if known."""
        if not self.lines:
            return None
        if hop_id is not None and hop_id in self.graph:
            loc: tuple[Any, ...] = ("hops", self.graph.nodes[hop_id]["index"])
            if fld:
                loc += tuple(fld.split("."))
        else:
            loc = tuple(fld.split(".")) if fld else ()
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get(())

    def _located(self, exc: LimitExceeded, hop_id: str | None, fld: str | None) -> LimitExceeded:
        return exc.located(source=self.source, line=self.line_of(hop_id, fld), hop=hop_id, field=fld)

    @property
    def fingerprint(self) -> str:
        blob = json.dumps(self.ref, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # instances -------------------------------------------------------------------------

    def instance(self, seed: int, index: int) -> Instance:
        """Instance ``index`` of ``seed``: independent of how many instances are drawn."""
        rng = random.Random(f"agentsim:{self.spec.name}:{seed}:{index}")
        world = self.spec.world
        values = self._draw(rng, world, seed, index)
        inst = Instance(index=index, seed=seed, vars=values, expected={})
        base = inst.context(world)
        for hop_id in self.order:
            spec = self.hop(hop_id)
            ctx = dict(base)
            for p in spec.depends_on:
                ctx[p] = inst.expected[p]
            fld = "expect" if spec.expect is not None or spec.kind == "llm" else "args"
            try:
                inst.expected[hop_id] = self.expected_given(spec, ctx)
                expr.check_value_size(inst.expected[hop_id], "the expected answer")
            except ToolError as exc:
                raise ScenarioError(
                    f"the tool fails on the expected inputs ({exc})",
                    source=self.source,
                    line=self.line_of(hop_id, "args"),
                    hop=hop_id,
                    field="args",
                ) from None
            except LimitExceeded as exc:
                raise self._located(exc, hop_id, fld) from None
            except ScenarioError:
                raise
            except Exception as exc:  # noqa: BLE001 - sandboxed evaluation error
                raise ScenarioError(
                    f"cannot compute the expected answer: {type(exc).__name__}: {exc}",
                    source=self.source,
                    line=self.line_of(hop_id, fld),
                    hop=hop_id,
                    field=fld,
                ) from None
        return inst

    def instances(self, n: int, seed: int = 0) -> list[Instance]:
        return [self.instance(seed, i) for i in range(n)]

    def _draw(self, rng: random.Random, world: dict[str, Any], seed: int, index: int) -> dict[str, Any]:
        if self.draw_vars is not None:
            extra = {"seed": seed, "index": index} if _takes_seed_and_index(self.draw_vars) else {}
            drawn: dict[str, Any] = jsonable(self.draw_vars(rng, dict(world), **extra))
            for name, value in drawn.items():
                try:
                    expr.check_value_size(value, f"variable {name!r}")
                except LimitExceeded as exc:
                    raise self._located(exc, None, f"vars.{name}") from None
            return drawn
        values: dict[str, Any] = {}
        for name, spec in self.spec.vars.items():
            try:
                values[name] = draw_var(spec, rng, {**world, "world": world, **values})
                expr.check_value_size(values[name], f"variable {name!r}")
            except LimitExceeded as exc:
                raise self._located(exc, None, f"vars.{name}") from None
            except ScenarioError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise ScenarioError(
                    f"cannot draw variable: {type(exc).__name__}: {exc}",
                    source=self.source,
                    line=self.line_of(None, f"vars.{name}"),
                    field=f"vars.{name}",
                ) from None
        return jsonable(values)

    @staticmethod
    def expected_given(spec: HopSpec, ctx: dict[str, Any]) -> Any:
        """The right answer of ``spec`` given the context (parents bound in ``ctx``)."""
        if spec.kind == "tool" and spec.expect is None:
            assert spec.tool is not None
            args = {k: expr.evaluate(v, ctx) for k, v in spec.args.items()}
            return jsonable(call_tool(spec.tool, args))
        return jsonable(expr.evaluate(spec.expect, ctx))

    def render_system(self, inst: Instance) -> str | None:
        if not self.spec.system:
            return None
        try:
            return expr.render(self.spec.system, inst.context(self.spec.world))
        except LimitExceeded as exc:
            raise self._located(exc, None, "system") from None


def _takes_seed_and_index(fn: Callable[..., Any]) -> bool:
    """Whether a drawer declares the ``seed`` and ``index`` keyword parameters."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "seed" in params and "index" in params
