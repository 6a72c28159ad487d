"""The ``openai`` backend's HTTP side: one client to an OpenAI-compatible server, with bounded
retries of what is worth retrying.

Connection refused, timeouts, a dropped stream and HTTP 408/409/425/429/5xx are *transient*
(retried ``retries`` times with exponential backoff, ``Retry-After`` honoured up to 30 s); other
4xx and malformed JSON raise :class:`~agentsim.errors.BackendError` at once. The API key is sent
as ``Authorization: Bearer`` and scrubbed from every message this module makes. Nothing heavy
is imported at module level (httpx when the client opens).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

from agentsim.errors import BackendError

__all__ = ["TRANSIENT_STATUS", "Transient", "ServerClient", "is_local", "error_text", "loads"]

#: HTTP statuses worth retrying: the server is busy, restarting or overloaded
TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 30.0

T = TypeVar("T")


class Transient(Exception):
    """A failure worth another attempt (the message is the user-facing reason)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class ServerClient:
    """An httpx client to ``base_url`` with the retry policy and the key scrubbed from errors."""

    def __init__(self, base_url: str, *, key: str | None, timeout_s: float, retries: int, backoff_s: float,
                 connections: int) -> None:
        import httpx

        self.base_url = base_url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._key = key
        headers = {"Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            headers=headers,
            limits=httpx.Limits(max_connections=connections),
            trust_env=False,  # never send a loopback server's traffic (or the key) through a proxy
        )

    def close(self) -> None:
        self.http.close()

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    # retries ---------------------------------------------------------------------------
    def with_retries(self, attempt: Callable[[], T], *, what: str) -> T:
        """``attempt()`` until it succeeds or a non-transient error, at most ``retries + 1`` times."""
        last = ""
        for i in range(self.retries + 1):
            try:
                return attempt()
            except Transient as exc:
                last = exc.reason
                if i == self.retries:
                    break
                wait = self.backoff_s * (2**i)
                if exc.retry_after is not None:
                    wait = max(wait, min(exc.retry_after, _MAX_RETRY_AFTER_S))
                time.sleep(wait)
        raise BackendError(self.scrub(f"{what}: {last} (after {self.retries + 1} attempt{'s' if self.retries else ''})"),
                           hint=f"is the server at {self.base_url} up and reachable?")

    def transport(self, exc: Exception) -> Transient:
        """An httpx transport failure as a transient one, said plainly."""
        import httpx

        if isinstance(exc, httpx.ConnectError):
            return Transient(f"cannot connect to {self.base_url} ({_short(exc) or 'connection refused'})")
        if isinstance(exc, httpx.TimeoutException):
            return Transient(f"no answer from {self.base_url} within timeout_s={self.timeout_s:g} "
                             f"({type(exc).__name__})")
        return Transient(f"the connection to {self.base_url} broke ({type(exc).__name__}: {_short(exc)})")

    def status_error(self, status: int, body: str, headers: Any, what: str) -> Exception:
        """A non-200 reply: transient (with its ``Retry-After``) or a BackendError with a hint."""
        detail = error_text(body)
        msg = self.scrub(f"{what}: HTTP {status} from {self.base_url}" + (f": {detail}" if detail else ""))
        if status in TRANSIENT_STATUS:
            ra = headers.get("retry-after") if headers is not None else None
            try:
                after = float(ra) if ra is not None else None
            except ValueError:
                after = None
            return Transient(msg, after)
        hint = None
        if status in (401, 403):
            hint = "check the key in the environment variable named by api_key_env"
        elif status == 404:
            hint = "is base_url the API root (usually ending in /v1) and the model id right?"
        return BackendError(msg, hint=hint)

    # requests --------------------------------------------------------------------------
    def get_json(self, url: str) -> Any:
        import httpx

        try:
            r = self.http.get(url)
        except httpx.TransportError as exc:
            raise self.transport(exc) from None
        if r.status_code != 200:
            raise self.status_error(r.status_code, r.text, r.headers, f"GET {urlsplit(url).path}")
        try:
            return r.json()
        except ValueError:
            raise BackendError(f"GET {urlsplit(url).path}: the server's reply is not JSON: {r.text[:200]!r}") from None

    def get_optional_json(self, url: str, timeout_s: float) -> Any:
        """The JSON at ``url``, or None on any failure (best-effort probes)."""
        try:
            r = self.http.get(url, timeout=timeout_s)
            return r.json() if r.status_code == 200 else None
        except Exception:  # noqa: BLE001 - a probe is best effort
            return None

    @contextmanager
    def post_stream(self, url: str, body: dict[str, Any], what: str) -> Iterator[Any]:
        """An open streamed POST whose status is 200 (else its error is raised); transport
        failures while it is open become transient."""
        import httpx

        try:
            with self.http.stream("POST", url, json=body) as r:
                if r.status_code != 200:
                    r.read()
                    raise self.status_error(r.status_code, r.text, r.headers, what)
                yield r
        except httpx.TransportError as exc:
            raise self.transport(exc) from None


def is_local(host: str) -> bool:
    """True when ``host`` is this machine (loopback, or one of its own addresses)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        addrs = {ai[4][0] for ai in socket.getaddrinfo(host, None)}
        if any(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs):
            return True
        return host.lower() in (socket.gethostname().lower(), socket.getfqdn().lower())
    except (OSError, ValueError, UnicodeError):
        return False


def loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise BackendError(f"{what} from the server is not valid JSON: {text[:200]!r}",
                           hint="is base_url an OpenAI-compatible API?") from None


def error_text(body: str) -> str:
    """The message of an OpenAI-style error body (or the body itself, shortened)."""
    try:
        obj = json.loads(body)
    except ValueError:
        return body.strip()[:300]
    if isinstance(obj, dict):
        err = obj.get("error", obj.get("detail", obj))
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        return json.dumps(err)[:300]
    return str(obj)[:300]


def _short(exc: Exception) -> str:
    return str(exc).strip()[:200]
