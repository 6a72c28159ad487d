"""Compiling plain data (a parsed YAML file or a generator's output) into a validated Scenario."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import networkx as nx
from pydantic import ValidationError

from agentsim import expr
from agentsim.answers import (
    AnswerFormatError,
    CheckSpec,
    ParseSpec,
    as_number,
    format_answer,
    normalize_text,
)
from agentsim.errors import ScenarioError, yaml_trap_hint
from agentsim.grammar import GrammarError, compile_grammar
from agentsim.limits import LimitExceeded, current

from .model import Scenario, ScenarioWarning, VarDrawer
from .spec import HopSpec, ScenarioSpec
from .vars import check_var_spec

__all__ = ["scenario_from_dict", "line_for", "answer_warnings"]


def line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())



def scenario_from_dict(
    data: Any,
    *,
    source: str = "<dict>",
    lines: dict[tuple[Any, ...], int] | None = None,
    draw_vars: VarDrawer | None = None,
    ref: dict[str, Any] | None = None,
) -> Scenario:
    """Validate a scenario given as plain data (what a YAML file or a generator produces).

    Each stage lists every problem it finds (the schema's, then the graph's) in one
    :class:`ScenarioError`; then the names templates use, then a dry run of one instance."""
    lines = lines or {}
    spec = _validated_spec(data, source, lines)

    def hop_line(i: int, fld: str | None = None) -> int | None:
        return line_for(lines, ("hops", i, fld) if fld else ("hops", i))

    graph, order, depth = _graph(spec, source, hop_line)
    _check_spec_names(spec, set(graph.nodes), source, lines, hop_line, draw_vars=draw_vars, ref=ref)
    stored = ref or {"kind": "spec", "spec": spec.model_dump(mode="json")}
    cap = current().file_bytes
    if cap is not None and ref is None:
        size = len(json.dumps(stored, default=str))
        if size > cap:
            raise LimitExceeded(
                f"the scenario's definition is {size:,} characters as stored (its YAML aliases "
                f"expanded); the limit is {cap:,} (limit file_bytes)",
                limit="file_bytes", source=source, line=lines.get(()),
            )
    scenario = Scenario(
        spec=spec,
        source=source,
        ref=stored,
        graph=graph,
        order=order,
        depth=depth,
        draw_vars=draw_vars,
        lines=dict(lines),
    )
    _dry_run(scenario, source, lines, hop_line)
    _check_sampled_answers(scenario, hop_line)
    return scenario


def _raise_all(problems: list[ScenarioError]) -> None:
    """One error carrying every problem: the first said in full, with how many more."""
    if not problems:
        return
    first = problems[0]
    if len(problems) == 1:
        raise first
    more = len(problems) - 1
    msg = first.detail + f" (and {more} more problem{'s' if more > 1 else ''})"
    raise ScenarioError(msg, source=first.source, line=first.line, hop=first.hop, field=first.field,
                        hint=first.hint, problems=problems)


def _validated_spec(data: Any, source: str, lines: dict[tuple[Any, ...], int]) -> ScenarioSpec:
    """The scenario's schema: every problem, each with its line, hop and field."""
    if not isinstance(data, dict):
        raise ScenarioError(
            f"the top level must be a mapping with 'name' and 'hops', not a {type(data).__name__}",
            source=source,
            line=lines.get(()),
        )
    if "generator" in data:
        raise ScenarioError(
            "a generator reference ('generator: NAME') is resolved by the loader, not compiled",
            source=source, line=lines.get(("generator",)), field="generator",
        )

    hops_raw = data.get("hops") if isinstance(data.get("hops"), list) else []

    def hop_id_at(index: Any) -> str | None:
        if isinstance(index, int) and index < len(hops_raw) and isinstance(hops_raw[index], dict):
            hid = hops_raw[index].get("id")
            return str(hid) if hid is not None else f"#{index + 1}"
        return None

    try:
        return ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
    problems = []
    for err in errors:
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
        problems.append(ScenarioError(msg, source=source, line=line_for(lines, loc), hop=hop, field=fld,
                                      hint=yaml_trap_hint(err.get("type", ""), err.get("input"))))
    _raise_all(problems)
    raise AssertionError("a ValidationError without errors")


