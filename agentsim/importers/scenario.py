"""A replayable scenario from recorded calls: each LLM call a hop, each tool result a tool hop.

Edges come from conversation continuation (a call whose messages repeat an earlier call's
messages and answer depends on it), from tool results (the call that asked for a tool, the tool
hop, the call that read its result) and from span parentage. Every assistant message that repeats
an earlier call's answer, and every tool message that carries a recorded tool result, becomes a
``from:`` message: in free mode the hop sees what its parents actually answered at the rung under
test (errors propagate); in oracle mode it sees the recorded answers, which is replay. The
recorded answer is each hop's expected answer (text, checked ``normalized``; a tool call,
parsed as JSON and checked equal).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from agentsim.serve.chat import canonical, canonical_tool_calls, parse_arguments

from .trace import Call, Recording, ToolResult

__all__ = ["scenario_from_recording", "write_scenario"]


def _answer_value(output: dict[str, Any]) -> tuple[Any, dict[str, Any], str]:
    """(expected value, parse type, check type) of a recorded answer."""
    calls = output.get("tool_calls") or []
    if calls:
        values = canonical_tool_calls(calls)
        return (values[0] if len(values) == 1 else values), {"type": "json", "field": "."}, "exact"
    # the whole text (not only its first line), held with case, punctuation and spacing aside
    return str(output.get("content") or ""), {"type": "regex", "pattern": "(?s)(.+)"}, "normalized"


def _max_tokens(call: Call) -> int:
    if call.max_tokens:
        return max(1, min(int(call.max_tokens), 32768))
    if call.output_tokens:
        return max(16, min(2 * int(call.output_tokens) + 16, 32768))
    return 256


class _Builder:
    def __init__(self, rec: Recording) -> None:
        self.rec = rec
        self.hops: list[dict[str, Any]] = []
        self.world: dict[str, Any] = {}
        self.hop_of_span: dict[str, str] = {}
        self.llm: list[tuple[Call, str, list[str]]] = []  # call, hop id, canonical messages + answer
        self.call_ids: dict[str, str] = {}  # tool call id -> hop id that made the call
        self.tool_hop: dict[str, str] = {}  # tool call id -> tool hop id
        self.depth: dict[str, int] = {}

    def build(self) -> dict[str, Any]:
        calls = sorted(self.rec.calls, key=lambda c: c.start)  # stable: file order breaks ties
        tools = sorted(self.rec.tools, key=lambda t: t.start)
        ti = 0
        for n, call in enumerate(calls, start=1):
            while ti < len(tools) and tools[ti].start < call.start:
                self._tool_span(tools[ti])
                ti += 1
            self._call(call, f"c{n}")
        for t in tools[ti:]:
            self._tool_span(t)
        return {"world": self.world, "hops": self.hops}

    # -----------------------------------------------------------------------------------
    def _add_tool_hop(self, caller: str, call_id: str | None, result: str, name: str, span: str | None) -> str:
        k = sum(1 for h in self.hops if h["id"].startswith(caller + "_t"))
        hid = f"{caller}_t{k}"
        key = f"tool_{hid}"
        self.world[key] = result
        self.hops.append({"id": hid, "kind": "tool", "tool": "identity", "args": {"value": key},
                          "depends_on": [caller], "description": f"recorded result of tool {name}"})
        self.depth[hid] = self.depth[caller] + 1
        if call_id:
            self.tool_hop[call_id] = hid
        if span:
            self.hop_of_span[span] = hid
        return hid

    def _tool_span(self, t: ToolResult) -> None:
        caller = self.call_ids.get(t.call_id or "")
        if caller is None:  # no id: the latest earlier call that asked for this tool with these arguments
            for call, hid, _ in reversed(self.llm):
                for c in call.output.get("tool_calls") or []:
                    fn = c.get("function") or {}
                    args = fn.get("arguments")
                    try:
                        args = json.loads(args) if isinstance(args, str) else args
                    except ValueError:
                        pass
                    if fn.get("name") == t.name and (t.arguments is None or args == t.arguments):
                        caller, t.call_id = hid, c.get("id")
                        break
                if caller:
                    break
        if caller is None or (t.call_id and t.call_id in self.tool_hop):
            return
        self._add_tool_hop(caller, t.call_id, t.result, t.name, t.key)

    def _call(self, call: Call, hid: str) -> None:
        canon = canonical(call.messages)
        deps: list[str] = []
        msgs: list[dict[str, Any]] = []
        # earlier answers this conversation repeats, at the positions they hold in it
        # (across traces too: a client without an agent span starts a new trace at every call)
        answers = {c[2][-1]: c[1] for c in self.llm}
        for k, m in enumerate(call.messages):
            spec: dict[str, Any] = {"role": m["role"]}
            cid = m.get("tool_call_id")
            if m["role"] == "assistant" and canon[k] in answers:
                spec["from"] = answers[canon[k]]
            elif m["role"] == "tool" and cid:
                if cid not in self.tool_hop and cid in self.call_ids:
                    self._add_tool_hop(self.call_ids[cid], cid, str(m.get("content") or ""), "?", None)
                if cid in self.tool_hop:
                    spec["from"] = self.tool_hop[cid]
                else:
                    spec["content"] = str(m.get("content") or "")
                spec["tool_call_id"] = cid
            else:
                spec["content"] = str(m.get("content") or "")
                if m.get("tool_calls"):  # an assistant tool call that no recorded call made: as recorded
                    spec["tool_calls"] = [{"name": (c.get("function") or {}).get("name"),
                                           "arguments": parse_arguments((c.get("function") or {}).get("arguments"))}
                                          for c in m["tool_calls"]]
            if "from" in spec and spec["from"] not in deps:
                deps.append(spec["from"])
            msgs.append(spec)
        parent_hop = self.hop_of_span.get(call.parent or "")
        if parent_hop and parent_hop not in deps:
            deps.append(parent_hop)
        value, parse, check = _answer_value(call.output)
        key = f"ref_{hid}"
        self.world[key] = value
        hop: dict[str, Any] = {"id": hid, "depends_on": deps, "messages": msgs, "expect": key,
                               "parse": parse, "check": check, "max_tokens": _max_tokens(call)}
        if call.tools:
            hop["tools"] = call.tools
        hop["description"] = f"trace {call.trace_id} span {call.key}" + (f", model {call.model}" if call.model else "")
        self.hops.append(hop)
        self.depth[hid] = 1 + max((self.depth[d] for d in deps), default=0)
        self.hop_of_span[call.key] = hid
        for c in call.output.get("tool_calls") or []:
            if c.get("id"):
                self.call_ids[c["id"]] = hid
        self.llm.append((call, hid, canon + canonical([{"role": "assistant", **call.output}])))


def scenario_from_recording(rec: Recording, name: str | None = None) -> dict[str, Any]:
    """The scenario file's data for a recording."""
    built = _Builder(rec).build()
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(rec.source).stem).strip("-") or "trace"
    traces = ", ".join(t[:16] for t in rec.trace_ids[:3]) + (" ..." if len(rec.trace_ids) > 3 else "")
    return {
        "name": name or f"trace-{stem}",
        "description": f"imported by agentsim import trace from {Path(rec.source).name} ({rec.format}"
                       + (f"; traces {traces}" if traces else "") + f"): {len(rec.calls)} LLM calls, "
                       "the recorded answers as the expected ones",
        "tags": ["imported", rec.format],
        "world": built["world"],
        "hops": built["hops"],
    }


def write_scenario(data: dict[str, Any], out: str | Path) -> Path:
    import yaml

    p = Path(out)
    text = "# written by agentsim import trace: validate and run it like any scenario file\n" + yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, width=100)
    p.write_text(text, encoding="utf-8")
    return p
