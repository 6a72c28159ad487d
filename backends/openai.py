"""The ``openai`` backend: any OpenAI-compatible chat-completions server.

Spec: ``openai:MODEL,base_url=http://host:port/v1[,api_key_env=VAR][,precision=LABEL]
[,concurrency=N][,timeout_s=S][,retries=N][,backoff_s=S][,grammar=auto|gbnf|json_schema|off]``.

``MODEL`` is the server's model id (default: the first one ``GET /models`` lists). The precision
is what the *user declares* the server runs (``precision=fp8`` or ``openai:MODEL@fp8``): it is
stored as ``precision_mode: declared``; agentsim cannot see inside the server to verify it.

Every hop is one streamed ``POST /chat/completions`` (system prompt + user prompt, ``max_tokens``,
``stop``, temperature 0, the run's seed, ``stream_options.include_usage``). Per hop:

* ``ttft_s``: wall time to the first streamed content token;
* ``prompt_tokens``/``completion_tokens``: from the server's ``usage`` when it sends one, else
  the completion tokens are the number of content chunks (labelled ``tokens_source``);
* ``prefill_s``/``decode_s``: the server's own ``timings`` where it reports them (llama.cpp's
  ``llama-server``), else TTFT and the rest of the stream (labelled ``timing_source``).

Grammars: a hop's GBNF goes in llama.cpp's ``grammar`` field to servers that accept it (detected
once at load from ``/models`` and the server's OpenAPI schema, or forced with ``grammar=gbnf``);
``grammar=json_schema`` turns the preset answer formats into OpenAI structured outputs
(``response_format: json_schema``: vLLM, SGLang, OpenAI); otherwise hops run unconstrained and
the run's backend notes say so once.

Failures: connection refused, timeouts, a dropped stream, HTTP 408/409/425/429/5xx are retried
``retries`` times with exponential backoff (``Retry-After`` honoured up to 30 s); other 4xx,
malformed JSON or an error event in the stream raise :class:`BackendError` at once. The engine
records a ``backend`` error on that hop and goes on; ``agentsim run --resume`` finishes the run.

The API key is read from the environment variable named by ``api_key_env`` when the backend
loads; it is sent as ``Authorization: Bearer``, scrubbed from every error message, and never
stored (the spec holds only the variable's name).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar
from urllib.parse import urlsplit

from agentsim.backends.base import (
    Backend,
    BackendInfo,
    BackendSpec,
    Completion,
    GenerationRequest,
    OptionSpec,
    TokenScores,
    first_stop,
)
from agentsim.errors import BackendError
from agentsim.grammar import resolve_grammar

from .openai_client import TRANSIENT_STATUS, ServerClient, is_local, loads
from .openai_stream import StreamReply, figures, read_stream, topk_scores, whole_reply

__all__ = ["OpenAIBackend", "json_schema_for", "TRANSIENT_STATUS"]

_GRAMMAR_MODES = ("auto", "gbnf", "json_schema", "off")
_LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")
#: llama.cpp's own sampler defaults differ from greedy (llama-cpp-python's server applies
#: repeat_penalty=1.1, top_k=40, min_p=0.05): pin them to what the ``llama`` backend uses.
_LLAMA_GREEDY = {"top_k": 1, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0}


class OpenAIBackend(Backend):
    NAME: ClassVar[str] = "openai"
    DESCRIPTION: ClassVar[str] = "any OpenAI-compatible server (vLLM, SGLang, TGI, Ollama, llama.cpp); precision declared"
    EXTRA: ClassVar[str | None] = "openai"
    REQUIRES: ClassVar[tuple[str, ...]] = ("httpx",)
    OPTIONS: ClassVar[dict[str, OptionSpec]] = {
        "base_url": OptionSpec(str, "", "the server's API root, e.g. http://127.0.0.1:8000/v1 (required)"),
        "api_key_env": OptionSpec(str, "", "name of the environment variable that holds the API key (never the key itself)"),
        "precision": OptionSpec(str, "", "what the server runs, as you declare it (e.g. bf16, fp8, awq-int4, nvfp4); not verifiable"),
        "concurrency": OptionSpec(int, 1, "requests in flight at once in generate_batch (the server batches them)"),
        "timeout_s": OptionSpec(float, 120.0, "seconds one attempt may take (connect, first byte, whole stream)"),
        "retries": OptionSpec(int, 2, "extra attempts after a transient failure (refused, timeout, 429, 5xx)"),
        "backoff_s": OptionSpec(float, 0.5, "first retry delay in seconds; doubles each retry"),
        "grammar": OptionSpec(str, "auto", "auto | gbnf (llama.cpp 'grammar' field) | json_schema (response_format) | off"),
        "top_logprobs": OptionSpec(int, 20, "top logprobs asked per token in a --fidelity launch (OpenAI: 0..20)"),
    }
    PRECISIONS: ClassVar[tuple[str, ...] | None] = None  # declared: any label
    SUPPORTS_GRAMMAR: ClassVar[bool] = True  # when the server accepts one (see grammar_mode)
    #: a top-k estimate from the server's ``logprobs`` of the tokens it generated in a
    #: ``--fidelity`` launch (captured, :class:`~agentsim.backends.base.ScoreCapture`)
    FIDELITY: ClassVar[str] = "topk"
    FIDELITY_TEACHER_FORCED: ClassVar[bool] = False
    FIDELITY_UNAVAILABLE: ClassVar[str] = (
        "cannot be scored teacher-forced: the chat API returns logprobs of the tokens the server "
        "generates, not of given ones (prompt logprobs are not requested by agentsim); they are "
        "captured while a --fidelity launch runs (run --fidelity), and compared up to where two "
        "runs' answers part")

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        o = self.options
        url = str(o["base_url"]).strip().rstrip("/")
        if not url:
            raise BackendError(
                f"backend spec {spec}: base_url is required",
                hint="e.g. openai:MODEL,base_url=http://127.0.0.1:8000/v1",
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(f"backend spec {spec}: base_url {url!r} is not an http(s) URL",
                               hint="e.g. base_url=http://127.0.0.1:8000/v1")
        if parts.username or parts.password:
            raise BackendError("base_url must not carry credentials",
                               hint="put the key in an environment variable and pass api_key_env=NAME")
        self.base_url = url
        label = str(o["precision"]).strip().lower()
        if label and spec.precision and label != spec.precision:
            raise BackendError(f"backend spec {spec}: precision given twice ({spec.precision!r} and {label!r})")
        self.declared_precision: str | None = label or spec.precision or None
        if self.declared_precision and not _LABEL_RE.match(self.declared_precision):
            raise BackendError(f"precision label {self.declared_precision!r}: use letters, digits and . _ + -")
        if str(o["grammar"]) not in _GRAMMAR_MODES:
            raise BackendError(f"openai: grammar={o['grammar']!r}", hint="auto, gbnf, json_schema or off")
        if not 0 <= int(o["top_logprobs"]) <= 20:
            raise BackendError("openai: top_logprobs must be between 0 and 20 (OpenAI's bound)")
        if int(o["concurrency"]) < 1:
            raise BackendError("openai: concurrency must be at least 1")
        if float(o["timeout_s"]) <= 0:
            raise BackendError("openai: timeout_s must be > 0")
        if int(o["retries"]) < 0 or float(o["backoff_s"]) < 0:
            raise BackendError("openai: retries and backoff_s must be >= 0")
        env = str(o["api_key_env"]).strip()
        if env and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", env):
            raise BackendError(f"api_key_env={env!r} is not an environment variable name",
                               hint="pass the variable's NAME (e.g. api_key_env=OPENAI_API_KEY), never the key")
        self._key_env = env
        self._client: ServerClient | None = None
        self._lock = threading.Lock()
        self.model: str | None = spec.model
        self.server: str = "unknown"
        self.owned_by: str | None = None
        self.grammar_mode: str = "off"
        self._stream_usage = True  # ask for stream_options.include_usage until a server refuses it
        self._logprobs = True  # ask for logprobs (when wanted) until a server refuses them
        self.notes: list[str] = []
        self._warned: set[str] = set()
        self.local = is_local(parts.hostname)

    # ---------------------------------------------------------------------------------------
    # life cycle

    def load(self) -> None:
        if self._client is not None:
            return
        try:
            import httpx  # noqa: F401 - the client needs it
        except ImportError:
            from agentsim.errors import MissingDependencyError

            raise MissingDependencyError("backend 'openai'", "openai", ["httpx"]) from None
        key: str | None = None
        if self._key_env:
            key = os.environ.get(self._key_env, "")
            if not key:
                raise BackendError(f"environment variable {self._key_env} (api_key_env) is not set or empty",
                                   hint=f"export {self._key_env}=... before running")
        o = self.options
        self._client = ServerClient(self.base_url, key=key, timeout_s=float(o["timeout_s"]), retries=int(o["retries"]),
                                    backoff_s=float(o["backoff_s"]), connections=int(o["concurrency"]) + 1)
        try:
            self._probe()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None

    def _probe(self) -> None:
        """``GET /models`` once: the server answers, the model exists, which grammar it takes."""
        client = self._open()
        listing = client.with_retries(lambda: client.get_json(f"{self.base_url}/models"), what="GET /models")
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            raise BackendError(f"{self.base_url}/models did not return an OpenAI model list",
                               hint="is base_url the API root (usually ending in /v1)?")
        ids = {str(m.get("id")): m for m in data if isinstance(m, dict) and m.get("id") is not None}
        if self.model is None:
            if not ids:
                raise BackendError(f"the server at {self.base_url} lists no models")
            self.model = next(iter(ids))
        elif ids and self.model not in ids:
            raise BackendError(f"the server at {self.base_url} has no model {self.model!r}",
                               hint=f"models: {', '.join(sorted(ids))}")
        entry = ids.get(self.model or "", {})
        self.owned_by = str(entry.get("owned_by")) if entry.get("owned_by") is not None else None
        self.server = self._identify()
        mode = str(self.options["grammar"])
        if mode == "auto":
            mode = {"llama.cpp": "gbnf", "llama-cpp-python": "gbnf", "vllm": "json_schema",
                    "sglang": "json_schema"}.get(self.server, "off")
            if mode == "off":
                self.notes.append(
                    f"grammar: the server ({self.server}) did not show it accepts GBNF or JSON-schema guided "
                    "decoding, so hop grammars are NOT applied; force grammar=gbnf or grammar=json_schema to try")
        self.grammar_mode = mode
        if mode == "json_schema":
            self.notes.append("grammar: preset answer formats go as response_format json_schema; raw GBNF hop "
                              "grammars cannot be translated and run unconstrained")
        elif mode == "off" and str(self.options["grammar"]) == "off":
            self.notes.append("grammar: off (grammar=off): hop grammars are NOT applied")

    def _identify(self) -> str:
        """Which server this is, from ``owned_by`` and (for FastAPI servers) the OpenAPI schema."""
        owner = (self.owned_by or "").lower()
        known = {"llamacpp": "llama.cpp", "vllm": "vllm", "sglang": "sglang", "library": "ollama", "ollama": "ollama",
                 "tgi": "tgi", "text-generation-inference": "tgi", "openai": "openai", "system": "openai"}
        if owner in known:
            return known[owner]
        root = re.sub(r"/v1$", "", self.base_url)
        schema = self._open().get_optional_json(f"{root}/openapi.json", min(float(self.options["timeout_s"]), 5.0))
        if isinstance(schema, dict):
            title = str(schema.get("info", {}).get("title", "")).lower()
            comps = schema.get("components", {}).get("schemas", {})
            chat = comps.get("CreateChatCompletionRequest") or comps.get("ChatCompletionRequest") or {}
            props = chat.get("properties", {}) if isinstance(chat, dict) else {}
            if "llama" in title and "grammar" in props:
                return "llama-cpp-python"
            if "vllm" in title:
                return "vllm"
        return f"unknown (owned_by={self.owned_by})" if self.owned_by else "unknown"

    def _open(self) -> ServerClient:
        if self._client is None:
            raise BackendError("openai: the backend is not loaded")
        return self._client

    # ---------------------------------------------------------------------------------------
    # generation

    def body(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body of one hop's chat-completions request."""
        messages = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": request.prompt})
        if request.messages is not None:  # a whole chat (agentsim serve), sent as it came
            messages = list(request.messages)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": int(request.max_tokens),
            "temperature": 0.0,
            "seed": int(request.seed),
            "stream": True,
        }
        stops = [s for s in request.stop if s]
        if stops:
            body["stop"] = stops
        if request.tools:
            body["tools"] = list(request.tools)
        if self._logprobs and (request.top_logprobs is not None or (self.capture is not None and request.messages is None)):
            body["logprobs"] = True
            body["top_logprobs"] = int(request.top_logprobs if request.top_logprobs is not None
                                       else self.options["top_logprobs"])
        if self._stream_usage:
            body["stream_options"] = {"include_usage": True}
        if self.server in ("llama.cpp", "llama-cpp-python"):
            body.update(_LLAMA_GREEDY)
        if request.grammar:
            if self.grammar_mode == "gbnf":
                body["grammar"] = resolve_grammar(request.grammar)
            elif self.grammar_mode == "json_schema":
                schema = json_schema_for(request.grammar)
                if schema is not None:
                    body["response_format"] = {"type": "json_schema",
                                               "json_schema": {"name": "answer", "schema": schema, "strict": True}}
                else:
                    self._note_once("raw-gbnf", "grammar: a hop's raw GBNF grammar has no JSON-schema form; "
                                                "that hop ran unconstrained")
        return body

    def _grammar_label(self, request: GenerationRequest) -> str | None:
        """How this hop's grammar was applied (None: the hop has none)."""
        if not request.grammar:
            return None
        if self.grammar_mode == "gbnf":
            return "gbnf (server grammar field)"
        if self.grammar_mode == "json_schema":
            if json_schema_for(request.grammar) is not None:
                return "json_schema (response_format)"
            return "not applied (raw GBNF has no JSON-schema form)"
        return "not applied (the server takes no grammar)"

    def _note_once(self, key: str, text: str) -> None:
        with self._lock:
            if key not in self._warned:
                self._warned.add(key)
                self.notes.append(text)

    def generate(self, request: GenerationRequest) -> Completion:
        if self._client is None:
            self.load()
        client = self._open()
        body = self.body(request)
        try:
            return client.with_retries(lambda: self._stream(body, request), what="POST /chat/completions")
        except BackendError as exc:
            if "stream_options" in body and self._stream_usage and "stream_options" in exc.message:
                # an older server that refuses the field: drop it for the rest of the run
                self._stream_usage = False
                self._note_once("usage", "the server refused stream_options; token counts come from the stream")
                body.pop("stream_options", None)
                return client.with_retries(lambda: self._stream(body, request), what="POST /chat/completions")
            if "logprobs" in body and self._logprobs and "logprobs" in exc.message:
                self._logprobs = False
                self._note_once("logprobs", "the server refused logprobs: fidelity is unavailable for its hops")
                body.pop("logprobs", None)
                body.pop("top_logprobs", None)
                return client.with_retries(lambda: self._stream(body, request), what="POST /chat/completions")
            raise

    def generate_batch(self, requests: Sequence[GenerationRequest], *,
                       return_exceptions: bool = False) -> list[Any]:
        """Answer several requests with up to ``concurrency`` in flight (the server batches them).

        Results come back in request order. With ``return_exceptions`` a failed request's slot
        holds its exception (so one bad hop does not sink the others); without it the first
        failure is raised once every request has finished.
        """
        if self._client is None:
            self.load()
        reqs = list(requests)
        if not reqs:
            return []
        n = min(int(self.options["concurrency"]), len(reqs))
        results: list[Any] = [None] * len(reqs)

        def one(i: int) -> None:
            try:
                c = self.generate(reqs[i])
                # each request is timed on its own stream, concurrent ones overlapping on the server
                c.batch_timing = c.batch_timing or "own"
                results[i] = c
            except Exception as exc:  # noqa: BLE001 - handed back or re-raised below
                results[i] = exc

        if n == 1:
            for i in range(len(reqs)):
                one(i)
        else:
            with ThreadPoolExecutor(max_workers=n, thread_name_prefix="agentsim-openai") as pool:
                list(pool.map(one, range(len(reqs))))
        if not return_exceptions:
            for r in results:
                if isinstance(r, Exception):
                    raise r
        return results

    def _stream(self, body: dict[str, Any], request: GenerationRequest) -> Completion:
        """One attempt: the streamed request, read to its end."""
        client = self._open()
        t0 = time.perf_counter()
        with client.post_stream(f"{self.base_url}/chat/completions", body, "POST /chat/completions") as r:
            if "text/event-stream" not in r.headers.get("content-type", ""):  # a server that ignored stream=true
                r.read()
                reply = whole_reply(loads(r.text, "the reply"))
            else:
                reply = read_stream(r.iter_lines(), t0=t0, timeout_s=client.timeout_s, base_url=self.base_url,
                                    scrub=client.scrub)
        return self._completion(reply, request, time.perf_counter() - t0)

    def _completion(self, reply: StreamReply, request: GenerationRequest, wall: float) -> Completion:
        extra: dict[str, Any] = {"wall_s": wall, "server": self.server, "grammar": self._grammar_label(request)}
        text, finish = reply.text, reply.finish
        cut = first_stop(text, request.stop)
        if cut is not None:  # servers strip stop strings; make sure
            text, finish = text[:cut], "stop"
        if request.grammar and self.grammar_mode == "json_schema" and json_schema_for(request.grammar) is not None:
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            if isinstance(value, str):  # a JSON string answer: the text is the string itself
                extra["raw_text"] = reply.text
                text = value
        f = figures(reply, wall)
        if f.server_timings is not None:
            extra["server_timings"] = f.server_timings
        done = Completion(text=text, prompt_tokens=f.prompt_tokens, completion_tokens=f.completion_tokens,
                          cached_tokens=f.cached_tokens, prefill_s=f.prefill_s, decode_s=f.decode_s,
                          ttft_s=reply.ttft_s, finish_reason=_stop_reason(finish, request), timing_source=f.timing_source,
                          tokens_source=f.tokens_source, extra=extra)
        if reply.logprobs is not None:
            tokens, dists = topk_scores(reply.logprobs, text)
            scores = TokenScores("topk", tokens, dists, source="captured")
            if request.top_logprobs is not None:
                done.scores = scores
            if self.capture is not None and tokens and "raw_text" not in extra:
                self.capture.put(request, text, scores)
        elif self.capture is not None and text:
            self._note_once("no-logprobs", "the server returned no logprobs: fidelity is unavailable for its hops")
        return done

    # ---------------------------------------------------------------------------------------
    # what ran

    def meter_for(self, meter: Any) -> Any:
        """A remote server cannot be metered here; on loopback, NVML/RAPL measure the machine
        (server included) but the CPU-time estimate counts only this client: refuse it."""
        from agentsim.measure import UnavailableMeter

        kind = meter.describe().get("kind")
        if not self.local and kind != "unavailable":
            return UnavailableMeter(self.energy_note())
        if self.local and kind == "estimated":
            return UnavailableMeter("the CPU-time estimate counts this client process only, not the server's "
                                    "work; " + self.energy_note())
        return meter

    def energy_note(self) -> str:
        """What the engine's energy meter can measure for this server."""
        if self.local:
            return ("the server is on this machine (loopback): NVML (the whole GPU, server included) and RAPL "
                    "(the whole socket) measure it; the CPU-time estimate does NOT (it counts this client "
                    "process only, not the server's)")
        return ("the server is on another machine: no meter here can measure it; energy is unavailable unless "
                "you supply an estimate")

    def info(self) -> BackendInfo:
        notes = [
            f"precision {self.declared_precision or '(none declared)'} is DECLARED by the user; agentsim cannot "
            "verify what the server computes in",
            f"energy: {self.energy_note()}",
            *self.notes,
        ]
        return BackendInfo(
            name=self.NAME,
            model=self.model,
            precision=self.declared_precision,
            precision_mode="declared",
            kernel=f"remote server: {self.server}" + (f" (owned_by={self.owned_by})" if self.owned_by else ""),
            device="server (local)" if self.local else "server (remote)",
            extra={
                "base_url": self.base_url,
                "server": self.server,
                "server_local": self.local,
                "grammar_mode": self.grammar_mode,
                "concurrency": int(self.options["concurrency"]),
                "timeout_s": float(self.options["timeout_s"]),
                "retries": int(self.options["retries"]),
                "api_key": f"from ${self._key_env}" if self._key_env else "none",
                "timing_source": "the server's own timings where a reply carries them (llama.cpp's llama-server), "
                                 "else client-side: prefill = TTFT (network and queueing included), decode = the rest",
                "tokens_source": "the server's usage where it sends one, else one token per streamed content chunk",
                "notes": notes,
            },
        )