def _graph(spec: ScenarioSpec, source: str, hop_line: Any) -> tuple[nx.DiGraph, list[str], dict[str, int]]:
    """The hops' graph, its topological order and every hop's depth. Every problem is listed
    (duplicate or shadowing ids, a hop depending on itself, on an unknown hop or on one twice,
    and each cycle), as the schema's are."""
    problems: list[ScenarioError] = []

    def problem(msg: str, i: int, hop: str, fld: str) -> None:
        problems.append(ScenarioError(msg, source=source, line=hop_line(i, fld), hop=hop, field=fld))

    graph = nx.DiGraph()
    for i, hop in enumerate(spec.hops):
        if hop.id in graph:
            problem("duplicate hop id", i, hop.id, "id")
            continue
        if hop.id in spec.world or hop.id in spec.vars:
            problem("hop id shadows a world or vars name of the same spelling", i, hop.id, "id")
        graph.add_node(hop.id, spec=hop, index=i)
    for i, hop in enumerate(spec.hops):
        seen: set[str] = set()
        for dep in hop.depends_on:
            if dep == hop.id:
                problem("a hop cannot depend on itself", i, hop.id, "depends_on")
            elif dep in seen:
                problem(f"lists {dep!r} twice", i, hop.id, "depends_on")
            elif dep not in graph:
                problem(f"depends on unknown hop {dep!r} (hops: {', '.join(graph.nodes)})", i, hop.id, "depends_on")
            else:
                graph.add_edge(dep, hop.id)
            seen.add(dep)
    for component in sorted(nx.strongly_connected_components(graph), key=lambda c: min(graph.nodes[n]["index"] for n in c)):
        if len(component) < 2:
            continue
        cycle = nx.find_cycle(graph.subgraph(component))
        path = " -> ".join([e[0] for e in cycle] + [cycle[0][0]])
        first = cycle[0][1]
        problem(f"dependency cycle: {path}", graph.nodes[first]["index"], first, "depends_on")
    _raise_all(problems)
    order = list(nx.lexicographical_topological_sort(graph, key=lambda n: graph.nodes[n]["index"]))
    depth: dict[str, int] = {}
    for n in order:
        depth[n] = 1 + max((depth[p] for p in graph.predecessors(n)), default=0)
    return graph, order, depth


def _check_spec_names(spec: ScenarioSpec, all_hops: set[str], source: str, lines: dict[tuple[Any, ...], int],
                      hop_line: Any, *, draw_vars: VarDrawer | None, ref: dict[str, Any] | None) -> None:
    """The names templates and expressions use are defined where they are used; grammars parse."""
    world_names = set(spec.world) | {"world"}
    var_names: set[str] = set()
    for name, vspec in spec.vars.items():
        try:
            check_var_spec(name, vspec)
        except ValueError as exc:
            raise ScenarioError(str(exc), source=source, line=line_for(lines, ("vars", name)), field=f"vars.{name}") from None
        if isinstance(vspec, dict) and list(vspec) == ["expr"]:
            _check_names(
                vspec["expr"], world_names | var_names | {"vars"}, set(), expression=True,
                source=source, line=line_for(lines, ("vars", name)), hop=None, fld=f"vars.{name}",
            )
        var_names.add(name)
    if draw_vars is not None:
        var_names |= set((ref or {}).get("var_names", []))
    base_names = world_names | var_names | {"vars"}
    if spec.system:
        _check_names(
            spec.system, base_names, set(), expression=False, source=source,
            line=line_for(lines, ("system",)), hop=None, fld="system",
        )
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
                             line=line_for(lines, ("hops", i, "args", key)), hop=hop.id, fld=f"args.{key}")
        if isinstance(hop.inputs, list):
            outside = [h for h in hop.inputs if h not in parents]
            if outside:
                raise ScenarioError(
                    f"inputs {', '.join(map(repr, outside))} not in depends_on (inputs are the parents the "
                    "expected answer uses)", source=source, line=hop_line(i, "inputs"), hop=hop.id, field="inputs")
        elif isinstance(hop.inputs, str):
            _check_names(hop.inputs, base_names, all_hops, expression=True, source=source,
                         line=hop_line(i, "inputs"), hop=hop.id, fld="inputs")
        if hop.grammar is not None:
            try:
                compile_grammar(hop.grammar)
            except GrammarError as exc:
                raise ScenarioError(f"invalid grammar: {exc}", source=source, line=hop_line(i, "grammar"),
                                    hop=hop.id, field="grammar") from None


