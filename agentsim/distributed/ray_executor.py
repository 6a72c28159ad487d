"""The Ray executor: the runs of a launch spread over a pool of long-lived worker actors.

The driver creates every run row first (in the order the in-process executor would, so run ids
match) and queues them in a :class:`~agentsim.distributed.worker.Hub` actor pinned to its node,
one queue per *resource shape* (what a run's backend asks Ray for: a GPU backend a GPU, a CPU
llama run its threads, a simulation one CPU). For each shape it starts (or reuses) a small pool
of :class:`~agentsim.distributed.worker.RunWorker` actors, one per slot the cluster has for that
shape (at most one per run), spread over the nodes. Each worker pulls runs from the hub until its
queue is empty, keeping the imported modules, its loaded backend (by spec and model sha256),
meter and store between runs, so a run costs its hops and not a process, an import and a
backend load. A worker prepares a model on its node once (sha256-verified) and records the node
it runs on in every run (``machine``, ``host``, ``pid``).

Hops reach the store in one of two ways (``store=`` in the executor spec):

``driver``  the default for SQLite: the hub owns the one :class:`~agentsim.store.Store`; a
            worker's store calls are calls on it, and a hop counts as recorded only when the hub
            has committed it (one transaction per hop, exactly as in-process).
``direct``  the default for a server database (PostgreSQL): every worker opens the database
            itself and commits its own hops; readers (``agentsim show``, the TUI) see them live.

A worker killed mid-run loses no committed hop: Ray restarts the actor and re-runs its
``serve`` call, and the new incarnation resumes the run it held from what is stored (the unique
key on run, instance and hop forbids duplicates); after ``max_retries`` deaths the run is given
up and reads interrupted (``agentsim run --resume``). Progress from every worker goes to the hub
and the driver shows it in one view (the ``progress`` callback, a rich progress bar in the CLI).

The pool outlives the launch by ``keep_s`` seconds (default 10) when the driver brought its own
Ray connection (``ray.init`` before the launch, as a notebook, a benchmark or a test does), so
the next launch finds its workers warm; a launch that started Ray itself stops it at its end.
A kept pool holds its CPUs and GPUs while it waits: another driver's launch on the same cluster
waits for them (at most ``keep_s``); ``keep_s=0`` or :func:`release_pool` gives them back at once.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentsim.engine import CancelFn, Cancelled, Progress, ProgressFn, RunPlan
from agentsim.errors import AgentsimError
from agentsim.store import Run, RunRead, Store

from . import ExecutorSpec
from .node import expected_model_sha256, task_resources
from .worker import Hub, HubStore, RunWorker, require_ray

if TYPE_CHECKING:
    from agentsim.launch import RunControl

__all__ = ["run_on_ray", "require_ray", "HubStore", "release_pool", "shape_key", "pool_sizes"]


def shape_key(resources: dict[str, float]) -> str:
    """``{"num_cpus": 1.0, "num_gpus": 0.0}`` -> ``"cpu1-gpu0"`` (one pool and queue per shape)."""
    return f"cpu{resources['num_cpus']:g}-gpu{resources['num_gpus']:g}"


def pool_sizes(needs: dict[str, tuple[dict[str, float], int]],
               nodes: Sequence[dict[str, float]]) -> dict[str, int]:
    """How many workers each shape gets: one per slot the alive ``nodes`` (their total
    resources, ``{"CPU": 2, "GPU": 0}``) have for it, at most one per run; 0 when no node can hold
    one (the shape is infeasible on this cluster)."""
    out: dict[str, int] = {}
    for key, (res, runs) in needs.items():
        cpus, gpus = res["num_cpus"], res["num_gpus"]
        slots = 0.0
        for node in nodes:
            have_c, have_g = float(node.get("CPU", 0) or 0), float(node.get("GPU", 0) or 0)
            fit_c = math.inf if cpus <= 0 else math.floor(have_c / cpus + 1e-9)
            fit_g = math.inf if gpus <= 0 else math.floor(have_g / gpus + 1e-9)
            slots += min(fit_c, fit_g)
        out[key] = int(min(slots, runs))
    return out


# --------------------------------------------------------------------------------------------
# the pool of workers (kept between launches of one driver)


@dataclass
class _Pool:
    job: str  # the Ray job (one ray.init) whose actors these are
    workers: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)  # shape -> (key, actor)
    hub: Any = None  # the hub actor, on the driver's node, reset for every launch
    timer: threading.Timer | None = None
    counter: int = 0

    def hub_for(self, ray: Any, db: str | None, max_retries: int) -> Any:
        if self.hub is None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            node = ray.get_runtime_context().get_node_id()
            self.hub = ray.remote(num_cpus=0, max_restarts=0)(Hub).options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False)).remote()
        ray.get(self.hub.reset.remote(db, max_retries))
        return self.hub

    def add(self, ray: Any, shape: str, res: dict[str, float], n: int) -> None:
        cls = ray.remote(RunWorker)
        have = self.workers.setdefault(shape, [])
        while len(have) < n:
            self.counter += 1
            key = f"{shape}#{self.counter}"
            actor = cls.options(num_cpus=res["num_cpus"], num_gpus=res["num_gpus"], max_restarts=-1,
                                max_task_retries=-1, scheduling_strategy="SPREAD").remote(key, shape)
            have.append((key, actor))

    def kill(self, ray: Any, shape: str | None = None) -> None:
        """Stop the workers of ``shape`` (None: every worker, and the hub)."""
        if shape is None and self.hub is not None:
            hub, self.hub = self.hub, None
            try:
                ray.get(hub.close.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - its store is closed with the actor anyway
                pass
            ray.kill(hub)
        shapes = [shape] if shape is not None else list(self.workers)
        for s in shapes:
            workers = self.workers.pop(s, [])
            try:
                closing = [a.close.remote() for _, a in workers]
                if closing:
                    ray.wait(closing, num_returns=len(closing), timeout=10)
            except Exception:  # noqa: BLE001 - a dead worker has nothing left to close
                pass
            for _, actor in workers:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass


_LOCK = threading.Lock()
_KEPT: _Pool | None = None  # the idle pool, waiting for this driver's next launch
_ACTIVE = [0]  # launches of this driver running now


def _job_id(ray: Any) -> str:
    """This driver's connection: a new ``ray.init`` (a new cluster, or the same one again) is
    another job, whose actors are not the old ones."""
    ctx = ray.get_runtime_context()
    return f"{ctx.gcs_address}/{ctx.get_node_id()}/{ctx.get_job_id()}"


def _checkout(ray: Any) -> _Pool:
    """The kept pool when it belongs to this Ray job, else a new, empty one."""
    global _KEPT
    job = _job_id(ray)
    with _LOCK:
        pool, _KEPT = _KEPT, None
        _ACTIVE[0] += 1
    if pool is not None:
        if pool.timer is not None:
            pool.timer.cancel()
            pool.timer = None
        if pool.job == job:
            return pool
    return _Pool(job)


def _keep(ray: Any, pool: _Pool, keep_s: float) -> None:
    """Keep ``pool`` for the next launch; release it after ``keep_s`` idle seconds. While another
    launch of this driver is running (it made its own pool), release it now: its resources
    are what that launch waits for."""
    global _KEPT
    with _LOCK:
        busy = _ACTIVE[0] > 0
        old, _KEPT = _KEPT, (None if busy else pool)
    for other in ([old] if old is not None else []) + ([pool] if busy else []):
        if other.timer is not None:
            other.timer.cancel()
        other.kill(ray)
    if busy:
        return

    def expire() -> None:
        global _KEPT
        with _LOCK:
            if _KEPT is not pool:
                return
            _KEPT = None
        try:
            if ray.is_initialized():
                pool.kill(ray)
        except Exception:  # noqa: BLE001 - Ray shut down meanwhile: the actors went with it
            pass

    pool.timer = threading.Timer(keep_s, expire)
    pool.timer.daemon = True
    pool.timer.start()


def release_pool() -> None:
    """Stop the kept worker pool now (its actors give their CPUs and GPUs back to the cluster)."""
    global _KEPT
    with _LOCK:
        pool, _KEPT = _KEPT, None
    if pool is None:
        return
    if pool.timer is not None:
        pool.timer.cancel()
    ray = require_ray()
    if ray.is_initialized() and _job_id(ray) == pool.job:
        pool.kill(ray)


def _alive(ray: Any, pool: _Pool) -> None:
    """Drop the kept workers that no longer answer (a node lost since the last launch)."""
    for shape, workers in list(pool.workers.items()):
        if not workers:
            continue
        pings = {a.ping.remote(): (k, a) for k, a in workers}
        ready, _ = ray.wait(list(pings), num_returns=len(pings), timeout=10)
        ok = []
        for ref in ready:
            try:
                ray.get(ref)
                ok.append(pings[ref])
            except Exception:  # noqa: BLE001 - a dead actor
                pass
        for key, actor in workers:
            if (key, actor) not in ok:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        pool.workers[shape] = [w for w in workers if w in ok]


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
    """The run's row before a worker takes it: what the driver knows (the worker adds the
    backend's own fields and the node it runs on). ``pid``/``host`` are the driver's until then:
    the run reads as running while the driver lives, and interrupted if it dies first."""
    return plan.row(spec, status="running", pid=os.getpid(), host=socket.gethostname())


def _alive_nodes(ray: Any) -> list[dict[str, float]]:
    return [dict(n.get("Resources", {})) for n in ray.nodes() if n.get("Alive")]


def _infeasible(spec: str, res: dict[str, float], nodes: Sequence[dict[str, float]]) -> AgentsimError:
    largest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})
    return AgentsimError(
        f"runs of {spec} ask Ray for {res['num_cpus']:g} CPUs and {res['num_gpus']:g} GPUs; no node of the "
        f"cluster has that (the largest has {largest.get('CPU', 0):g} CPUs, {largest.get('GPU', 0):g} GPUs)",
        hint="ask for less with --executor ray,num_cpus=N,num_gpus=N (or n_threads= in the spec), "
             "or add a node that has it")


def run_on_ray(
    executor: ExecutorSpec,
    *,
    store: Store,
    backends: Sequence[Any],
    plans: Sequence[RunPlan],
    energy: str,
    control: RunControl,
    poll_s: float = 0.2,
) -> tuple[list[RunRead], list[tuple[str, AgentsimError]]]:
    """Every plan against every (created, unloaded) backend, on a pool of Ray workers.

    Returns (runs in launch order, failures as (backend spec, error)). ``control.cancel`` is polled on
    the driver; when it answers True the workers stop at their next hop (their runs read
    interrupted and resume with ``agentsim run --resume``) and :class:`Cancelled` is raised.
    """
    ray = require_ray()
    started = _init_ray(ray, executor)
    launch: _RayLaunch | None = None
    clean = False
    try:
        launch = _RayLaunch(ray, executor, store, progress=control.progress, keep_going=control.keep_going)
        launch.queue(backends, plans, energy, control.on_run_created)
        launch.start_workers()
        launch.wait(control.cancel, poll_s)
        out = launch.results()
        clean = True
        return out
    finally:
        if launch is not None:
            launch.release(started=started, clean=clean)
        if started:
            ray.shutdown()


class _RayLaunch:
    """One launch on Ray, from the driver: its hub and worker pool, its runs queued by resource
    shape, the failures reported back."""

    def __init__(self, ray: Any, executor: ExecutorSpec, store: Store, *, progress: ProgressFn | None,
                 keep_going: bool) -> None:
        self.ray, self.executor, self.store = ray, executor, store
        self.progress, self.keep_going = progress, keep_going
        server_db = not store.url.startswith("sqlite")
        self.direct = executor.store == "direct" or (executor.store is None and server_db)
        if self.direct and not server_db and executor.address:
            raise AgentsimError("--executor ray,store=direct with a SQLite file: the workers of a "
                                "cluster cannot share one SQLite file",
                                hint="use store=driver (the default), or a PostgreSQL --db")
        self.db = store.db if "://" in store.db else str(Path(store.db).resolve())
        self.pool = _checkout(ray)
        self.hub: Any = None
        try:
            self.hub = self.pool.hub_for(ray, None if self.direct else self.db, executor.max_retries)
        except BaseException:
            self.release(started=True, clean=False)
            raise
        self.runs: list[RunRead] = []
        self.failures: list[tuple[str, AgentsimError]] = []
        self.queues: dict[str, list[dict[str, Any]]] = {}
        self.shapes: dict[str, dict[str, float]] = {}
        self.serving: dict[Any, tuple[str, str]] = {}  # serve ref -> (shape, worker key)
        self.stopping = False

    # setting up ---------------------------------------------------------------------------
    def queue(self, backends: Sequence[Any], plans: Sequence[RunPlan], energy: str,
              on_run_created: Callable[[RunRead], None] | None) -> None:
        """Create every run row (in the in-process executor's order, so run ids match) and
        queue it under its backend's resource shape."""
        cluster_gpus = float(self.ray.cluster_resources().get("GPU", 0) or 0)
        launch_key = f"{os.getpid()}-{time.time_ns()}"
        for backend in backends:
            spec = str(backend.spec)
            resources = task_resources(backend, self.executor, cluster_gpus)
            shape = shape_key(resources)
            self.shapes[shape] = resources
            expected = expected_model_sha256(backend)
            for plan in plans:
                run = self.store.create_run(_placeholder_run(plan, spec))
                self.runs.append(run)
                if on_run_created is not None:
                    on_run_created(run)
                self.queues.setdefault(shape, []).append(
                    {"run_id": run.id, "spec": spec, "scenario_ref": plan.scenario.ref,
                     "fingerprint": plan.scenario.fingerprint, "db": self.db, "direct": self.direct,
                     "launch": launch_key, "energy": energy, "expected_sha256": expected})

    def start_workers(self) -> None:
        """Fail the runs no node can hold; hand the rest to the hub; size the pool to the
        cluster's slots per shape and start every worker's ``serve``."""
        ray, pool = self.ray, self.pool
        nodes = _alive_nodes(ray)
        sizes = pool_sizes({s: (self.shapes[s], len(q)) for s, q in self.queues.items()}, nodes)
        for shape in [s for s, n in sizes.items() if n == 0]:
            for job in self.queues.pop(shape):
                exc = _infeasible(job["spec"], self.shapes[shape], nodes)
                _mark(self.store, job["run_id"], "failed", str(exc))
                self.failures.append((job["spec"], exc))
        for shape, jobs in self.queues.items():
            ray.get(self.hub.add.remote(shape, jobs))
        for shape in [s for s in pool.workers if s not in self.queues]:
            pool.kill(ray, shape)  # shapes this launch does not need give their resources back
        _alive(ray, pool)
        for shape in self.queues:
            pool.add(ray, shape, self.shapes[shape], sizes[shape])
            for _key, extra in pool.workers[shape][sizes[shape]:]:  # more than this launch can use
                ray.kill(extra, no_restart=True)
            pool.workers[shape] = pool.workers[shape][: sizes[shape]]
            for key, actor in pool.workers[shape]:
                self.serving[actor.serve.remote(self.hub)] = (shape, key)

    # running ------------------------------------------------------------------------------
    def stop(self) -> None:
        if not self.stopping:
            self.stopping = True
            self.ray.get(self.hub.stop.remote())

    def drain(self) -> None:
        """Show the workers' progress; record the outcomes of the runs they finished."""
        got, outcomes = self.ray.get(self.hub.poll.remote())
        if self.progress is not None:
            for p in got:
                if "hops_total" in p:
                    self.progress(Progress(**p))
        for out in outcomes:
            if out.get("lost"):
                _mark(self.store, int(out["run_id"]), "interrupted", out["message"])
            elif not out["ok"]:  # the worker marks it; this covers a store it could not open
                _mark(self.store, int(out["run_id"]), "interrupted" if out.get("cancelled") else "failed",
                      out["message"])
            if not out["ok"] and not out.get("cancelled"):
                self.failures.append((out["spec"], AgentsimError(out["message"], hint=out.get("hint"))))
                if not self.keep_going:
                    self.stop()

    def lost(self, run_id: int, spec: str, message: str) -> None:
        _mark(self.store, run_id, "interrupted", message)
        self.failures.append((spec, AgentsimError(message, hint=f"resume it: agentsim run --resume {run_id}")))

    def wait(self, cancel: CancelFn | None, poll_s: float) -> None:
        """Until every worker's ``serve`` returned (or the launch is cancelled)."""
        ray = self.ray
        pending = list(self.serving)
        while pending:
            if cancel is not None and cancel():
                self._cancel(pending)
            ready, pending = ray.wait(pending, num_returns=1, timeout=poll_s)
            self.drain()
            for ref in ready:
                self._served(ref, pending)
        self.drain()
        _mark_left(ray, self.hub, self.store, "not started: the launch stopped at its first failure")

    def _cancel(self, pending: list[Any]) -> None:
        self.stop()
        self.ray.wait(pending, num_returns=len(pending), timeout=60)
        self.drain()
        _mark_left(self.ray, self.hub, self.store, "not started: the launch was cancelled")
        for run in self.runs:
            _mark(self.store, run.id, "interrupted", "the launch was cancelled")
        raise Cancelled("launch cancelled; resume its runs with agentsim run --resume RUN_ID")

    def _served(self, ref: Any, pending: list[Any]) -> None:
        """A worker's ``serve`` returned: a worker gone for good loses the run it held; the
        shape's last worker leaves what is still queued with nobody."""
        ray, pool = self.ray, self.pool
        shape, key = self.serving[ref]
        try:
            ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - the worker is gone for good
            pool.workers[shape] = [w for w in pool.workers[shape] if w[0] != key]
            held = ray.get(self.hub.abandon.remote(key))
            if held is not None:
                self.lost(int(held["run_id"]), held["spec"],
                          f"run {held['run_id']} on Ray: its worker is gone ({type(exc).__name__})")
        if any(self.serving[r][0] == shape for r in pending):
            return
        if not self.stopping:
            for job in ray.get(self.hub.left.remote(shape)):
                self.lost(int(job["run_id"]), job["spec"], f"run {job['run_id']}: no Ray worker left to run it")
        if pending:
            pool.kill(ray, shape)  # give its resources to the shapes still running

    # the end ------------------------------------------------------------------------------
    def results(self) -> tuple[list[RunRead], list[tuple[str, AgentsimError]]]:
        out = [self.store.get_run(r.id) for r in self.runs]
        seen: set[str] = set()
        unique = [(s, e) for s, e in self.failures if not (s in seen or seen.add(s))]  # type: ignore[func-returns-value]
        return out, unique

    def release(self, *, started: bool, clean: bool) -> None:
        """Keep the pool warm for the driver's next launch, or stop it (a launch that started
        Ray, ``keep_s=0``, or a cancelled or broken launch leaves no worker behind)."""
        ray = self.ray
        with _LOCK:
            _ACTIVE[0] -= 1
        if started or self.executor.keep_s <= 0 or not clean:
            self.pool.kill(ray)
            return
        try:
            ray.get(self.hub.close.remote(), timeout=30)
        except Exception:  # noqa: BLE001 - kept without its store either way
            pass
        _keep(ray, self.pool, self.executor.keep_s)


def _mark_left(ray: Any, hub: Any, store: Store, why: str) -> None:
    for job in ray.get(hub.left.remote()):
        _mark(store, int(job["run_id"]), "interrupted", why)


def _mark(store: Store, run_id: int, status: str, error: str) -> None:
    try:
        run = store.get_run(run_id)
        if run.status == "running":
            store.update_run(run_id, status=status, error=error, pid=None)
    except AgentsimError:
        pass
