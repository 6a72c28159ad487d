"""The OpenAI-compatible HTTP surface of ``agentsim serve`` (FastAPI), and the server that runs it.

Routes: ``POST /v1/chat/completions`` (streaming and not), ``GET /v1/models``, ``GET /health``;
``/i/{instance}/v1/...`` serves the same for one instance of an agent run (``agentsim agent run``
points each instance's ``OPENAI_BASE_URL`` there). Headers are never read into the store (an
``Authorization`` key is accepted and ignored).

Streaming sends the answer as server-sent events once the backend has produced it (the backend
interface returns whole completions); the hop is recorded before the first byte goes out, so a
client that disconnects mid-stream leaves a whole, consistent record. This module imports FastAPI:
only :class:`agentsim.serve.Serving` imports it, when a server starts.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from agentsim.errors import AgentsimError

from .chat import RequestError, parse_request
from .service import ChatService, Served

__all__ = ["make_app", "Server", "check_host"]


def _error(exc: RequestError) -> Any:
    return JSONResponse(exc.body(), status_code=exc.status)


def _chunks(served: Served, include_usage: bool) -> list[dict[str, Any]]:
    base = {"id": served.id, "object": "chat.completion.chunk", "created": served.created, "model": served.model,
            "system_fingerprint": "agentsim"}
    out = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    if served.logprobs is not None and served.logprobs["content"]:
        out += _token_chunks(base, served)
    elif served.content:
        text = served.content
        step = max(1, len(text) // 4 + 1)  # a few chunks, as a client meets them from a token stream
        for i in range(0, len(text), step):
            out.append({**base, "choices": [{"index": 0, "delta": {"content": text[i:i + step]}, "finish_reason": None}]})
    for k, call in enumerate(served.tool_calls):
        out.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": k, "id": call["id"], "type": "function",
             "function": {"name": call["function"]["name"], "arguments": call["function"]["arguments"]}}]},
            "finish_reason": None}]})
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": served.finish_reason}]})
    if include_usage:
        out.append({**base, "choices": [], "usage": served.usage})
    return out


def _token_chunks(base: dict[str, Any], served: Served) -> list[dict[str, Any]]:
    """With logprobs: one chunk per generated token, as OpenAI streams them, each carrying its
    token's logprobs entry and the text it completes (a token ending inside a multi-byte
    character carries no text; the character comes with the token that completes it)."""
    entries = served.logprobs["content"] if served.logprobs else []
    text = served.content or ""
    out, done, raw = [], "", b""
    for k, e in enumerate(entries):
        raw += bytes(e["bytes"])
        upto = raw.decode("utf-8", errors="ignore")
        if not text.startswith(upto):  # the content is not these tokens (tool calls): text goes last
            upto = done
        piece = text[len(done):] if k == len(entries) - 1 else upto[len(done):]
        done += piece
        delta = {"content": piece} if served.content is not None else {}
        out.append({**base, "choices": [{"index": 0, "delta": delta, "logprobs": {"content": [e], "refusal": None},
                                         "finish_reason": None}]})
    return out


class Timed:
    """ASGI middleware: the seconds each chat request spends in this server, from its first byte
    read to its last byte handed to the socket (``benchmarks/serve_overhead.py`` reads them)."""

    def __init__(self, app: Any, maxlen: int = 10_000) -> None:
        import collections

        self.app = app
        self.seconds: collections.deque[float] = collections.deque(maxlen=maxlen)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or not str(scope.get("path", "")).endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        import time

        t0 = time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message.get("type") == "http.response.body" and not message.get("more_body"):
                self.seconds.append(time.perf_counter() - t0)

        await self.app(scope, receive, timed_send)


def make_app(service: ChatService) -> Any:
    """The FastAPI application for one :class:`ChatService`."""
    app = FastAPI(title="agentsim serve", docs_url=None, redoc_url=None, openapi_url=None)

    async def chat(request: Request, instance: int) -> Any:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError as exc:
            return _error(RequestError(f"the request body is not JSON: {exc}"))
        try:
            req = parse_request(body)
            served = await service.serve(instance, req)
        except RequestError as exc:
            return _error(exc)
        if not req.stream:
            return JSONResponse(served.body())
        chunks = _chunks(served, req.include_usage)

        async def events() -> AsyncIterator[bytes]:
            for ch in chunks:
                yield b"data: " + json.dumps(ch, ensure_ascii=False).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/chat/completions")
    async def chat_default(request: Request) -> Any:
        raw = request.headers.get("x-agentsim-instance")
        instance = int(raw) if raw and raw.isdigit() else 0
        return await chat(request, instance)

    @app.post("/i/{instance}/v1/chat/completions")
    async def chat_instance(request: Request, instance: int) -> Any:
        if instance < 0:
            return _error(RequestError("instance must be >= 0", status=404))
        return await chat(request, instance)

    def models() -> Any:
        return {"object": "list", "data": [{"id": service.model, "object": "model", "created": 0,
                                            "owned_by": "agentsim", "backend": str(service.backend.spec)}]}

    app.get("/v1/models")(models)
    app.get("/i/{instance}/v1/models")(models)

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok", "run_id": service.recorder.run.id}

    return app


def check_host(host: str, allow_remote: bool) -> bool:
    """True when ``host`` is loopback; another host only with ``allow_remote`` (else an error)."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise AgentsimError(f"refusing to serve on {host!r}: only loopback (127.0.0.1) unless asked",
                            hint="add --allow-remote to serve other machines (anyone who reaches the port can "
                                 "use the model and write to the run)")
    return loopback


class Server:
    """uvicorn running :func:`make_app` in a background thread, on a socket bound here."""

    def __init__(self, service: ChatService, *, host: str = "127.0.0.1", port: int = 0,
                 allow_remote: bool = False) -> None:
        import uvicorn

        self.loopback = check_host(host, allow_remote)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP; without
        # it Nagle and the client's delayed ACK add ~40 ms to every response (measured)
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise AgentsimError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                                hint="choose another --port (0: any free port)") from None
        self.host, self.port = host, int(self._sock.getsockname()[1])
        self.timed = Timed(make_app(service))
        config = uvicorn.Config(self.timed, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="agentsim-serve-http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        import time

        self._thread.start()
        t0 = time.monotonic()
        while not self._server.started:
            if not self._thread.is_alive():
                raise AgentsimError(f"the server on {self.url} stopped while starting")
            if time.monotonic() - t0 > timeout:
                raise AgentsimError(f"the server on {self.url} did not start in {timeout:.0f} s")
            time.sleep(0.01)
        return self

    def wait(self) -> None:
        while self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