def _dry_run(scenario: Scenario, source: str, lines: dict[tuple[Any, ...], int], hop_line: Any) -> None:
    """Draw one instance and render every template with the expected inputs, so that runtime
    errors (a missing key in a table, a failing tool, a limit) show up at load time."""
    spec = scenario.spec
    inst = scenario.instance(0, 0)
    base = inst.context(spec.world)
    try:
        scenario.render_system(inst)
    except ScenarioError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ScenarioError(f"template fails to render: {exc}", source=source,
                            line=line_for(lines, ("system",)), field="system") from None
    for i, hop in enumerate(spec.hops):
        if hop.prompt is None:
            continue
        ctx = dict(base)
        for p in hop.depends_on:
            ctx[p] = inst.expected[p]
        try:
            expr.render(hop.prompt, ctx)
        except LimitExceeded as exc:
            raise exc.located(source=source, line=hop_line(i, "prompt"), hop=hop.id, field="prompt") from None
        except Exception as exc:  # noqa: BLE001
            raise ScenarioError(f"template fails to render: {exc}", source=source,
                                line=hop_line(i, "prompt"), hop=hop.id, field="prompt") from None
        if hop.kind == "llm":
            for message, fld, hint in answer_warnings(hop, inst.expected[hop.id]):
                scenario.warnings.append(ScenarioWarning(
                    message, source=source, line=hop_line(i, fld) or hop_line(i), hop=hop.id, field=fld, hint=hint,
                ))


#: how many instances ``validate`` draws to hold their expected answers against hop grammars
SAMPLED_INSTANCES = 8


def _check_sampled_answers(scenario: Scenario, hop_line: Any) -> None:
    """Hold the expected answers of sampled instances (1 .. SAMPLED_INSTANCES - 1; instance 0 is
    checked above) against each hop's grammar and parse: an answer a hop's grammar cannot
    produce makes its hop unanswerable for that instance, and ``validate`` says so."""
    warned = {w.hop for w in scenario.warnings if w.field in ("grammar", "parse", "expect")}
    hops = [(i, h) for i, h in enumerate(scenario.spec.hops)
            if h.kind == "llm" and h.grammar is not None and h.id not in warned]
    if not hops:
        return
    deadline = time.monotonic() + 2.0
    for k in range(1, SAMPLED_INSTANCES):
        if not hops or time.monotonic() > deadline:
            return
        try:
            inst = scenario.instance(0, k)
        except Exception:  # noqa: BLE001 - instance 0 drew fine; the run reports its own draws
            return
        for i, hop in list(hops):
            for message, fld, hint in answer_warnings(hop, inst.expected.get(hop.id)):
                if fld == "grammar":
                    scenario.warnings.append(ScenarioWarning(
                        f"instance {k}: {message}", source=scenario.source, line=hop_line(i, fld) or hop_line(i),
                        hop=hop.id, field=fld, hint=hint,
                    ))
                    hops.remove((i, hop))
                    break


_STRING_PARSES = ("regex", "text", "choice")


def answer_warnings(hop: HopSpec, expected: Any) -> list[tuple[str, str, str]]:
    """Why ``hop`` can never be judged right when its expected answer is ``expected`` (one
    instance's): ``(message, field, hint)`` for each problem found, most useful first.

    A parse type yields strings (``regex``, ``text``, ``choice``), numbers (``number``,
    ``integer``) or any JSON value (``json``); an ``exact`` check compares a string with a number
    as unequal, so ``'-4'`` never matches ``-4``.
    """
    if expected is None or hop.check is None:
        return []
    shown = repr(expected) if len(repr(expected)) <= 40 else repr(expected)[:37] + "..."
    if isinstance(expected, float) and not math.isfinite(expected):
        # nan equals nothing (not even itself) and no answer reads back as inf
        return [(f"expect evaluates to {shown}, which no answer can equal", "expect",
                 "make expect a finite value")]
    return _check_warnings(hop, expected, shown) + _format_warnings(hop, expected, shown)


