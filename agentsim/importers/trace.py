"""Recorded LLM calls from trace files: OTLP JSON (OpenTelemetry GenAI and OpenInference
attributes) and OpenAI-format JSONL (one request and its response a line).

Everything is read into :class:`Call` and :class:`ToolResult` records; :mod:`agentsim.importers.scenario`
turns them into a scenario. A span that is not an LLM or tool span is skipped; an LLM span whose
messages cannot be read is an error naming its trace id, span id and attribute. Only message
texts, tool calls, tool definitions, the model name and token limits are read: headers and other
attributes (where keys, tokens and cookies live) are never copied anywhere.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsim.errors import ScenarioError

__all__ = ["Call", "ToolResult", "Recording", "read_trace", "read_otlp", "read_openai_jsonl", "SECRET_RE"]

#: attribute keys whose values are secrets: never read, never stored
SECRET_RE = re.compile(r"(authorization|api[_.-]?key|secret|passw(or)?d|cookie|credential|\.headers?\.|"
                       r"(^|[._-])(access|auth|bearer|session|refresh|id|api)[_-]?token)", re.I)
MAX_TRACE_BYTES = 50_000_000


@dataclass
class Call:
    """One recorded LLM call."""

    key: str  # span id (OTLP) or line number (JSONL)
    trace_id: str
    parent: str | None
    start: int
    messages: list[dict[str, Any]]
    output: dict[str, Any]  # the assistant message (content, tool_calls)
    tools: list[dict[str, Any]] | None = None
    model: str | None = None
    max_tokens: int | None = None
    output_tokens: int | None = None


@dataclass
class ToolResult:
    """One recorded tool execution (a TOOL / execute_tool span)."""

    key: str
    trace_id: str
    parent: str | None
    start: int
    name: str
    arguments: Any
    result: str
    call_id: str | None = None


@dataclass
class Recording:
    source: str
    format: str
    calls: list[Call] = field(default_factory=list)
    tools: list[ToolResult] = field(default_factory=list)
    trace_ids: list[str] = field(default_factory=list)


class _Where:
    """Names the span (or line) a problem is in."""

    def __init__(self, source: str, trace_id: str, span_id: str) -> None:
        self.source, self.trace_id, self.span_id = source, trace_id, span_id

    def error(self, attribute: str, what: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: trace {self.trace_id}, span {self.span_id}: attribute {attribute!r}: {what}",
                             hint="agentsim import trace reads OTLP JSON (GenAI or OpenInference attributes) and "
                                  "OpenAI JSONL; see docs/agents.md")


def _id(raw: Any) -> str:
    """A trace or span id as hex: OTLP JSON writes hex; protobuf's JSON mapping writes base64."""
    if not isinstance(raw, str) or not raw:
        return ""
    if re.fullmatch(r"[0-9a-fA-F]{16}|[0-9a-fA-F]{32}", raw):
        return raw.lower()
    try:
        return base64.b64decode(raw, validate=True).hex()
    except ValueError:
        return raw


