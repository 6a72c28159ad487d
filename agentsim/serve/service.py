"""What ``serve`` does with one chat request, without the web framework: translate it for the
backend, call it (through the :class:`~agentsim.serve.dispatch.Dispatcher`), parse tool calls in the
model's own format, record the hop, and build the OpenAI response body."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Any

from agentsim.backends.base import Backend, GenerationRequest
from agentsim.errors import BackendError

from .chat import ChatRequest, RequestError, answer_message, parse_tool_calls, template_messages
from .dispatch import Dispatcher
from .recorder import CallOutcome, Recorder

__all__ = ["ChatService", "Served"]


@dataclass
class Served:
    """One answered request: the response body's parts and the stored hop's id."""

    id: str
    model: str
    created: int
    content: str | None
    tool_calls: list[dict[str, Any]]
    finish_reason: str
    usage: dict[str, int]
    hop_id: str
    #: OpenAI's ``choices[0].logprobs`` (``{"content": [...]}``) when the request asked for them
    logprobs: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": answer_message(self.content, self.tool_calls),
                         "finish_reason": self.finish_reason, "logprobs": self.logprobs}],
            "usage": self.usage, "system_fingerprint": "agentsim",
        }


def json_schema_grammar(schema: Any) -> str:
    """GBNF for a JSON schema, with llama.cpp's own converter (llama-cpp-python)."""
    import json

    try:
        from llama_cpp.llama_grammar import json_schema_to_gbnf
    except ImportError:
        raise RequestError("response_format json_schema needs llama-cpp-python (pip install 'agentsim[llama]')",
                           param="response_format") from None
    try:
        return str(json_schema_to_gbnf(json.dumps(schema)))
    except Exception as exc:  # noqa: BLE001 - the converter's message names the schema's problem
        raise RequestError(f"response_format json_schema: {exc}", param="response_format") from None