def _check_warnings(hop: HopSpec, expected: Any, shown: str) -> list[tuple[str, str, str]]:
    """What the hop's parse type and check say about ``expected``: a string compared exactly with
    a number, text that normalising changes, a value outside the choices, ..."""
    assert hop.check is not None
    parse, check = hop.parse.type, hop.check.type
    out: list[tuple[str, str, str]] = []
    is_num = isinstance(expected, (int, float)) and not isinstance(expected, bool)
    if check == "exact":
        if parse in _STRING_PARSES and is_num:
            out.append((
                f"parse '{parse}' yields a string, but expect evaluates to the number {shown}: under "
                f"check 'exact' the string '{expected}' never equals the number {shown}",
                "expect",
                "use 'parse: number' (or integer) to read a number, or 'check: numeric' to compare "
                "numeric strings as numbers, or 'check: normalized' to compare both as text",
            ))
        elif parse in ("number", "integer") and not is_num:
            out.append((
                f"parse '{parse}' yields a number, but expect evaluates to {type(expected).__name__} "
                f"{shown}, which check 'exact' never finds equal to a number",
                "expect",
                "make expect a number (e.g. drop the quotes around it), or use 'check: numeric' or "
                "'check: normalized'",
            ))
        elif parse == "text" and isinstance(expected, str) and normalize_text(expected) != expected:
            out.append((
                f"parse 'text' yields normalised text ({normalize_text(expected)!r}), which check "
                f"'exact' never finds equal to {shown}",
                "check",
                "use 'check: normalized' (the default for text)",
            ))
        elif parse == "choice" and hop.parse.options and expected not in hop.parse.options:
            out.append((
                f"parse 'choice' yields one of {hop.parse.options}, and expect evaluates to {shown}, "
                "which check 'exact' never finds among them",
                "expect",
                "use 'check: normalized' (the default for choices), or list the value in options",
            ))
        elif (parse == "json" and hop._check_defaulted and isinstance(expected, str)
              and as_number(expected) is None):
            out.append((
                f"a text field read from JSON (parse 'json') is compared exactly by default, so "
                f"{expected.swapcase()!r} or {(expected + ' ')!r} is judged wrong against {shown}, unlike "
                "a 'text' parse, which compares normalised text",
                "check",
                "add 'check: normalized' to compare text as 'text' parses do (or 'check: exact' to keep "
                "exact comparison and silence this)",
            ))
    elif check == "numeric" and as_number(expected) is None:
        out.append((
            f"check 'numeric' compares numbers, but expect evaluates to {shown}",
            "check",
            "use 'check: exact' or 'check: normalized' for text answers",
        ))
    elif check == "numeric" and parse == "integer" and is_num and not _whole(expected):
        tol = hop.check.tol + hop.check.rel * abs(float(expected))
        if abs(float(expected) - round(float(expected))) > tol:
            out.append((
                f"parse 'integer' yields whole numbers, but expect evaluates to {shown}",
                "parse",
                "use 'parse: number' for decimal answers",
            ))
    return out


def _format_warnings(hop: HopSpec, expected: Any, shown: str) -> list[tuple[str, str, str]]:
    """Whether ``expected`` can be written as an answer at all: through the parse (what the
    oracle writes), and, for a hop with a grammar, through the grammar too."""
    parse = hop.parse.type
    out: list[tuple[str, str, str]] = []
    try:
        format_answer(expected, hop.parse)
    except AnswerFormatError as exc:
        grammar_blocks = False
        target = {"regex": "the pattern so that its group captures", "choice": "the options so that they include"}
        out.append((
            f"{exc}: no completion can be judged right (the oracle backend cannot answer it either)",
            "parse",
            f"fix {target.get(parse, 'the parse so that it reads')} answers like {shown}, or the expect",
        ))
    else:
        grammar_blocks = hop.grammar is not None
    if grammar_blocks:
        assert hop.grammar is not None
        try:
            format_answer(expected, hop.parse, hop.grammar)
        except AnswerFormatError as exc:
            out.append((
                f"{exc}: the model is held to the grammar, so no completion can be judged right "
                "(the oracle answers through the grammar and scores 0 here)",
                "grammar",
                f"make the grammar admit answers like {shown} (e.g. add it to the choice), or fix the expect",
            ))
    return out


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
    except LimitExceeded as exc:
        raise exc.located(source=source, line=line, hop=hop, field=fld) from None
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



def _whole(value: object) -> bool:
    """Whether a numeric expected answer is a whole number, without ``float()`` of a huge int
    (an integer past 1e308 overflows it: a fuzzed scenario file crashed validation so)."""
    if isinstance(value, int):
        return True
    f = float(value)  # type: ignore[arg-type]
    return not math.isfinite(f) or f.is_integer()  # inf/nan: no fraction to warn about
