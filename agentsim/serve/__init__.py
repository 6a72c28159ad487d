"""``agentsim serve``: an OpenAI-compatible chat-completions server over any agentsim backend, every
request recorded as a hop of a run (see docs/agents.md).

    with Serving("llama:qwen2.5-coder-0.5b@q4_0", store=Store()) as s:
        client = openai.OpenAI(base_url=s.base_url, api_key="agentsim")

:class:`Serving` loads the backend, creates the run, and starts the server on loopback; closing it
finishes the run (status, run-level energy) and releases the backend.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from agentsim.store import RunRead, Store, utcnow

from .recorder import AgentRunSpec

__all__ = ["Serving", "ServeOptions", "AgentRunSpec"]


@dataclass(frozen=True)
class ServeOptions:
    """Where and how requests are served: the address (loopback only unless ``allow_remote``;
    port 0: any free port) and how many concurrent requests one backend call may batch."""

    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False
    max_batch: int = 8


class Serving:
    """A backend served over HTTP for one run (module docstring).

    ``run``: the run to record into, a stored one (resumed) or what a new one says it ran
    (default: a plain serve run, :func:`~agentsim.serve.recorder.serve_ref`). ``backend``: an
    already loaded backend (left open at the end); else ``spec`` is created and loaded here.
    ``reference``: the reference run's calls the recorded calls are judged against.
    """

    def __init__(self, spec: str | Any, *, store: Store, run: AgentRunSpec | RunRead | None = None,
                 options: ServeOptions = ServeOptions(), meter: Any = None, reference: Any = None,
                 backend: Any = None) -> None:
        from agentsim.backends.base import create_backend, load_backend
        from agentsim.measure import UnavailableMeter

        from .app import Server, check_host
        from .dispatch import Dispatcher
        from .recorder import Recorder, new_agent_run
        from .service import ChatService

        check_host(options.host, options.allow_remote)  # before any model is loaded
        self.store = store
        self.backend = backend if backend is not None else create_backend(spec)
        self._own_backend = backend is None
        if self._own_backend:
            load_backend(self.backend)
        self.meter = self.backend.meter_for(meter or UnavailableMeter())
        if not isinstance(run, RunRead):
            run = new_agent_run(store, self.backend, self.meter, run or AgentRunSpec())
        self.run = run
        self.recorder = Recorder(store, self.run, reference)
        self.dispatcher = Dispatcher(self.backend, self.meter, max_batch=options.max_batch)
        self.service = ChatService(self.backend, self.dispatcher, self.recorder)
        self.server = Server(self.service, host=options.host, port=options.port, allow_remote=options.allow_remote)
        self._token: Any = None
        self._t0 = 0.0
        self._closed = False

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def base_url(self) -> str:
        """The ``OPENAI_BASE_URL`` of the plain server (instance 0, or the X-Agentsim-Instance header)."""
        return f"{self.server.url}/v1"

    def instance_url(self, index: int) -> str:
        """The ``OPENAI_BASE_URL`` whose requests are recorded under instance ``index``."""
        return f"{self.server.url}/i/{index}/v1"

    def start(self) -> Serving:
        self._token = self.meter.begin()
        self._t0 = time.perf_counter()
        self.store.update_run(self.run.id, status="running")
        try:
            self.server.start()
        except BaseException:
            self.close(status="failed", error="the server did not start")
            raise
        return self

    def close(self, *, status: str = "complete", error: str | None = None) -> RunRead:
        if self._closed:
            return self.store.get_run(self.run.id)
        self._closed = True
        try:
            self.server.stop()
        finally:
            self.dispatcher.close()
            reading = self.meter.end(self._token) if self._token is not None else None
            hops = len(self.store.hops(self.run.id))
            fields: dict[str, Any] = {"status": status, "error": error, "finished_at": utcnow(), "pid": None}
            if reading is not None:
                fields.update(run_energy_j=reading.joules, run_energy_kind=reading.kind,
                              run_energy_source=reading.source, run_energy_resolution_j=reading.resolution_j,
                              run_energy_note=reading.note, run_energy_hops=hops)
            self.run = self.store.update_run(self.run.id, **fields)
            if self._own_backend:
                self.backend.close()
        return self.run

    def finish_open_instances(self) -> None:
        """A plain serve's instances end with the server: each is finished, successful when every
        call of it was (there is no check to ask)."""
        for inst in self.store.instances(self.run.id):
            if not inst.finished:
                self.store.finish_instance(self.run.id, inst.index, success=self.recorder.instance_correct(inst.index),
                                           final_correct=self.recorder.instance_correct(inst.index),
                                           root_causes=self.recorder.origins(inst.index))

    def __enter__(self) -> Serving:
        return self.start()

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.finish_open_instances()
            self.close()
        else:
            self.close(status="interrupted" if exc_type is KeyboardInterrupt else "failed",
                       error=None if exc_type is KeyboardInterrupt else f"{exc_type.__name__}")
