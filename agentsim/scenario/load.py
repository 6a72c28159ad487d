"""Loading scenario files: bytes -> text -> YAML (with line numbers) -> a compiled Scenario."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from agentsim.errors import ScenarioError
from agentsim.limits import LimitExceeded, Limits, current

from .compile import scenario_from_dict
from .model import Scenario

__all__ = ["load_scenario", "load_scenario_bytes", "load_scenario_text", "scenario_from_data"]


def line_map(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map each path in a YAML document to its 1-based line (iteratively: no recursion limit)."""
    out: dict[tuple[Any, ...], int] = {}
    if node is None:
        return out
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(node, path)]
    seen: set[int] = set()
    while stack:
        cur, where = stack.pop()
        out.setdefault(where, cur.start_mark.line + 1)
        if id(cur) in seen:
            continue  # an alias: the paths below it take the line of where it is used
        seen.add(id(cur))
        if isinstance(cur, yaml.MappingNode):
            for key_node, value_node in cur.value:
                key = getattr(key_node, "value", None)
                out[where + (key,)] = key_node.start_mark.line + 1
                stack.append((value_node, where + (key,)))
        elif isinstance(cur, yaml.SequenceNode):
            for i, item in enumerate(cur.value):
                stack.append((item, where + (i,)))
    return out


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that counts aliases and nesting as it composes (see :mod:`agentsim.limits`)."""

    def __init__(self, stream: str, source: str, lim: Limits) -> None:
        super().__init__(stream)
        self.source = source
        self.lim = lim
        self.aliases = 0
        self.first_alias: int | None = None
        self.nesting = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            self.aliases += 1
            line = event.start_mark.line + 1
            if self.first_alias is None:
                self.first_alias = line
            cap = self.lim.yaml_aliases
            if cap is not None and self.aliases > cap:
                raise LimitExceeded(
                    f"the file uses more than {cap:,} YAML aliases (*name) (limit yaml_aliases)",
                    limit="yaml_aliases", source=self.source, line=line,
                )
            return super().compose_node(parent, index)
        self.nesting += 1
        try:
            cap = self.lim.yaml_depth
            if cap is not None and self.nesting > cap:
                mark = self.peek_event().start_mark
                raise LimitExceeded(
                    f"YAML collections nest more than {cap} levels deep (limit yaml_depth)",
                    limit="yaml_depth", source=self.source, line=mark.line + 1,
                )
            return super().compose_node(parent, index)
        finally:
            self.nesting -= 1


def _construct_int(loader: _BoundedLoader, node: yaml.ScalarNode) -> Any:
    """PyYAML's int, refused with the line when Python could not write it back as text."""
    digits = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    if digits and sum(c.isdigit() for c in str(node.value)) > digits:
        raise ScenarioError(
            f"an integer of {len(str(node.value)):,} characters; integers are read and written as text "
            f"only up to {digits:,} digits", source=loader.source, line=node.start_mark.line + 1,
            hint="quote it to keep it as a string, or write a smaller number",
        )
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _expanded_size(root: yaml.Node) -> tuple[int, int]:
    """``(expanded, unique)``: the size of the document with every alias expanded, and without
    (nodes + characters of scalars).

    An alias shares its anchor's node, so ``expanded`` counts each node once per path that
    reaches it (memoised per node: linear in the file, however much the aliases would expand)."""
    sizes: dict[int, int] = {}
    unique = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1 + len(node.value)
            unique += sizes[id(node)]
            continue
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else list(node.value)
        if done:
            sizes[id(node)] = 1 + sum(sizes.get(id(c), 0) for c in children)
            unique += 1
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)], unique


def _compose(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    lim = current()
    loader = _BoundedLoader(text, source, lim)
    try:
        node = loader.get_single_node()
        if node is not None and loader.aliases:
            cap = lim.yaml_expanded
            size, unique = _expanded_size(node)
            if cap is not None and size - unique > cap:
                raise LimitExceeded(
                    f"the file's {loader.aliases:,} YAML aliases expand it by {size - unique:,} nodes "
                    f"and characters; the limit is {cap:,} (limit yaml_expanded)",
                    limit="yaml_expanded", source=source, line=loader.first_alias,
                )
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data


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
        cap = current().file_bytes
        if cap is not None and size > cap:
            raise LimitExceeded(
                f"file is {size:,} bytes; scenario files are limited to {cap:,} (limit file_bytes)",
                limit="file_bytes", source=source,
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
    cap = current().file_bytes
    if cap is not None and len(text) > cap:
        raise LimitExceeded(
            f"the scenario is {len(text):,} characters; scenario files are limited to {cap:,} bytes "
            "(limit file_bytes)", limit="file_bytes", source=source,
        )
    if not text.strip():
        raise ScenarioError("the file is empty; a scenario needs at least 'name' and 'hops'", source=source)
    try:
        node, data = _compose(text, source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        msg = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
        raise ScenarioError(msg, source=source, line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise ScenarioError("invalid YAML: nested too deeply", source=source) from None
    lines = line_map(node)
    return scenario_from_data(data, source=source, lines=lines)



def scenario_from_data(data: Any, *, source: str, lines: dict[tuple[Any, ...], int] | None = None) -> Scenario:
    """A parsed file's data: a generator reference (``generator: NAME``) or a full scenario."""
    if isinstance(data, dict) and "generator" in data:
        from .registry import scenario_from_generator_ref

        return scenario_from_generator_ref(data, source=source, lines=lines or {})
    return scenario_from_dict(data, source=source, lines=lines)
