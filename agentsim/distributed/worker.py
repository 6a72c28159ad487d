"""The two actors of a Ray launch: the hub beside the driver, and the long-lived run workers.

:class:`Hub` (one per launch, pinned to the driver's node, no CPU) holds the launch's queue of
runs, one per resource shape, and what the workers report back (progress, each run's outcome);
with ``store=driver`` it also owns the one :class:`~agentsim.store.Store` and commits every hop.

:class:`RunWorker` (a small pool, one per worker slot of each resource shape, see
:mod:`agentsim.distributed.ray_executor`) pulls runs from the hub until its shape's queue is
empty. It keeps what a run costs to set up between runs: the imported modules, the loaded
backend (one, keyed by backend spec and the driver's model sha256), the energy meter, the
store (or the hub's proxy of it) and the rebuilt scenarios. Every run still records the node it
ran on (machine fingerprint, host, pid) and is run by the same engine as in-process.

A worker killed mid-run holds a *lease* on its run in the hub. Ray restarts the actor
(``max_restarts``) and re-runs its ``serve`` call (``max_task_retries``); the first thing the
new incarnation asks the hub for is the run it held, which the engine resumes from the hops
already committed (the unique key on run, instance and hop forbids duplicates). A run whose
worker dies more than ``max_retries`` times is given up (it reads interrupted, and resumes
with ``agentsim run --resume``).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict
from typing import Any

from agentsim.engine import Progress, RunExecutor, run_fields_here
from agentsim.errors import AgentsimError, MissingDependencyError
from agentsim.store import (
    HopRead,
    HopRecord,
    InstanceRead,
    InstanceRecord,
    RunRead,
    Store,
)

from .node import prepare_on_node

__all__ = ["Hub", "HubStore", "RunWorker", "require_ray", "PROGRESS_EVERY_S", "CANCEL_POLL_S"]

#: a worker posts progress at most this often per run (and always at its start and end)
PROGRESS_EVERY_S = 0.25
#: how often a running worker asks the hub whether the launch was cancelled
CANCEL_POLL_S = 0.25
#: scenarios a worker keeps rebuilt (by fingerprint)
SCENARIO_CACHE = 64


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("--executor ray", "ray", ["ray"]) from None
    return ray


# --------------------------------------------------------------------------------------------
# the hub, beside the driver


class Hub:
    """The launch's run queue, lease book and mailbox (and its store with ``store=driver``).

    Runs are queued per resource shape, in launch order. ``next`` hands a worker its next run:
    the one it still holds when it comes back from a restart, else the first queued run with
    the backend it has loaded (no reload), else the first queued run.
    """

    def __init__(self) -> None:
        self.store: Store | None = None
        self.reset(None, 0)

    def reset(self, db: str | None, max_retries: int) -> None:
        """Start a launch: empty queues and books, and the store of ``db`` (None: the workers
        commit themselves). The hub lives as long as the worker pool, one launch at a time."""
        self.close()
        self.store = Store(db) if db is not None else None
        self.max_retries = max_retries
        self.queues: dict[str, list[dict[str, Any]]] = {}
        self.leases: dict[str, dict[str, Any]] = {}  # worker key -> the payload it holds
        self.retries: dict[int, int] = {}  # run id -> times its worker died holding it
        self.serving: set[str] = set()  # workers whose serve call this hub has seen start
        self.idle_deaths: dict[str, int] = {}  # worker key -> restarts while holding nothing
        self.outcomes: list[dict[str, Any]] = []  # finished runs, not yet polled
        self.latest: dict[int, dict[str, Any]] = {}  # progress, not yet polled
        self.stopped = False

    # the store (store=driver) ------------------------------------------------------------
    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, bool]:
        """One store call, committed before it returns; with it, whether the launch is stopping
        (so a worker learns of a cancel without asking)."""
        assert self.store is not None
        return getattr(self.store, name)(*args, **kwargs), self.stopped

    def calls(self, batch: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> tuple[Any, bool]:
        """Several store calls in order, each committed before the next (the first error stops
        the rest); the last one's answer, and whether the launch is stopping."""
        assert self.store is not None
        value = None
        for name, args, kwargs in batch:
            value = getattr(self.store, name)(*args, **kwargs)
        return value, self.stopped

    # the queue ---------------------------------------------------------------------------
    def add(self, shape: str, payloads: list[dict[str, Any]]) -> None:
        self.queues.setdefault(shape, []).extend(payloads)

    def next(self, worker: str, shape: str, finished: dict[str, Any] | None, loaded: str | None,
             first: bool) -> dict[str, Any] | None:
        """``finished``: the outcome of the run the worker just did (it gives its lease back).
        ``first``: this is the first call of a ``serve``; a second first call from the same
        worker means Ray restarted it."""
        if finished is not None:
            self.leases.pop(worker, None)
            self.outcomes.append(finished)
        restarted = first and worker in self.serving
        self.serving.add(worker)
        held = self.leases.pop(worker, None)
        if held is not None:  # the worker died holding this run: resume it, or give it up
            run_id = int(held["run_id"])
            self.retries[run_id] = self.retries.get(run_id, 0) + 1
            if self.retries[run_id] <= self.max_retries and not self.stopped:
                self.leases[worker] = held
                return held
            self.outcomes.append({"run_id": run_id, "spec": held["spec"], "ok": False, "lost": True,
                                  "message": f"run {run_id}: its Ray worker died {self.retries[run_id]} times",
                                  "hint": f"resume it: agentsim run --resume {run_id}"})
        elif restarted:  # died between runs; a worker that keeps dying is given nothing more
            self.idle_deaths[worker] = self.idle_deaths.get(worker, 0) + 1
            if self.idle_deaths[worker] > self.max_retries:
                return None
        if self.stopped:
            return None
        queue = self.queues.get(shape) or []
        if not queue:
            return None
        pick = next((i for i, p in enumerate(queue) if p["spec"] == loaded), 0)
        payload = queue.pop(pick)
        self.leases[worker] = payload
        return payload

    def abandon(self, worker: str) -> dict[str, Any] | None:
        """A worker is gone for good (Ray gave up restarting it): the run it held, if any."""
        return self.leases.pop(worker, None)

    def left(self, shape: str | None = None) -> list[dict[str, Any]]:
        """Take the runs still queued (of one shape, or all): nobody will run them now."""
        shapes = [shape] if shape is not None else list(self.queues)
        out: list[dict[str, Any]] = []
        for s in shapes:
            out.extend(self.queues.pop(s, []))
        return out

    def stop(self) -> None:
        """Hand out nothing more; running workers see it as a cancel (their runs read interrupted)."""
        self.stopped = True

    def is_stopped(self) -> bool:
        return self.stopped

    # the mailbox -------------------------------------------------------------------------
    def post(self, progress: dict[str, Any]) -> None:
        self.latest[int(progress["run_id"])] = progress

    def poll(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(progress since the last poll, one per run; runs finished since the last poll)."""
        progress, outcomes = list(self.latest.values()), self.outcomes
        self.latest, self.outcomes = {}, []
        return progress, outcomes

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


class HubStore:
    """What a worker's engine sees as its store when the driver commits: a
    :class:`~agentsim.store.RunStore` whose every call is a call on the hub actor.

    A call whose answer the engine uses (``record_hop``, ``hops``, ``update_run`` ...) returns once
    the hub has committed it: a hop counts as recorded only then, exactly as in-process. The two
    idempotent instance bookkeeping calls (``ensure_instance``, ``finish_instance``; the engine
    ignores their answers) travel with the next such call, in one message, and are committed
    before it, in order; an error in one is raised by that call. A worker that dies with one not
    yet sent has recorded no hop after it: the resumed run records the instance again, or marks
    it finished again (both are no-ops when already done).
    """

    def __init__(self, hub: Any, db: str) -> None:
        self._hub = hub
        self.db = db
        self._queued: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        #: the hub said the launch is stopping (read by the worker's cancel check)
        self.stopped = False

    # the RunStore methods ------------------------------------------------------------------
    def get_run(self, run_id: int) -> RunRead:
        return self._call("get_run", run_id)  # type: ignore[no-any-return]

    def update_run(self, run_id: int, **fields: Any) -> RunRead:
        return self._call("update_run", run_id, **fields)  # type: ignore[no-any-return]

    def hops(self, run_id: int, instance_index: int | None = None) -> list[HopRead]:
        return self._call("hops", run_id, instance_index)  # type: ignore[no-any-return]

    def instances(self, run_id: int) -> list[InstanceRead]:
        return self._call("instances", run_id)  # type: ignore[no-any-return]

    def record_hop(self, hop: HopRecord) -> HopRecord:
        return self._call("record_hop", hop)  # type: ignore[no-any-return]

    def ensure_instance(self, rec: InstanceRecord) -> None:
        """Sent with the next waited call (the engine does not read its answer)."""
        self._queued.append(("ensure_instance", (rec,), {}))

    def finish_instance(self, run_id: int, index: int, **fields: Any) -> None:
        """Sent with the next waited call."""
        self._queued.append(("finish_instance", (run_id, index), fields))

    # ---------------------------------------------------------------------------------------
    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """One call the caller waits for, after the queued ones, in one message."""
        ray = require_ray()
        if self._queued:
            batch, self._queued = [*self._queued, (name, args, kwargs)], []
            value, stopped = ray.get(self._hub.calls.remote(batch))
        else:
            value, stopped = ray.get(self._hub.call.remote(name, args, kwargs))
        self.stopped = self.stopped or stopped
        return value

    def flush(self) -> None:
        """Commit the bookkeeping calls not sent yet."""
        if self._queued:
            batch, self._queued = self._queued, []
            _, stopped = require_ray().get(self._hub.calls.remote(batch))
            self.stopped = self.stopped or stopped

    def close(self) -> None:
        self.flush()


# --------------------------------------------------------------------------------------------
# the long-lived run worker


class RunWorker:
    """One slot of the pool: pulls runs from a launch's hub and runs them, keeping its backend,
    meter, store and scenarios loaded from one run (and one launch) to the next."""

    def __init__(self, key: str, shape: str) -> None:
        self.key = key
        self.shape = shape
        self._backend: Any = None
        self._backend_key: tuple[str, str | None] | None = None
        self._meters: dict[str, Any] = {}
        self._store: Any = None
        self._store_key: tuple[Any, ...] | None = None
        self._scenarios: dict[str, Any] = {}
        self.runs_done = 0
        self.loads = 0  # backends this worker has loaded (one per spec it switched to)

    def ping(self) -> dict[str, Any]:
        return {"key": self.key, "pid": os.getpid(), "host": socket.gethostname(), "runs": self.runs_done,
                "loads": self.loads, "backend": self._backend_key[0] if self._backend_key else None}

    def serve(self, hub: Any) -> int:
        """Run what the hub hands out until it has nothing more for this shape; returns how
        many runs this call finished."""
        ray = require_ray()
        finished: dict[str, Any] | None = None
        first, count = True, 0
        while True:
            loaded = self._backend_key[0] if self._backend_key else None
            job = ray.get(hub.next.remote(self.key, self.shape, finished, loaded, first))
            first = False
            if job is None:
                return count
            finished = self.run(job, hub)
            count += 1
            self.runs_done += 1

    # ------------------------------------------------------------------------------------
    def _store_for(self, job: dict[str, Any], hub: Any) -> Any:
        key = ("direct", job["db"]) if job["direct"] else ("hub", job["launch"])
        if key != self._store_key:
            if self._store is not None:
                self._store.close()
            self._store = Store(job["db"]) if job["direct"] else HubStore(hub, job["db"])
            self._store_key = key
        return self._store

    def _backend_for(self, job: dict[str, Any]) -> Any:
        from agentsim.backends.base import create_backend, load_backend

        key = (str(job["spec"]), job.get("expected_sha256"))
        if key == self._backend_key:
            return self._backend
        self._drop_backend()
        backend = create_backend(job["spec"])
        prepare_on_node(backend, job.get("expected_sha256"))
        load_backend(backend, where=socket.gethostname())
        self._backend, self._backend_key = backend, key
        self.loads += 1
        return backend

    def _drop_backend(self) -> None:
        if self._backend is not None:
            backend, self._backend, self._backend_key = self._backend, None, None
            backend.close()

    def _meter_for(self, energy: str) -> Any:
        if energy not in self._meters:
            from agentsim.measure import make_meter

            self._meters[energy] = make_meter(energy)
        return self._meters[energy]

    def _scenario_for(self, job: dict[str, Any], run_id: int) -> Any:
        fingerprint = job["fingerprint"]
        if fingerprint in self._scenarios:
            return self._scenarios[fingerprint]
        from agentsim.scenario import scenario_from_ref

        scenario = scenario_from_ref(job["scenario_ref"])
        if scenario.fingerprint != fingerprint:
            raise AgentsimError(
                f"run {run_id}: the scenario rebuilt on node {socket.gethostname()} differs from the "
                "driver's (a different agentsim or generator there)",
                hint="install the same agentsim on every node of the cluster")
        if len(self._scenarios) >= SCENARIO_CACHE:
            self._scenarios.clear()
        self._scenarios[fingerprint] = scenario
        return scenario

    def run(self, job: dict[str, Any], hub: Any) -> dict[str, Any]:
        """One run. Returns its outcome for the hub: ``{"ok": True}``, or ``{"ok": False, ...}``
        with the message for a run that failed (a backend that cannot load, a model that
        differs, a backend that crashed) or was cancelled."""

        ray = require_ray()
        run_id = int(job["run_id"])
        outcome: dict[str, Any] = {"run_id": run_id, "spec": job["spec"]}
        store: Any = None
        last_post, last_cancel, cancelled = [0.0], [time.monotonic()], [False]

        def progress(p: Progress) -> None:
            now = time.monotonic()
            if p.status == "running" and 0 < p.hops_done < p.hops_total and now - last_post[0] < PROGRESS_EVERY_S:
                return
            last_post[0] = now
            hub.post.remote(asdict(p))

        def cancel() -> bool:
            if isinstance(store, HubStore):  # every store call brings the hub's word back
                cancelled[0] = store.stopped
                return cancelled[0]
            now = time.monotonic()
            if not cancelled[0] and now - last_cancel[0] >= CANCEL_POLL_S:
                last_cancel[0] = now
                cancelled[0] = bool(ray.get(hub.is_stopped.remote()))
            return cancelled[0]

        try:
            store = self._store_for(job, hub)
            scenario = self._scenario_for(job, run_id)
            backend = self._backend_for(job)
            meter = backend.meter_for(self._meter_for(job["energy"]))  # as in-process: a remote backend's is unavailable
            run = store.update_run(run_id, status="running", error=None, **run_fields_here(backend, meter))
            RunExecutor(store, backend, meter, progress, cancel).run(run, scenario)
            if isinstance(store, HubStore):
                store.flush()
            return {**outcome, "ok": True}
        except Exception as exc:  # noqa: BLE001 - every failure of a run is its outcome, not the worker's end
            if isinstance(exc, AgentsimError):
                message, hint = exc.message, exc.hint
            else:  # a crash inside the backend: report it, and load it afresh for the next run
                message, hint = f"run {run_id}: {type(exc).__name__}: {exc}", None
                self._drop_backend()
            kind = "interrupted" if cancelled[0] else "failed"
            try:
                if store is not None:
                    current = store.get_run(run_id)
                    if current.status not in ("failed", "interrupted", "complete"):
                        store.update_run(run_id, status=kind, error=message, pid=None)
            except AgentsimError:
                pass
            hub.post.remote({"run_id": run_id, "status": kind, "message": message})
            return {**outcome, "ok": False, "cancelled": cancelled[0], "type": type(exc).__name__,
                    "message": message, "hint": hint}

    def close(self) -> None:
        self._drop_backend()
        for meter in self._meters.values():
            meter.close()
        self._meters.clear()
        if self._store is not None:
            self._store.close()
            self._store, self._store_key = None, None
