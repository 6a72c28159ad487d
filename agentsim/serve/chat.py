"""OpenAI chat requests and answers as plain data: validation, tool calls in the model's own
format, and the canonical forms that link a request to the call it continues.

Nothing here imports a web framework or a model: :mod:`agentsim.serve.app` and the recorder use it,
and so do replay and the trace importers.

Tool calls. Qwen2.5 (the default model) and the Hermes family write a call as a JSON object inside
``<tool_call>`` tags, which their chat templates teach the model when ``tools`` are rendered::

    <tool_call>
    {"name": "get_price", "arguments": {"sku": "A1"}}
    </tool_call>

:func:`parse_tool_calls` turns those blocks into OpenAI ``tool_calls`` (arguments as a JSON
string) and leaves the rest of the text as the message's content. :func:`template_messages` turns
OpenAI messages back into what such templates read (arguments as objects).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ChatRequest",
    "RequestError",
    "parse_request",
    "parse_tool_calls",
    "template_messages",
    "canonical",
    "answer_message",
    "TOOL_CALL_RE",
    "TEXT_CHECKS",
    "same_text",
    "same_answer",
]

TOOL_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class RequestError(Exception):
    """A request the server refuses, with its OpenAI error fields."""

    def __init__(self, message: str, *, status: int = 400, code: str | None = None,
                 param: str | None = None, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message, self.status, self.code, self.param, self.kind = message, status, code, param, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


@dataclass
class ChatRequest:
    """The fields of a chat-completions request that agentsim serves (the rest are recorded)."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    max_tokens: int = 512
    stop: list[str] = field(default_factory=list)
    seed: int = 0
    stream: bool = False
    include_usage: bool = False
    response_format: dict[str, Any] | None = None
    n: int = 1
    #: OpenAI's ``logprobs`` / ``top_logprobs`` (0..20): the log-probability of every returned
    #: token and of the ``top_logprobs`` most likely ones at its position
    logprobs: bool = False
    top_logprobs: int = 0

    def recorded(self) -> dict[str, Any]:
        """What a hop stores of its request (and what replay sends again, verbatim)."""
        out: dict[str, Any] = {"model": self.model, "messages": self.messages, "max_tokens": self.max_tokens,
                               "seed": self.seed}
        if self.tools:
            out["tools"] = self.tools
        if self.tool_choice is not None:
            out["tool_choice"] = self.tool_choice
        if self.stop:
            out["stop"] = self.stop
        if self.response_format is not None:
            out["response_format"] = self.response_format
        return out

    @property
    def tools_active(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"


def _text_of(content: Any, where: str) -> str | None:
    """A message's content as text: a string, None, or a list of text parts (joined)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for k, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "input_text", "output_text"):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RequestError(f"{where}.content[{k}]: part type {kind!r} is not served (text only)",
                                   param=f"{where}.content")
            texts.append(str(part.get("text", "")))
        return "".join(texts)
    raise RequestError(f"{where}.content must be a string or a list of text parts", param=f"{where}.content")


def parse_request(body: Any, *, default_max_tokens: int = 512) -> ChatRequest:
    """Validate a chat-completions body; a problem is a :class:`RequestError` naming the field."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise RequestError("'messages' must be a non-empty list", param="messages")
    messages: list[dict[str, Any]] = []
    for i, m in enumerate(msgs):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise RequestError(f"{where}: needs a role, one of {', '.join(_ROLES)}", param=where)
        msg = {k: v for k, v in m.items() if v is not None}
        msg["role"] = "system" if m["role"] == "developer" else m["role"]
        msg["content"] = _text_of(m.get("content"), where)
        if msg["role"] == "assistant" and m.get("tool_calls"):
            calls = m["tool_calls"]
            if not isinstance(calls, list) or not all(isinstance(c, dict) and isinstance(c.get("function"), dict)
                                                      for c in calls):
                raise RequestError(f"{where}.tool_calls must be a list of function calls", param=where)
        if msg["role"] == "tool" and not isinstance(m.get("tool_call_id"), str):
            raise RequestError(f"{where}: a tool message needs its tool_call_id", param=where)
        messages.append(msg)
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not all(
                isinstance(t, dict) and t.get("type", "function") == "function" and isinstance(t.get("function"), dict)
                and isinstance(t["function"].get("name"), str) for t in tools):
            raise RequestError("'tools' must be a list of {type: function, function: {name, ...}}", param="tools")
    stop = body.get("stop")
    if stop is None:
        stops: list[str] = []
    elif isinstance(stop, str):
        stops = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = list(stop)
    else:
        raise RequestError("'stop' must be a string or a list of strings", param="stop")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = default_max_tokens
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise RequestError("'max_tokens' must be a positive integer", param="max_tokens")
    seed = body.get("seed", 0)
    if seed is None:
        seed = 0
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise RequestError("'seed' must be an integer", param="seed")
    n = body.get("n", 1)
    if n not in (None, 1):
        raise RequestError("only n=1 is served", param="n")
    rf = body.get("response_format")
    if rf is not None and (not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema")):
        raise RequestError("'response_format' type must be text, json_object or json_schema", param="response_format")
    so = body.get("stream_options") or {}
    want_lp = body.get("logprobs")
    if want_lp is not None and not isinstance(want_lp, bool):
        raise RequestError("'logprobs' must be a boolean", param="logprobs")
    top = body.get("top_logprobs")
    if top is not None:
        if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= 20:
            raise RequestError("'top_logprobs' must be an integer between 0 and 20", param="top_logprobs")
        if not want_lp:
            raise RequestError("'top_logprobs' needs 'logprobs': true", param="top_logprobs")
    return ChatRequest(
        model=str(body.get("model") or ""), messages=messages, tools=tools or None,
        tool_choice=body.get("tool_choice"), max_tokens=int(max_tokens), stop=stops, seed=int(seed),
        stream=bool(body.get("stream", False)), include_usage=bool(isinstance(so, dict) and so.get("include_usage")),
        response_format=None if rf is None or rf.get("type") == "text" else rf,
        logprobs=bool(want_lp), top_logprobs=int(top or 0),
    )


def _call_of(obj: Any, names: set[str] | None) -> tuple[str, str] | None:
    """(name, arguments as JSON text) when ``obj`` is a tool call (of a known tool, when given)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    if names is not None and obj["name"] not in names:
        return None
    if not set(obj) <= {"name", "arguments", "parameters"}:
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        return obj["name"], args
    return obj["name"], json.dumps(args if args is not None else {}, ensure_ascii=False)


def parse_tool_calls(text: str, call_id: str = "call",
                     tool_names: set[str] | None = None) -> tuple[str | None, list[dict[str, Any]]]:
    """(content, tool_calls) from a completion in the ``<tool_call>`` JSON format.

    Each block whose JSON has a ``name`` becomes ``{"id", "type": "function", "function": {"name",
    "arguments"}}`` with the arguments as a JSON string (``{}`` when absent); ids are
    ``{call_id}_{k}``. A block that is not such JSON stays in the content, as the model wrote it.
    ``<tool_call>`` is a special token in Qwen2.5's vocabulary, which a backend's plain-text decoding
    leaves out: with no tags in the text, bare JSON objects ``{"name": N, "arguments": {...}}`` of a
    tool in ``tool_names`` count as calls too.
    """
    calls: list[dict[str, Any]] = []
    kept: list[str] = []
    pos = 0
    spans: list[tuple[int, int, tuple[str, str]]] = []
    for m in TOOL_CALL_RE.finditer(text):
        try:
            call = _call_of(json.loads(m.group(1)), None)
        except ValueError:
            continue
        if call is not None:
            spans.append((m.start(), m.end(), call))
    if not spans and tool_names:
        dec = json.JSONDecoder()
        i = text.find("{")
        while i >= 0:
            try:
                obj, end = dec.raw_decode(text, i)
            except ValueError:
                i = text.find("{", i + 1)
                continue
            call = _call_of(obj, tool_names)
            if call is not None:
                spans.append((i, end, call))
            i = text.find("{", end)
    for start, end, (name, arguments) in spans:
        kept.append(text[pos:start])
        pos = end
        calls.append({"id": f"{call_id}_{len(calls)}", "type": "function",
                      "function": {"name": name, "arguments": arguments}})
    kept.append(text[pos:])
    content = "".join(kept).strip() if calls else text
    return (content or None) if calls else content, calls


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as chat templates read them: content a string, tool-call arguments an object."""
    out = []
    for m in messages:
        msg = dict(m)
        msg["content"] = msg.get("content") or ""
        if msg.get("tool_calls"):
            calls = []
            for c in msg["tool_calls"]:
                fn = dict(c.get("function") or {})
                args = fn.get("arguments")
                if isinstance(args, str):
                    try:
                        fn["arguments"] = json.loads(args) if args.strip() else {}
                    except ValueError:
                        pass  # a template shows it as the text it is
                calls.append({**c, "function": fn})
            msg["tool_calls"] = calls
        out.append(msg)
    return out


def answer_message(content: str | None, tool_calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant message a completion is (what a continuing request repeats)."""
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg


def parse_arguments(arguments: Any) -> Any:
    """A tool call's arguments as JSON values (OpenAI sends them as a JSON string; an empty string
    is no arguments); text that is not JSON stays as it is."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return arguments
    return arguments


def canonical_tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI ``tool_calls`` as ``{"name", "arguments"}`` with parsed arguments (ids dropped), the
    form two calls are compared in."""
    out = []
    for c in calls:
        fn = c.get("function") or {}
        out.append({"name": fn.get("name"), "arguments": parse_arguments(fn.get("arguments"))})
    return out


def _canon_message(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.get("role"), "content": (m.get("content") or "").strip()}
    if m.get("name") and m.get("role") != "tool":
        out["name"] = m["name"]
    calls = m.get("tool_calls") or []
    if calls:
        out["tool_calls"] = canonical_tool_calls(calls)
    return out


def canonical(messages: list[dict[str, Any]]) -> list[str]:
    """Messages as comparable strings: roles, text (stripped), tool names and arguments (parsed);
    ids are left out (clients and rungs number calls their own way), so two requests with the same
    conversation compare equal whatever their ids."""
    return [json.dumps(_canon_message(m), sort_keys=True, ensure_ascii=False) for m in messages]


# --------------------------------------------------------------------------------------------
# judging one answer against a recorded one

TEXT_CHECKS = ("exact", "normalized", "numeric")
_NUM_RE = re.compile(r"-?\d+(?:\.\d+)?")


def _norm_text(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s.-]", " ", text.lower()).split()).strip(" .")


def same_text(a: str | None, b: str | None, check: str = "normalized") -> bool:
    """Two answers' texts under a check: ``exact`` (as written, outer spaces aside), ``normalized``
    (case, punctuation and spacing aside) or ``numeric`` (the last number in each, equal within 1e-6
    relative; text without a number compares normalized)."""
    a, b = (a or "").strip(), (b or "").strip()
    if check == "exact":
        return a == b
    if check == "numeric":
        na, nb = _NUM_RE.findall(a.replace(",", "")), _NUM_RE.findall(b.replace(",", ""))
        if na and nb:
            x, y = float(na[-1]), float(nb[-1])
            return abs(x - y) <= 1e-6 * max(1.0, abs(x), abs(y))
        if na or nb:
            return False
    return _norm_text(a) == _norm_text(b)


def _args(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return arguments.strip()
    return arguments


def same_answer(a: dict[str, Any], b: dict[str, Any], check: str = "normalized") -> bool:
    """Two assistant messages agree: the same tool calls (names, and arguments equal as JSON, in
    order) and, when neither calls a tool, the same text under ``check``."""
    ca, cb = a.get("tool_calls") or [], b.get("tool_calls") or []
    if ca or cb:
        if len(ca) != len(cb):
            return False
        for x, y in zip(ca, cb, strict=True):
            fx, fy = x.get("function") or {}, y.get("function") or {}
            if fx.get("name") != fy.get("name") or _args(fx.get("arguments")) != _args(fy.get("arguments")):
                return False
        return True
    return same_text(a.get("content"), b.get("content"), check)