# --------------------------------------------------------------------------------------------
# helpers


def json_schema_for(grammar: str | None) -> dict[str, Any] | None:
    """A JSON schema equivalent to a hop grammar preset (``choice:a|b`` too), or None for raw GBNF."""
    if grammar is None:
        return None
    g = grammar.strip()
    if g == "integer":
        return {"type": "integer"}
    if g == "number":
        return {"type": "number"}
    if g == "yesno":
        return {"type": "string", "enum": ["yes", "no"]}
    if g == "word":
        return {"type": "string", "pattern": "^[A-Za-z][A-Za-z_-]*$"}
    if g == "words":
        return {"type": "string", "pattern": "^[A-Za-z][A-Za-z _-]*$"}
    if g.startswith("choice:"):
        options = [o.strip() for o in g[len("choice:"):].split("|") if o.strip()]
        return {"type": "string", "enum": options} if options else None
    return None


def _stop_reason(finish: str | None, request: GenerationRequest) -> str | None:
    """The server's ``finish_reason`` in agentsim's words (backends.base.STOP_REASONS): OpenAI's
    ``stop`` covers both the end of turn and a stop sequence, so it is ``eos`` when the request
    had no stop sequence and ``stop`` when it had one (it may then be either); ``length`` is the
    budget; anything else (``tool_calls``, ``content_filter``) is kept as the server wrote it."""
    if finish == "stop":
        return "stop" if any(request.stop) else "eos"
    return finish
