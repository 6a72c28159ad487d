"""The scenario file format: hops and scenarios as pydantic models (what a YAML file holds)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from agentsim.answers import CheckSpec, ParseSpec, default_check
from agentsim.tools import get_tool

__all__ = ["HopSpec", "MessageSpec", "ScenarioSpec", "MAX_FILE_BYTES"]

MAX_FILE_BYTES = 5_000_000
_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = {"world", "vars", "hop", "loop", "range", "true", "false", "none", "True", "False", "None"}

class MessageSpec(BaseModel):
    """One message of an LLM hop's chat (``messages:``, written by ``agentsim import trace``): its
    text as it was recorded, or (``from: HOP``) a parent's output: the parent's actual answer in
    free mode, its expected one in oracle mode. Contents are literal text, never templates."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    from_hop: str | None = Field(default=None, alias="from")
    tool_call_id: str | None = None
    name: str | None = None
    #: an assistant's recorded tool calls: ``[{name, arguments}]``
    tool_calls: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> MessageSpec:
        if self.content is not None and self.from_hop is not None:
            raise ValueError("a message has either 'content' or 'from' (a parent hop's output), not both")
        if self.tool_calls is not None and (self.role != "assistant" or self.from_hop is not None):
            raise ValueError("'tool_calls' belong to an assistant message with recorded content")
        for c in self.tool_calls or []:
            if not isinstance(c, dict) or not isinstance(c.get("name"), str):
                raise ValueError("each of 'tool_calls' needs a 'name' (and its 'arguments')")
        return self

    def render(self, ctx: dict[str, Any]) -> dict[str, Any]:
        """The OpenAI message, a ``from`` parent's value taken from ``ctx``: a tool call the parent
        made (``{name, arguments}``) becomes an assistant ``tool_calls`` message. Tool-call arguments
        stay objects, as chat templates read them (Qwen, Hermes: ``arguments | tojson``)."""
        import json

        msg: dict[str, Any] = {"role": self.role}
        if self.from_hop is None:
            msg["content"] = self.content or ""
            if self.tool_calls:
                msg["tool_calls"] = [{"id": f"call_{k}", "type": "function",
                                      "function": {"name": c["name"], "arguments": c.get("arguments", {})}}
                                     for k, c in enumerate(self.tool_calls)]
        else:
            value = ctx.get(self.from_hop)
            calls = value if isinstance(value, list) else [value]
            if self.role == "assistant" and calls and all(
                    isinstance(c, dict) and isinstance(c.get("name"), str) and "arguments" in c for c in calls):
                msg["content"] = ""
                msg["tool_calls"] = [{"id": f"call_{self.from_hop}_{k}", "type": "function",
                                      "function": {"name": c["name"], "arguments": c["arguments"]}}
                                     for k, c in enumerate(calls)]
            else:
                msg["content"] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if self.tool_call_id is not None:
            msg["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            msg["name"] = self.name
        return msg


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
    #: the parents whose answers the expected answer uses (error attribution), where they are
    #: not simply the parents ``expect`` names: a list of hop ids, or an expression over the
    #: instance's variables giving one per instance (the gsm8k family's ``deps[2]``: the steps
    #: its calculation reads). ``depends_on`` stays what the prompt may show (context); a wrong
    #: parent outside ``inputs`` neither makes this hop propagated nor recovered.
    inputs: str | list[str] | None = None
    #: a whole recorded chat instead of ``prompt`` (see :class:`MessageSpec`), and the OpenAI tool
    #: definitions it was sent with (rendered by the backend's chat template)
    messages: list[MessageSpec] | None = None
    tools: list[dict[str, Any]] | None = None
    #: True when ``check`` was not written in the file (it is the parse type's default)
    _check_defaulted: bool = PrivateAttr(default=False)

    def chat(self, ctx: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str]:
        """A recorded chat's messages for this instance (parents' outputs from ``ctx``), the last
        user message's text (for backends that read only a prompt), and what the hop records as its
        prompt: the request as JSON, as ``agentsim serve`` records one."""
        import json

        messages = [m.render(ctx) for m in self.messages or []]
        last_user = next((str(m.get("content") or "") for m in reversed(messages) if m["role"] == "user"), "")
        body: dict[str, Any] = {"messages": messages, **({"tools": self.tools} if self.tools else {})}
        return messages, last_user, json.dumps(body, ensure_ascii=False, default=str)

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
            if not self.prompt and not self.messages:
                raise ValueError("an 'llm' hop needs a 'prompt' template (or the 'messages' of a recorded chat)")
            for m in self.messages or []:
                if m.from_hop is not None and m.from_hop not in self.depends_on:
                    raise ValueError(f"message from {m.from_hop!r}: that hop is not in depends_on")
            if self.expect is None:
                raise ValueError("an 'llm' hop needs 'expect': the expected answer (an expression)")
            if self.tool or self.args:
                raise ValueError("'tool' and 'args' belong to 'tool' hops (set kind: tool)")
        else:
            if not self.tool:
                raise ValueError("a 'tool' hop needs 'tool': the name of a registered tool")
            if get_tool(self.tool) is None:
                from agentsim.tools import available_tools

                raise ValueError(
                    f"unknown tool {self.tool!r}; registered tools: {', '.join(available_tools())}"
                )
        if self.check is None:
            self.check = default_check(self.parse)
            self._check_defaulted = True
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

