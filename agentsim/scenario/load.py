"""Loading scenario files: bytes -> text -> YAML (with line numbers) -> a compiled Scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from agentsim.errors import ScenarioError

from .compile import scenario_from_dict
from .model import Scenario
from .spec import MAX_FILE_BYTES

__all__ = ["load_scenario", "load_scenario_bytes", "load_scenario_text", "scenario_from_data"]


def line_map(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map each path in a YAML document to its 1-based line."""
    out: dict[tuple[Any, ...], int] = {}
    if node is None:
        return out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = getattr(key_node, "value", None)
            out.update(line_map(value_node, path + (key,)))
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.update(line_map(item, path + (i,)))
    return out



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
    lines = line_map(node)
    return scenario_from_data(data, source=source, lines=lines)



def scenario_from_data(data: Any, *, source: str, lines: dict[tuple[Any, ...], int] | None = None) -> Scenario:
    """A parsed file's data: a generator reference (``generator: NAME``) or a full scenario."""
    if isinstance(data, dict) and "generator" in data:
        from .registry import scenario_from_generator_ref

        return scenario_from_generator_ref(data, source=source, lines=lines or {})
    return scenario_from_dict(data, source=source, lines=lines)
