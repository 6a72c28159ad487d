"""Tool hops: argument names, a wrong argument's error, ``agentsim tools list``, the README table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agentsim.tools import (
    TOOLS,
    ToolError,
    available_tools,
    call_tool,
    check_tool_args,
    describe_tools,
    tool,
    tool_arguments,
    tool_signature,
)
from tests.helpers import run_cli

README = Path(__file__).resolve().parents[2] / "README.md"


def test_argument_names_of_the_built_ins():
    assert tool_arguments("lookup") == ["table", "key"]
    assert tool_signature("add") == "add(a, b)"
    assert tool_signature("max") == "max(values)"
    assert tool_signature("sqrt") == "sqrt(x)"
    assert tool_signature("identity") == "identity(value)"


def test_a_wrong_argument_names_the_accepted_ones():
    with pytest.raises(ToolError) as exc:
        call_tool("lookup", {"tbl": {"a": 1}, "key": "a"})
    msg = str(exc.value)
    assert "no argument 'tbl'" in msg and "missing 'table'" in msg and "lookup(table, key)" in msg
    with pytest.raises(ToolError, match=r"missing 'b'; it takes add\(a, b\)"):
        call_tool("add", {"a": 1})
    assert check_tool_args("add", ["a", "b"]) is None
    assert call_tool("lookup", {"table": {"a": 1}, "key": "A"}) == 1


def test_an_unknown_tool_lists_the_registered_ones():
    with pytest.raises(ToolError, match="registered tools: .*lookup"):
        call_tool("nope", {})


def test_optional_and_keyword_arguments_of_your_own_tools():
    with TOOLS.scoped():
        @tool("scale_by")
        def scale_by(x, factor=2):
            """x times factor."""
            return x * factor

        @tool("anything")
        def anything(**kw):
            return len(kw)

        assert tool_arguments("scale_by") == ["x", "factor=2"]
        assert call_tool("scale_by", {"x": 3}) == 6
        assert call_tool("anything", {"p": 1, "q": 2}) == 2
        d = next(t for t in describe_tools() if t["name"] == "scale_by")
        assert d["description"] == "x times factor." and d["signature"] == "scale_by(x, factor=2)"
    assert "scale_by" not in available_tools()


def test_a_scenario_with_a_wrong_tool_argument_fails_with_the_accepted_ones(tmp_path):
    from agentsim.errors import ScenarioError
    from agentsim.scenario import load_scenario

    p = tmp_path / "t.yaml"
    p.write_text("name: t\nworld:\n  prices: {a: 1}\nhops:\n  - id: look\n    kind: tool\n    tool: lookup\n"
                 "    args: {tbl: prices, key: \"'a'\"}\n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    assert "lookup(table, key)" in str(exc.value)


def _cli(*args):
    return run_cli(*args, check=False)


def test_tools_list_json_and_table():
    proc = _cli("tools", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    tools = {t["name"]: t for t in json.loads(proc.stdout)}
    assert set(tools) >= {"lookup", "add", "sub", "mul", "div", "min", "max", "sqrt", "identity"}
    assert tools["lookup"]["arguments"] == ["table", "key"] and tools["lookup"]["origin"] == "built-in"
    assert all(t["description"] for t in tools.values())
    table = _cli("tools", "list").stdout
    assert re.search(r"lookup\s+table, key", table)


def test_readme_tool_table_names_every_argument():
    """The README's tool row lists each built-in tool with its arguments, as the code has them."""
    text = README.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `tool`, `args`"))
    for name in ("lookup", "add", "sub", "mul", "div", "min", "max", "sqrt", "identity"):
        assert f"`{tool_signature(name)}`" in row, name