class ChatService:
    """Serves chat requests against one loaded backend, recording each as a hop."""

    def __init__(self, backend: Backend, dispatcher: Dispatcher, recorder: Recorder,
                 *, model_names: tuple[str, ...] = ()) -> None:
        self.backend = backend
        self.dispatcher = dispatcher
        self.recorder = recorder
        info = backend.info()
        self.model = info.model or str(backend.spec)
        names = {str(backend.spec), self.model, backend.spec.name, "agentsim", *model_names}
        if backend.spec.model:
            names.add(backend.spec.model)
        if info.model and info.precision:
            names.add(f"{info.model}@{info.precision}")
        self.model_names = names
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------------------------
    def generation_request(self, req: ChatRequest) -> GenerationRequest:
        """The backend request: the whole chat and its tools (templated by the backend), plus a
        system + last-user-message reading for backends that take only those."""
        system = next((m.get("content") for m in req.messages if m.get("role") == "system"), None)
        last_user = next((m.get("content") for m in reversed(req.messages) if m.get("role") == "user"), "")
        grammar = None
        if req.response_format is not None:
            if not self.backend.SUPPORTS_GRAMMAR:
                raise RequestError(f"backend {self.backend.spec} cannot constrain its output: response_format "
                                   f"{req.response_format.get('type')} is not served", param="response_format")
            if req.response_format.get("type") == "json_object":
                grammar = "json"
            else:
                js = req.response_format.get("json_schema") or {}
                grammar = json_schema_grammar(js.get("schema", js) if isinstance(js, dict) else js)
        if req.logprobs and not self.backend.LOGPROBS:
            raise RequestError(f"backend {self.backend.spec} gives no token distributions: 'logprobs' is not served",
                               param="logprobs")
        return GenerationRequest(
            prompt=str(last_user or ""), system=system, max_tokens=req.max_tokens, stop=list(req.stop),
            grammar=grammar, seed=req.seed, messages=template_messages(req.messages),
            tools=req.tools if req.tools_active else None,
            top_logprobs=req.top_logprobs if req.logprobs else None,
        )

    async def serve(self, instance: int, req: ChatRequest, replay_of: Any = None) -> Served:
        """Answer ``req`` for ``instance``; a backend failure is recorded, then raised as a
        :class:`RequestError` with an OpenAI error body."""
        created = int(time.time())
        if req.model and req.model not in self.model_names:
            err = RequestError(f"The model {req.model!r} does not exist: this server serves {self.model!r} "
                               f"({self.backend.spec})", status=404, code="model_not_found", param="model")
            self.recorder.record(instance, req, CallOutcome(error=f"unknown model: {err.message}", wall_s=0.0),
                                 replay_of=replay_of)
            raise err
        greq = self.generation_request(req)
        answer = await asyncio.wrap_future(self.dispatcher.submit(greq))
        if answer.error is not None:
            exc = answer.error
            detail = f"{type(exc).__name__}: {exc}"
            self.recorder.record(instance, req, CallOutcome(error=detail, wall_s=answer.wall_s, reading=answer.reading,
                                                            batch_n=answer.batch_n if answer.batch_n > 1 else None),
                                 replay_of=replay_of)
            text = str(getattr(exc, "message", exc))
            if "exceeds n_ctx" in text or "context" in text.lower() and "exceed" in text.lower():
                raise RequestError(f"This model's maximum context length was exceeded: {text}",
                                   code="context_length_exceeded", param="messages")
            raise RequestError(f"the backend failed: {detail}", status=500 if not isinstance(exc, BackendError) else 400,
                               code="backend_error", kind="server_error" if not isinstance(exc, BackendError)
                               else "invalid_request_error")
        c = answer.completion
        if req.tools_active:
            names = {t["function"]["name"] for t in req.tools or []}
            content, calls = parse_tool_calls(c.text, call_id=f"call_{instance}_{next(self._ids)}", tool_names=names)
        else:
            content, calls = c.text, []
        # OpenAI's words: our eos / stop / grammar are all its "stop"; length stays length
        finish = "tool_calls" if calls else ("length" if c.finish_reason == "length" else "stop")
        batched = answer.batch_n > 1
        saved = self.recorder.record(instance, req, replay_of=replay_of, outcome=CallOutcome(
            content=content, tool_calls=calls, text=c.text, finish_reason=finish, completion=c,
            wall_s=answer.wall_s, reading=answer.reading,
            batch_n=answer.batch_n if batched else None, batch_share=answer.share if batched else None,
            batch_wall_s=answer.batch_wall_s if batched else None,
            batch_timing=(c.batch_timing or "own") if batched else None))
        pt, ct = int(c.prompt_tokens or 0), int(c.completion_tokens or 0)
        return Served(id=f"chatcmpl-{self.recorder.run.id}-{instance}-{saved.hop_id}", model=self.model,
                      created=created, content=content, tool_calls=calls, finish_reason=finish,
                      usage={"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
                      hop_id=saved.hop_id,
                      logprobs=self.logprobs_content(c.scores, req.top_logprobs) if req.logprobs else None)

    def logprobs_content(self, scores: Any, k: int) -> dict[str, Any]:
        """OpenAI's ``logprobs`` object from the distributions the backend sampled from: per
        returned token its text, bytes and log-probability (normalised over the whole
        vocabulary, float64), and the ``k`` most likely tokens there."""
        import numpy as np

        from agentsim.backends.llama_score import log_softmax

        if scores is None or not scores.token_ids:
            return {"content": [], "refusal": None}
        lp = log_softmax(np.asarray(scores.logprobs))
        piece = self.backend.token_bytes

        def entry(tok: int, row: np.ndarray) -> dict[str, Any]:
            b = piece(int(tok))
            return {"token": b.decode("utf-8", errors="replace"), "logprob": float(row[tok]), "bytes": list(b)}

        content = []
        for j, tok in enumerate(scores.token_ids):
            row = lp[j]
            top = np.argsort(-row, kind="stable")[:k] if k else []
            content.append({**entry(tok, row), "top_logprobs": [entry(int(t), row) for t in top]})
        return {"content": content, "refusal": None}
