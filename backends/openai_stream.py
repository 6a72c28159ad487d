"""The ``openai`` backend's reading of a reply: the server-sent event stream of one
chat-completions request, and what a reply says about tokens and times.

:func:`read_stream` collects the content chunks (one per generated token), the time to the
first one, the finish reason, and the ``usage``/``timings`` objects servers add;
:func:`figures` turns usage and timings into token counts and prefill/decode times, each with
where it came from (``tokens_source``, ``timing_source``). No HTTP here, no httpx.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agentsim.errors import BackendError

from .openai_client import Transient, error_text, loads

__all__ = ["StreamReply", "Figures", "read_stream", "whole_reply", "figures", "topk_scores"]


@dataclass
class StreamReply:
    """What one reply carried."""

    text: str = ""
    ttft_s: float | None = None
    #: content chunks received (None for a reply that was not streamed)
    chunks: int | None = None
    finish: str | None = None
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    #: OpenAI's ``logprobs.content`` entries of the reply's tokens (None: the server sent none)
    logprobs: list[dict[str, Any]] | None = None


def read_stream(lines: Iterable[str], *, t0: float, timeout_s: float, base_url: str,
                scrub: Any = lambda s: s) -> StreamReply:
    """Read an SSE stream of chat-completion chunks to its ``[DONE]``. A stream that runs past
    ``timeout_s`` or ends without a finish reason is :class:`Transient` (worth another
    attempt); an error event or a malformed event is a :class:`BackendError`."""
    pieces: list[str] = []
    reply = StreamReply(chunks=0)
    for line in lines:
        if time.perf_counter() - t0 > timeout_s:
            raise Transient(f"the stream from {base_url} ran past timeout_s={timeout_s:g}")
        line = line.strip()
        if not line or line.startswith(":") or not line.startswith("data:"):
            continue  # SSE comments (pings), event names, blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            break
        obj = loads(data, "a streamed event")
        if not isinstance(obj, dict):
            raise BackendError(f"a streamed event is not a JSON object: {data[:200]!r}")
        if obj.get("error"):
            raise BackendError(scrub(f"the server reported an error mid-stream: {error_text(json.dumps(obj))}"))
        if isinstance(obj.get("usage"), dict):
            reply.usage = obj["usage"]
        if isinstance(obj.get("timings"), dict):
            reply.timings = obj["timings"]
        for choice in obj.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content")
            # One content chunk per generated token; an empty one still is a token
            # (llama-cpp-python holds text back while it may be a stop string), but the
            # opening chunk that carries the role (OpenAI, vLLM) comes before any token.
            if text is not None and (text or "role" not in delta):
                if reply.ttft_s is None:
                    reply.ttft_s = time.perf_counter() - t0
                pieces.append(str(text))
                reply.chunks = (reply.chunks or 0) + 1
            _add_logprobs(reply, choice)
            if choice.get("finish_reason"):
                reply.finish = str(choice["finish_reason"])
    if reply.finish is None:
        # Every OpenAI stream ends its choice with a finish_reason; without one the server cut
        # the request short (llama-cpp-python's server does so to a running request when
        # another arrives, unless started with --interrupt_requests False).
        raise Transient(f"the stream from {base_url} ended before a finish_reason after {reply.chunks} "
                        "chunk(s): the server cut the request short")
    reply.text = "".join(pieces)
    return reply


def whole_reply(obj: Any) -> StreamReply:
    """A reply that was not streamed (a server that ignored ``stream: true``)."""
    try:
        choice = obj["choices"][0]
        text = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise BackendError(f"the reply has no choices[0].message.content: {json.dumps(obj)[:200]}") from None
    reply = StreamReply(text=text, finish=choice.get("finish_reason"), usage=obj.get("usage"),
                        timings=obj.get("timings"))
    _add_logprobs(reply, choice)
    return reply


def _add_logprobs(reply: StreamReply, choice: dict[str, Any]) -> None:
    lp = choice.get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else None
    if isinstance(content, list):
        reply.logprobs = (reply.logprobs or []) + [e for e in content if isinstance(e, dict)]


def topk_scores(entries: list[dict[str, Any]], text: str) -> tuple[list[Any], list[dict[Any, float]]]:
    """The tokens and top-k distributions of a reply's ``logprobs.content``, cut to the tokens
    that ``text`` holds (a server may list a stop sequence's tokens): a token is its bytes
    where the server sends them (else its text); each position's dict holds the listed
    ``top_logprobs`` and the returned token itself."""
    tokens: list[Any] = []
    dists: list[dict[Any, float]] = []
    raw = b""

    def key(e: dict[str, Any]) -> Any:
        b = e.get("bytes")
        return bytes(b) if isinstance(b, list) else str(e.get("token", ""))

    for e in entries:
        k = key(e)
        more = raw + (k if isinstance(k, bytes) else str(k).encode("utf-8"))
        # a token belongs to the text while the bytes so far read as its beginning (a character
        # still incomplete is left out; bytes that are no UTF-8 read as the replacement mark)
        whole = bool(raw) and raw.decode("utf-8", errors="replace") == text
        if whole or not (text.startswith(more.decode("utf-8", errors="ignore"))
                         or text.startswith(more.decode("utf-8", errors="replace"))):
            break
        raw = more
        d = {key(t): float(t["logprob"]) for t in e.get("top_logprobs") or [] if isinstance(t, dict)
             and t.get("logprob") is not None}
        if e.get("logprob") is not None:
            d[k] = float(e["logprob"])
        tokens.append(k)
        dists.append(d)
    return tokens, dists


@dataclass
class Figures:
    """Token counts and times of one reply, with where each came from."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    prefill_s: float | None = None
    decode_s: float | None = None
    tokens_source: str = "unavailable"
    timing_source: str = "unavailable"
    server_timings: dict[str, Any] | None = field(default=None)


def figures(reply: StreamReply, wall_s: float) -> Figures:
    """The server's ``usage`` where it sent one, else one token per content chunk; the server's
    own ``timings`` (llama.cpp) where it sent them, else TTFT and the rest of the stream."""
    f = Figures()
    usage, timings = reply.usage, reply.timings
    if isinstance(usage, dict):
        f.prompt_tokens = _int(usage.get("prompt_tokens"))
        f.completion_tokens = _int(usage.get("completion_tokens"))
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict):
            f.cached_tokens = _int(details.get("cached_tokens"))
        f.tokens_source = "usage"
    elif reply.chunks is not None:
        f.completion_tokens = reply.chunks
        f.tokens_source = "stream_chunks (no usage from the server; one chunk per token assumed)"
    if isinstance(timings, dict) and timings.get("prompt_ms") is not None:
        f.prefill_s = float(timings["prompt_ms"]) / 1000.0
        f.decode_s = float(timings.get("predicted_ms") or 0.0) / 1000.0
        f.timing_source = "server timings"
        if f.cached_tokens is None and timings.get("cache_n") is not None:
            f.cached_tokens = _int(timings.get("cache_n"))
        if f.prompt_tokens is None and timings.get("prompt_n") is not None:
            f.prompt_tokens = _int(timings.get("prompt_n"))
        f.server_timings = timings
    elif reply.ttft_s is not None:
        f.prefill_s, f.decode_s = reply.ttft_s, max(wall_s - reply.ttft_s, 0.0)
        f.timing_source = "client: ttft (includes network and queueing) and the rest of the stream"
    return f


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None