def _value(v: Any) -> Any:
    """An OTLP ``AnyValue`` as a Python value."""
    if not isinstance(v, dict):
        return v
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_value(x) for x in (v["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in v:
        return {kv.get("key"): _value(kv.get("value")) for kv in (v["kvlistValue"] or {}).get("values", [])}
    if "bytesValue" in v:
        return None
    return None


def _attributes(span: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.get("attributes") or []:
        key = kv.get("key") if isinstance(kv, dict) else None
        if not isinstance(key, str) or SECRET_RE.search(key):
            continue  # a secret's value is never read
        out[key] = _value(kv.get("value"))
    return out


def _json_attr(attrs: dict[str, Any], key: str, where: _Where) -> Any:
    raw = attrs.get(key)
    if raw is None or not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise where.error(key, f"is not JSON ({exc})") from None


# --------------------------------------------------------------------------------------------
# OpenTelemetry GenAI semantic conventions


def _genai_message(m: Any, where: _Where, attr: str, k: int) -> dict[str, Any]:
    if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool"):
        raise where.error(attr, f"message {k} has no role system, user, assistant or tool")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    msg: dict[str, Any] = {"role": m["role"]}
    for j, part in enumerate(m.get("parts") or []):
        if not isinstance(part, dict):
            raise where.error(attr, f"message {k} part {j} is not an object")
        t = part.get("type")
        if t == "text":
            texts.append(str(part.get("content", "")))
        elif t == "tool_call":
            args = part.get("arguments", {})
            calls.append({"id": str(part.get("id") or f"call_{k}_{j}"), "type": "function",
                          "function": {"name": str(part.get("name")),
                                       "arguments": args if isinstance(args, str) else json.dumps(args)}})
        elif t == "tool_call_response":
            resp = part.get("response")
            texts.append(resp if isinstance(resp, str) else json.dumps(resp))
            msg["tool_call_id"] = str(part.get("id") or "")
        else:
            raise where.error(attr, f"message {k} part {j} has type {t!r} (text, tool_call, tool_call_response are read)")
    msg["content"] = "".join(texts) if texts or not calls else None
    if calls:
        msg["tool_calls"] = calls
    return msg


def _genai_messages(attrs: dict[str, Any], key: str, where: _Where) -> list[dict[str, Any]]:
    raw = _json_attr(attrs, key, where)
    if raw is None:
        raise where.error(key, "is missing: record message content (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)")
    if not isinstance(raw, list):
        raise where.error(key, "is not a list of messages")
    msgs = [_genai_message(m, where, key, k) for k, m in enumerate(raw)]
    sys_raw = _json_attr(attrs, "gen_ai.system_instructions", where) if key == "gen_ai.input.messages" else None
    if isinstance(sys_raw, list) and sys_raw:
        text = "".join(str(p.get("content", "")) for p in sys_raw if isinstance(p, dict))
        msgs.insert(0, {"role": "system", "content": text})
    return msgs


def _genai_tools(attrs: dict[str, Any], where: _Where) -> list[dict[str, Any]] | None:
    raw = _json_attr(attrs, "gen_ai.tool.definitions", where)
    if not raw:
        return None
    if not isinstance(raw, list):
        raise where.error("gen_ai.tool.definitions", "is not a list")
    out = []
    for t in raw:
        if isinstance(t, dict) and isinstance(t.get("function"), dict):
            out.append({"type": "function", "function": t["function"]})
        elif isinstance(t, dict) and isinstance(t.get("name"), str):
            fn = {k: t[k] for k in ("name", "description", "parameters") if k in t}
            out.append({"type": "function", "function": fn})
        else:
            raise where.error("gen_ai.tool.definitions", "holds an entry without a name")
    return out


# --------------------------------------------------------------------------------------------
# OpenInference (Arize Phoenix)


def _oi_messages(attrs: dict[str, Any], prefix: str, where: _Where) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    pat = re.compile(re.escape(prefix) + r"\.(\d+)\.message\.(.+)$")
    for key, value in attrs.items():
        m = pat.match(key)
        if m:
            rows.setdefault(int(m.group(1)), {})[m.group(2)] = value
    out = []
    for k in sorted(rows):
        row = rows[k]
        role = row.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            raise where.error(f"{prefix}.{k}.message.role", f"is {role!r} (system, user, assistant or tool)")
        msg: dict[str, Any] = {"role": role, "content": row.get("content")}
        calls: dict[int, dict[str, Any]] = {}
        for sub, v in row.items():
            cm = re.match(r"tool_calls\.(\d+)\.tool_call\.(id|function\.name|function\.arguments)$", sub)
            if cm:
                calls.setdefault(int(cm.group(1)), {})[cm.group(2)] = v
        if calls:
            msg["tool_calls"] = []
            for j in sorted(calls):
                c = calls[j]
                if not isinstance(c.get("function.name"), str):
                    raise where.error(f"{prefix}.{k}.message.tool_calls.{j}.tool_call.function.name", "is missing")
                args = c.get("function.arguments", "{}")
                msg["tool_calls"].append({"id": str(c.get("id") or f"call_{k}_{j}"), "type": "function",
                                          "function": {"name": c["function.name"],
                                                       "arguments": args if isinstance(args, str) else json.dumps(args)}})
        if role == "tool":
            msg["tool_call_id"] = str(row.get("tool_call_id") or "")
        out.append(msg)
    return out


def _oi_tools(attrs: dict[str, Any], where: _Where) -> list[dict[str, Any]] | None:
    out = []
    pat = re.compile(r"llm\.tools\.(\d+)\.tool\.json_schema$")
    for key in sorted((k for k in attrs if pat.match(k)), key=lambda k: int(pat.match(k).group(1))):  # type: ignore[union-attr]
        try:
            schema = json.loads(attrs[key]) if isinstance(attrs[key], str) else attrs[key]
        except ValueError:
            raise where.error(key, "is not JSON") from None
        if isinstance(schema, dict) and isinstance(schema.get("function"), dict):
            out.append({"type": "function", "function": schema["function"]})
        elif isinstance(schema, dict) and "name" in schema:
            out.append({"type": "function", "function": schema})
    return out or None


# --------------------------------------------------------------------------------------------


def _kind(attrs: dict[str, Any]) -> str | None:
    oi = attrs.get("openinference.span.kind")
    if isinstance(oi, str):
        return {"LLM": "llm", "TOOL": "tool"}.get(oi.upper())
    op = attrs.get("gen_ai.operation.name")
    if op in ("chat", "text_completion", "generate_content"):
        return "llm"
    if op == "execute_tool":
        return "tool"
    return None


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def read_otlp(data: Any, source: str) -> Recording:
    """Calls and tool results from an OTLP JSON export (``{"resourceSpans": [...]}``)."""
    if not isinstance(data, dict) or not isinstance(data.get("resourceSpans"), list):
        raise ScenarioError(f"{source}: not OTLP JSON (no resourceSpans list)")
    rec = Recording(source, "otlp")
    for rs in data["resourceSpans"]:
        for ss in (rs or {}).get("scopeSpans") or (rs or {}).get("instrumentationLibrarySpans") or []:
            for span in (ss or {}).get("spans") or []:
                if not isinstance(span, dict):
                    continue
                trace_id, span_id = _id(span.get("traceId")), _id(span.get("spanId"))
                where = _Where(source, trace_id or "?", span_id or "?")
                if not trace_id or not span_id:
                    raise where.error("traceId/spanId", "is missing")
                attrs = _attributes(span)
                kind = _kind(attrs)
                if kind is None:
                    continue
                if trace_id not in rec.trace_ids:
                    rec.trace_ids.append(trace_id)
                parent = _id(span.get("parentSpanId")) or None
                start = _int(span.get("startTimeUnixNano")) or 0
                if kind == "llm":
                    rec.calls.append(_otlp_call(attrs, where, trace_id, span_id, parent, start))
                else:
                    rec.tools.append(_otlp_tool(attrs, where, trace_id, span_id, parent, start))
    return rec


def _otlp_call(attrs: dict[str, Any], where: _Where, trace_id: str, span_id: str, parent: str | None,
               start: int) -> Call:
    if "openinference.span.kind" in attrs:
        msgs = _oi_messages(attrs, "llm.input_messages", where)
        outs = _oi_messages(attrs, "llm.output_messages", where)
        if not msgs:
            raise where.error("llm.input_messages", "is missing (no llm.input_messages.N.message.* attributes)")
        if not outs:
            raise where.error("llm.output_messages", "is missing (no llm.output_messages.N.message.* attributes)")
        tools = _oi_tools(attrs, where)
        model = attrs.get("llm.model_name")
        params = _json_attr(attrs, "llm.invocation_parameters", where) or {}
        max_tokens = _int(params.get("max_tokens") or params.get("max_completion_tokens")) if isinstance(params, dict) else None
        out_tokens = _int(attrs.get("llm.token_count.completion"))
    else:
        msgs = _genai_messages(attrs, "gen_ai.input.messages", where)
        outs = _genai_messages(attrs, "gen_ai.output.messages", where)
        if not outs:
            raise where.error("gen_ai.output.messages", "holds no message")
        tools = _genai_tools(attrs, where)
        model = attrs.get("gen_ai.request.model")
        max_tokens = _int(attrs.get("gen_ai.request.max_tokens"))
        out_tokens = _int(attrs.get("gen_ai.usage.output_tokens"))
    if not msgs:
        raise where.error("input messages", "holds no message")
    return Call(span_id, trace_id, parent, start, msgs, outs[0], tools, model if isinstance(model, str) else None,
                max_tokens, out_tokens)


def _otlp_tool(attrs: dict[str, Any], where: _Where, trace_id: str, span_id: str, parent: str | None,
               start: int) -> ToolResult:
    if "openinference.span.kind" in attrs:
        name = attrs.get("tool.name")
        args = attrs.get("tool.parameters", attrs.get("input.value"))
        result = attrs.get("output.value")
        call_id = attrs.get("tool_call.id")
        name_key, result_key = "tool.name", "output.value"
    else:
        name = attrs.get("gen_ai.tool.name")
        args = attrs.get("gen_ai.tool.call.arguments")
        result = attrs.get("gen_ai.tool.call.result")
        call_id = attrs.get("gen_ai.tool.call.id")
        name_key, result_key = "gen_ai.tool.name", "gen_ai.tool.call.result"
    if not isinstance(name, str) or not name:
        raise where.error(name_key, "is missing: a tool span needs its tool's name")
    if result is None:
        raise where.error(result_key, "is missing: a tool span needs its recorded result")
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            pass
    return ToolResult(span_id, trace_id, parent, start, name, args,
                      result if isinstance(result, str) else json.dumps(result),
                      call_id if isinstance(call_id, str) else None)


# --------------------------------------------------------------------------------------------
# OpenAI JSONL


def read_openai_jsonl(text: str, source: str) -> Recording:
    """One ``{"request": {...}, "response": {...}}`` object a line (or ``{"body": ...}`` batch
    records with ``custom_id``); the response's first choice is the recorded answer."""
    rec = Recording(source, "openai-jsonl")
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = _Where(source, "-", f"line {n}")
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise where.error("(line)", f"is not JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise where.error("(line)", "is not an object")
        req = obj.get("request", obj.get("body"))
        resp = obj.get("response")
        if isinstance(resp, dict) and isinstance(resp.get("body"), dict):
            resp = resp["body"]
        if not isinstance(req, dict):
            raise where.error("request", "is missing: each line holds a request and its response")
        if not isinstance(resp, dict):
            raise where.error("response", "is missing: each line holds a request and its response")
        msgs = req.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise where.error("request.messages", "is not a non-empty list")
        for k, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant", "tool"):
                raise where.error(f"request.messages[{k}].role", "is not system, user, assistant or tool")
        choices = resp.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0].get("message"), dict):
            raise where.error("response.choices[0].message", "is missing")
        clean = [{**{k: v for k, v in m.items() if k in ("role", "content", "tool_calls", "tool_call_id", "name")},
                  "role": "system" if m["role"] == "developer" else m["role"]} for m in msgs]
        out = {k: v for k, v in choices[0]["message"].items() if k in ("role", "content", "tool_calls")}
        tid = str(obj.get("trace_id") or "-")
        rec.calls.append(Call(f"line{n}", tid, None, n, clean, out, req.get("tools"), req.get("model"),
                              _int(req.get("max_tokens") or req.get("max_completion_tokens")),
                              _int((resp.get("usage") or {}).get("completion_tokens"))))
    if not rec.calls:
        raise ScenarioError(f"{source}: no request/response lines")
    return rec


def read_trace(path: str | Path) -> Recording:
    """A trace file by its content: OTLP JSON (an object with ``resourceSpans``) or OpenAI JSONL."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_TRACE_BYTES:
            raise ScenarioError(f"{p}: {size} bytes is over the {MAX_TRACE_BYTES} a trace file may have")
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{p}: not UTF-8 text") from None
    stripped = text.lstrip()
    if stripped.startswith("{") and '"resourceSpans"' in stripped[:5000]:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ScenarioError(f"{p}: OTLP JSON that does not parse: {exc}") from None
        rec = read_otlp(data, str(p))
        if not rec.calls:
            raise ScenarioError(f"{p}: no LLM spans (gen_ai.operation.name chat, or openinference.span.kind LLM)")
        return rec
    return read_openai_jsonl(text, str(p))
