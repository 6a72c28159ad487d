"""The Ray executor: every run of a launch is one Ray task; hops flow back to one store.

The driver creates every run row first (in the order the in-process executor would, so run ids
match), then submits one task per run, asking for the resources its backend needs. A task
prepares its model on its node (once per node, sha256-verified), loads its backend, records
the node it runs on (``machine``, ``host``, ``pid``) and runs the engine exactly as in-process.

Hops reach the store in one of two ways (``store=`` in the executor spec):

``driver``  the default for SQLite: an actor pinned to the driver's node owns the one
            :class:`~agentsim.store.Store`; a worker's store calls are calls on it, and a hop
            counts as recorded only when the actor has committed it (one transaction per hop,
            exactly as in-process).
``direct``  the default for a server database (PostgreSQL): every worker opens the database
            itself and commits its own hops; readers (``agentsim show``, the TUI) see them live.

A worker killed mid-run loses no committed hop: Ray re-runs the task (``max_retries``) and the
engine carries on from what is stored; the unique key on (run, instance, hop) forbids
duplicates. Progress from every task goes to the same actor, and the driver shows it in one
view (the ``progress`` callback, a rich progress bar in the CLI).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agentsim.engine import CancelFn, Cancelled, Progress, ProgressFn, RunExecutor, RunPlan
from agentsim.errors import AgentsimError, BackendError, MissingDependencyError
from agentsim.store import Run, RunRead, Store

from . import ExecutorSpec
from .node import expected_model_sha256, prepare_on_node, task_resources

__all__ = ["run_on_ray", "require_ray", "HubStore"]

#: a worker posts progress at most this often per run (and always at its start and end)
PROGRESS_EVERY_S = 0.1


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("--executor ray", "ray", ["ray"]) from None
    return ray


# --------------------------------------------------------------------------------------------
# the actor beside the driver


class _Hub:
    """Owns the store when the driver commits (``store=driver``), and collects progress."""

    def __init__(self, db: str | None) -> None:
        self.store = Store(db) if db is not None else None
        self.latest: dict[int, dict[str, Any]] = {}

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        assert self.store is not None
        return getattr(self.store, name)(*args, **kwargs)

    def post(self, progress: dict[str, Any]) -> None:
        self.latest[int(progress["run_id"])] = progress

    def poll(self) -> list[dict[str, Any]]:
        out = list(self.latest.values())
        self.latest.clear()
        return out

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


class HubStore:
    """What a worker's engine sees as its store when the driver commits: every call is a call
    on the hub actor, answered once it is done (a hop is recorded when it is committed)."""

    _METHODS = frozenset({"hops", "instances", "record_hop", "ensure_instance", "finish_instance",
                          "update_run", "get_run"})

    def __init__(self, hub: Any, db: str) -> None:
        self._hub = hub
        self.db = db

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in self._METHODS:
            raise AttributeError(name)
        ray = require_ray()

        def call(*args: Any, **kwargs: Any) -> Any:
            return ray.get(self._hub.call.remote(name, args, kwargs))

        return call

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------------------------
# the task


def _run_task(payload: dict[str, Any]) -> dict[str, Any]:
    """One run on a worker. Returns ``{"ok": True, "run": ...}`` or, for a user-facing error
    (a backend that cannot load, a model that differs), ``{"ok": False, ...}``; a crash of the
    worker itself is Ray's to retry."""
    from agentsim.backends.base import create_backend
    from agentsim.hardware import machine_info
    from agentsim.measure import make_meter
    from agentsim.scenario import scenario_from_ref

    hub = payload["hub"]
    run_id = int(payload["run_id"])
    store: Any = Store(payload["db"]) if payload["direct"] else HubStore(hub, payload["db"])
    backend = meter = None
    last_post = [0.0]

    def progress(p: Progress) -> None:
        now = time.monotonic()
        if p.status == "running" and 0 < p.hops_done < p.hops_total and now - last_post[0] < PROGRESS_EVERY_S:
            return
        last_post[0] = now
        hub.post.remote(asdict(p))

    try:
        scenario = scenario_from_ref(payload["scenario_ref"])
        if scenario.fingerprint != payload["fingerprint"]:
            raise AgentsimError(
                f"run {run_id}: the scenario rebuilt on node {socket.gethostname()} differs from the "
                "driver's (a different agentsim or generator there)",
                hint="install the same agentsim on every node of the cluster")
        backend = create_backend(payload["spec"])
        prepare_on_node(backend, payload.get("expected_sha256"))
        try:
            backend.load()
        except AgentsimError:
            raise
        except Exception as exc:  # noqa: BLE001 - a backend's own crash while loading is reported
            raise BackendError(f"backend {payload['spec']} failed to load on {socket.gethostname()}: "
                               f"{type(exc).__name__}: {exc}") from None
        meter = make_meter(payload["energy"])
        run = store.update_run(run_id, status="running", error=None, **backend.info().run_fields(),
                               machine=machine_info(), energy_meter=meter.describe(),
                               pid=os.getpid(), host=socket.gethostname())
        done = RunExecutor(store, backend, meter, progress, None).run(run, scenario)
        return {"ok": True, "run": done.model_dump()}
    except AgentsimError as exc:
        try:
            current = store.get_run(run_id)
            if current.status not in ("failed", "interrupted", "complete"):
                store.update_run(run_id, status="failed", error=str(exc), pid=None)
        except AgentsimError:
            pass
        hub.post.remote({"run_id": run_id, "status": "failed", "message": str(exc)})
        return {"ok": False, "type": type(exc).__name__, "message": exc.message, "hint": exc.hint}
    finally:
        if backend is not None:
            backend.close()
        if meter is not None:
            meter.close()
        store.close()


