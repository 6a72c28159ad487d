"""Loopback servers for the ``openai`` backend tests.

* :class:`LlamaServer`: llama-cpp-python's own OpenAI-compatible server
  (``python -m llama_cpp.server``) on a GGUF file, in a subprocess on a free 127.0.0.1 port;
  ``kill()`` stops it dead (SIGKILL) and ``start()`` brings it back on the same port.
* :class:`ScriptedHTTPServer`: a stdlib ``http.server`` whose replies a test chooses (HTTP 500,
  malformed JSON, a stall, a well-formed stream with llama.cpp-style ``timings``...), recording
  every request it saw. It stands in for a misbehaving server, which no real server can be made
  to be on demand.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["free_port", "LlamaServer", "ScriptedHTTPServer", "sse_reply"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` on ``model`` at ``http://127.0.0.1:PORT/v1``."""

    def __init__(self, model: Path, log: Path, port: int | None = None, n_ctx: int = 512) -> None:
        self.model = model
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, wait_s: float = 60.0) -> LlamaServer:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(self.n_ctx), "--n_threads", "1", "--n_threads_batch", "1",
               # by default a new request cuts the running one short; concurrent hops must queue
               "--interrupt_requests", "False"]
        env = {k: v for k, v in os.environ.items() if not k.endswith("_PROXY") and not k.endswith("_proxy")}
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({self.proc.returncode}):\n{self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"llama_cpp.server did not answer within {wait_s} s:\n{self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


def sse_reply(pieces: list[str], *, usage: dict[str, Any] | None = None, timings: dict[str, Any] | None = None,
              finish: str = "stop") -> bytes:
    """A well-formed chat-completions event stream: a role chunk, one chunk per piece, the end."""
    events: list[dict[str, Any]] = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    events += [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
    last: dict[str, Any] = {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    if timings is not None:
        last["timings"] = timings
    events.append(last)
    if usage is not None:
        events.append({"choices": [], "usage": usage})
    out = b": ping\n\n"
    for e in events:
        out += b"data: " + json.dumps(e).encode() + b"\n\n"
    return out + b"data: [DONE]\n\n"


Reply = tuple[int, dict[str, str], bytes]


class ScriptedHTTPServer:
    """A threaded stdlib HTTP server on 127.0.0.1; ``chat`` decides each chat-completions reply.

    ``chat(body, headers) -> (status, headers, payload)``; it may sleep (a stall). ``GET /v1/models``
    lists ``model``. Every chat request body is kept in ``requests``.
    """

    def __init__(self, chat: Callable[[dict[str, Any], dict[str, str]], Reply], model: str = "m",
                 owned_by: str = "organization-owner") -> None:
        self.chat = chat
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.rstrip("/") == "/v1/models":
                    body = {"object": "list", "data": [{"id": model, "object": "model", "owned_by": owned_by}]}
                    self._send(200, {"Content-Type": "application/json"}, json.dumps(body).encode())
                else:
                    self._send(404, {"Content-Type": "application/json"}, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                with lock:
                    outer.requests.append(body)
                    outer.headers.append(dict(self.headers))
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    status, headers, payload = outer.chat(body, dict(self.headers))
                finally:
                    with lock:
                        outer.in_flight -= 1
                self._send(status, headers, payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ScriptedHTTPServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