# --------------------------------------------------------------------------------------------
# the driver


def _init_ray(ray: Any, executor: ExecutorSpec) -> bool:
    """Connect (or start a local Ray); True when this call started it (and so stops it)."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False,
                              "include_dashboard": False}
    try:
        if executor.address:
            ray.init(address=executor.address, **kwargs)
        else:
            ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise AgentsimError(f"cannot connect to Ray at {executor.address or '(a new local cluster)'}: {exc}",
                            hint="start the head with 'ray start --head', then --executor ray,address=auto "
                                 "(or ray://HEAD:10001)") from None
    return True


def _placeholder_run(plan: RunPlan, spec: str) -> Run:
    """The run's row before its task starts: what the driver knows (the worker adds the
    backend's own fields and the node it runs on). ``pid``/``host`` are the driver's until then:
    the run reads as running while the driver lives, and interrupted if it dies first."""
    sc = plan.scenario
    return Run(scenario=sc.name, scenario_ref=sc.ref, scenario_fingerprint=sc.fingerprint, params=plan.params,
               backend=spec, backend_name=spec.split(",")[0].split(":")[0], mode=plan.mode, seed=plan.seed,
               n_instances=plan.instances, hops_per_instance=len(sc.order), launch_id=plan.launch_id,
               batch_size=plan.batch_size, status="running", pid=os.getpid(), host=socket.gethostname())


def _error_from(result: dict[str, Any]) -> AgentsimError:
    exc = AgentsimError(result["message"], hint=result.get("hint"))
    return exc


def run_on_ray(
    executor: ExecutorSpec,
    *,
    store: Store,
    backends: Sequence[Any],
    plans: Sequence[RunPlan],
    energy: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    keep_going: bool = True,
    on_run_created: Callable[[RunRead], None] | None = None,
    poll_s: float = 0.1,
) -> tuple[list[RunRead], list[tuple[str, AgentsimError]]]:
    """Every plan against every (created, unloaded) backend, one Ray task per run.

    Returns (runs in launch order, failures as (backend spec, error)). ``cancel`` is polled on
    the driver; when it answers True the tasks are cancelled (their runs read interrupted and
    resume with ``agentsim run --resume``) and :class:`Cancelled` is raised.
    """
    ray = require_ray()
    started = _init_ray(ray, executor)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    hub = None
    try:
        server_db = not store.url.startswith("sqlite")
        direct = executor.store == "direct" or (executor.store is None and server_db)
        if direct and not server_db and executor.address:
            raise AgentsimError("--executor ray,store=direct with a SQLite file: the workers of a "
                                "cluster cannot share one SQLite file",
                                hint="use store=driver (the default), or a PostgreSQL --db")
        db = store.db if "://" in store.db else str(Path(store.db).resolve())
        node = ray.get_runtime_context().get_node_id()
        hub = ray.remote(num_cpus=0, max_restarts=0)(_Hub).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False),
        ).remote(None if direct else db)
        task = ray.remote(_run_task)
        cluster_gpus = float(ray.cluster_resources().get("GPU", 0) or 0)

        runs: list[RunRead] = []
        refs: dict[Any, tuple[int, str]] = {}
        for backend in backends:
            spec = str(backend.spec)
            resources = task_resources(backend, executor, cluster_gpus)
            expected = expected_model_sha256(backend)
            for plan in plans:
                run = store.create_run(_placeholder_run(plan, spec))
                runs.append(run)
                if on_run_created is not None:
                    on_run_created(run)
                payload = {"run_id": run.id, "spec": spec, "scenario_ref": plan.scenario.ref,
                           "fingerprint": plan.scenario.fingerprint, "db": db, "direct": direct,
                           "hub": hub, "energy": energy, "expected_sha256": expected}
                ref = task.options(max_retries=executor.max_retries, retry_exceptions=False,
                                   **resources).remote(payload)
                refs[ref] = (run.id, spec)

        failures: list[tuple[str, AgentsimError]] = []
        pending = list(refs)

        def drain() -> None:
            if progress is None:
                return
            for p in ray.get(hub.poll.remote()):
                if "hops_total" in p:
                    progress(Progress(**p))

        while pending:
            if cancel is not None and cancel():
                for ref in pending:
                    ray.cancel(ref)
                _wait_cancelled(ray, pending)
                drain()
                raise Cancelled("launch cancelled; resume its runs with agentsim run --resume RUN_ID")
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=poll_s)
            drain()
            for ref in ready:
                run_id, spec = refs[ref]
                try:
                    result = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - the worker died more often than retried
                    result = {"ok": False, "message": f"run {run_id} on Ray: {type(exc).__name__}: "
                                                      f"{str(exc).splitlines()[0] if str(exc) else ''}",
                              "hint": f"resume it: agentsim run --resume {run_id}"}
                    _mark(store, run_id, "interrupted", result["message"])
                if not result["ok"]:
                    failures.append((spec, _error_from(result)))
                    if not keep_going:
                        for other in pending:
                            ray.cancel(other)
                        _wait_cancelled(ray, pending)
                        pending = []
        drain()
        out = [store.get_run(r.id) for r in runs]
        seen: set[str] = set()
        unique = [(s, e) for s, e in failures if not (s in seen or seen.add(s))]  # type: ignore[func-returns-value]
        return out, unique
    finally:
        if hub is not None:
            try:
                ray.get(hub.close.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - the actor's store is closed with the actor anyway
                pass
            ray.kill(hub)
        if started:
            ray.shutdown()


def _wait_cancelled(ray: Any, refs: Sequence[Any]) -> None:
    for ref in refs:
        try:
            ray.get(ref, timeout=60)
        except Exception:  # noqa: BLE001 - a cancelled task raises; that is what was asked
            pass


def _mark(store: Store, run_id: int, status: str, error: str) -> None:
    try:
        run = store.get_run(run_id)
        if run.status == "running":
            store.update_run(run_id, status=status, error=error, pid=None)
    except AgentsimError:
        pass
