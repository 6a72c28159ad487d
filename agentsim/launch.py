"""The one path from a request to stored runs, used by the CLI, the Python API, the demo and the TUI.

A :class:`Launch` is what a user asks for: scenarios (files, bundled names, families) x parameter
points x backend specs x modes x batch sizes, with a number of instances and a seed. This module
expands the sweeps (in one place), resolves the scenarios, creates each backend once, records a
run per (scenario, params, backend, mode, batch) and hands it to the engine. Every run of one
launch shares its ``launch_id``; every precision of one launch sees the same instances.

Sweep syntax, shared by every front end:

``--param depth=1..6``                 an inclusive integer range
``--param distractors='4|16'``         a list of values
``-b 'llama:{m1,m2}@{f16,q4_0}'``      a set of backend specs (one run per combination)
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .engine import MODES, CancelFn, Cancelled, ProgressFn, RunExecutor, RunPlan, run_fields_here
from .errors import AgentsimError, ScenarioError, StoreError
from .measure import EnergyMeter, UnavailableMeter, make_meter
from .scenario import Scenario, resolve_scenario, scenario_from_ref
from .store import RunRead, Store, effective_status

__all__ = [
    "Launch",
    "LaunchResult",
    "RunControl",
    "parse_params",
    "params_points",
    "expand_backend_specs",
    "expand_modes",
    "parse_batch_sizes",
    "run_launch",
    "execute",
    "resume_run",
]


# --------------------------------------------------------------------------------------------
# sweeps


def parse_params(items: Iterable[str] | None) -> list[dict[str, Any]]:
    """``["depth=1..3", "width=2"]`` -> one params dict per point of the sweep.

    ``a..b`` is an inclusive integer range and ``x|y|z`` a list: both sweep.
    """
    axes: list[tuple[str, list[Any]]] = []
    for item in items or []:
        if "=" not in item:
            raise ScenarioError(f"--param {item!r}: expected KEY=VALUE (e.g. depth=3 or depth=1..6)")
        key, _, value = item.partition("=")
        key = key.strip()
        value = value.strip()
        if ".." in value:
            lo, _, hi = value.partition("..")
            try:
                a, b = int(lo), int(hi)
            except ValueError:
                raise ScenarioError(f"--param {item!r}: a range is two integers, e.g. 1..6") from None
            if b < a:
                raise ScenarioError(f"--param {item!r}: empty range")
            axes.append((key, list(range(a, b + 1))))
        elif "|" in value:
            axes.append((key, [_literal(v) for v in value.split("|")]))
        else:
            axes.append((key, [_literal(value)]))
    return _product(axes)


def params_points(params: Mapping[str, Any] | Iterable[str] | None) -> list[dict[str, Any]]:
    """The sweep's points from CLI strings or from a mapping whose list/range values sweep."""
    if params is None:
        return [{}]
    if isinstance(params, Mapping):
        axes = [(k, list(v) if isinstance(v, (list, tuple, range)) else [v]) for k, v in params.items()]
        return _product(axes)
    return parse_params(list(params))


def _product(axes: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = [{}]
    for key, values in axes:
        points = [{**p, key: v} for p in points for v in values]
    return points


def _literal(text: str) -> Any:
    t = text.strip()
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return t


_BRACES = re.compile(r"\{([^{}]*)\}")


def expand_backend_specs(specs: Iterable[str]) -> list[str]:
    """``llama:{a,b}@{f16,q4_0}`` -> the four specs; specs without braces pass unchanged."""
    out: list[str] = []
    for spec in specs:
        parts = _BRACES.split(spec)
        # parts alternate: literal, group, literal, group, ...
        choices = [[p] if i % 2 == 0 else [c.strip() for c in p.split(",")] for i, p in enumerate(parts)]
        if any(not c for group in choices[1::2] for c in group):
            raise AgentsimError(f"backend spec {spec!r}: an empty choice inside {{...}}",
                                hint="e.g. -b 'llama:{qwen2.5-coder-0.5b,smollm2}@{f16,q4_0}'")
        for combo in itertools.product(*choices):
            out.append("".join(combo))
    return list(dict.fromkeys(out))


def parse_batch_sizes(value: int | str | Iterable[int | str] | None) -> tuple[int, ...]:
    """``--batch 1,4,16`` (or 8, or [1, 8]) -> the batch sizes of the sweep, checked, in order.

    Each size gives one run; a size B advances B instances together and sends their ready hops
    to the backend as one call.
    """
    if value is None:
        return (1,)
    if isinstance(value, bool):
        raise AgentsimError(f"batch size {value!r}: must be a whole number >= 1")
    items: list[Any]
    if isinstance(value, (int, float)):
        items = [value]
    elif isinstance(value, str):
        items = [v for v in (p.strip() for p in value.split(",")) if v]
    else:
        items = []
        for v in value:
            items.extend(parse_batch_sizes(v) if isinstance(v, str) else [v])
    if not items:
        raise AgentsimError("--batch: no batch size given", hint="e.g. --batch 8 or --batch 1,4,16")
    out: list[int] = []
    for v in items:
        try:
            b = int(v) if not isinstance(v, (bool, float)) else None
        except (TypeError, ValueError):
            b = None
        if b is None or b < 1 or (isinstance(v, str) and not v.strip().isdigit()):
            raise AgentsimError(f"batch size {v!r}: must be a whole number >= 1",
                                hint="e.g. --batch 8 or --batch 1,4,16")
        out.append(b)
    return tuple(dict.fromkeys(out))


def expand_modes(mode: str | Sequence[str]) -> tuple[str, ...]:
    """``"both"`` -> free and oracle; a mode or a list of modes, checked."""
    modes = [mode] if isinstance(mode, str) else list(mode)
    out: list[str] = []
    for m in modes:
        out.extend(MODES if m == "both" else [m])
    for m in out:
        if m not in MODES:
            raise AgentsimError(f"unknown mode {m!r}", hint="free, oracle or both")
    return tuple(dict.fromkeys(out))


# --------------------------------------------------------------------------------------------
# the request


@dataclass
class Launch:
    """One request: what to run. Expanded by :meth:`plans`, run by :func:`run_launch`.

    ``params`` apply to every scenario that takes parameters (families, and files that name a
    family). With ``strict_params`` a hand-written scenario file given parameters is an error
    (the CLI and the API); without it (the TUI's form) such a file runs as it is.
    """

    scenarios: Sequence[str | Path | Scenario]
    backends: Sequence[str]
    params: Mapping[str, Any] | Sequence[str] | None = None
    modes: str | Sequence[str] = ("free",)
    instances: int = 10
    seed: int = 0
    batch_sizes: int | str | Sequence[int] = (1,)
    energy: str = "auto"
    strict_params: bool = True
    launch_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _resolved: list[Scenario] | None = field(default=None, init=False, repr=False, compare=False)
    #: after the runs, score every run that has a reference run (the top rung of its model,
    #: scenario and mode) teacher-forced against it (agentsim.fidelity): KLD, same top token, delta-p
    fidelity: bool = False
    #: where the runs execute: None or "in-process" (here, one after the other), or
    #: "ray[,address=...][,num_gpus=..][,num_cpus=..]" (runs spread over a pool of long-lived Ray workers; agentsim.distributed)
    executor: str | Any = None

    def check(self) -> None:
        if not self.scenarios:
            raise AgentsimError("no scenario given", hint="agentsim run SCENARIO --backend SPEC (agentsim scenarios list)")
        if not self.backends:
            raise AgentsimError("no --backend given", hint="e.g. --backend noisy,p=0.2 or --backend oracle")
        if self.instances < 1:
            raise AgentsimError("--instances must be at least 1")
        self.batch_sizes = parse_batch_sizes(self.batch_sizes)
        expand_modes(self.modes)
        from .distributed import parse_executor

        self.executor = parse_executor(self.executor)

    def resolved_scenarios(self) -> list[Scenario]:
        """Every scenario x parameter point, resolved once (a bad file or parameter raises here)."""
        if self._resolved is not None:
            return self._resolved
        points = params_points(self.params)
        out: list[Scenario] = []
        for ref in self.scenarios:
            if isinstance(ref, Scenario):
                out.append(ref)
                continue
            for point in points:
                if point and not self.strict_params and not _takes_params(ref):
                    out.append(resolve_scenario(ref))
                    break
                out.append(resolve_scenario(ref, point or None))
        self._resolved = out
        return out

    def backend_specs(self) -> list[str]:
        return expand_backend_specs(self.backends)

    def plans(self, scenarios: Sequence[Scenario] | None = None) -> list[RunPlan]:
        """The runs one backend gets, in order: scenario x mode x batch size."""
        scenarios = self.resolved_scenarios() if scenarios is None else scenarios
        return [
            RunPlan(scenario=sc, mode=m, instances=self.instances, seed=self.seed,
                    params=dict(sc.ref.get("params", {})), launch_id=self.launch_id, batch_size=b)
            for sc in scenarios
            for m in expand_modes(self.modes)
            for b in parse_batch_sizes(self.batch_sizes)
        ]


def _takes_params(ref: str | Path) -> bool:
    """Whether a scenario reference accepts parameters (a family, or a file naming one)."""
    try:
        sc = resolve_scenario(ref)
    except ScenarioError:
        return True  # let the strict path report the real problem
    return sc.ref.get("kind") == "generator"


@dataclass(frozen=True)
class RunControl:
    """How the runs of a launch are metered, watched and stopped (what runs is the :class:`Launch`).

    ``meter``: the energy meter (None: the launch's own, ``make_meter(launch.energy)``);
    ``progress``: called after every hop; ``cancel``: asked between hops, True stops the launch
    (:class:`Cancelled`); ``on_run_created``: called with each run row before its first hop;
    ``keep_going``: after a backend fails, the next backends still run.
    """

    meter: EnergyMeter | None = None
    progress: ProgressFn | None = None
    cancel: CancelFn | None = None
    on_run_created: Callable[[RunRead], None] | None = None
    keep_going: bool = True


@dataclass
class LaunchResult:
    """What a launch produced: its runs, and the backends that failed (spec, error)."""

    launch_id: str
    runs: list[RunRead]
    failures: list[tuple[str, AgentsimError]]
    #: with ``Launch.fidelity``: one line per run scored (or why it could not be)
    fidelity: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# running


def run_launch(launch: Launch, *, store: Store, control: RunControl = RunControl()) -> LaunchResult:
    """Run every plan of ``launch`` against every backend; each backend is loaded once.

    Every spec is validated before anything runs. A backend that fails to load (or fails during
    its runs) is reported in ``failures`` and, with ``control.keep_going``, the other backends
    still run. ``control.meter``: an energy meter (default: ``make_meter(launch.energy)``, closed
    at the end).
    """
    launch.check()
    from agentsim.backends.base import create_backend

    scenarios = launch.resolved_scenarios()
    backends = [create_backend(s) for s in launch.backend_specs()]  # validate every spec up front
    plans = launch.plans(scenarios)
    if not launch.executor.in_process:  # runs go to long-lived Ray workers; each meters its own runs
        from .distributed.ray_executor import run_on_ray

        runs_, failures_ = run_on_ray(launch.executor, store=store, backends=backends, plans=plans,
                                      energy=launch.energy, control=control)
        return _with_fidelity(launch, store, LaunchResult(launch.launch_id, runs_, failures_))
    own_meter = control.meter is None
    meter = make_meter(launch.energy) if control.meter is None else control.meter
    runs: list[RunRead] = []
    failures: list[tuple[str, AgentsimError]] = []
    # --fidelity: every run keeps the distributions its backend sampled from (bounded), so the
    # pass scores again only what the runs did not compute themselves
    captures: dict[int, Any] | None = {} if launch.fidelity else None
    try:
        for backend in backends:
            try:
                runs.extend(_run_backend(store, backend, plans, meter, control, captures))
            except Cancelled:
                raise
            except AgentsimError as exc:
                failures.append((str(backend.spec), exc))
                if not control.keep_going:
                    break
    finally:
        if own_meter:
            meter.close()
    try:
        return _with_fidelity(launch, store, LaunchResult(launch.launch_id, runs, failures), captures)
    finally:
        for c in (captures or {}).values():
            c.clear()


def _with_fidelity(launch: Launch, store: Store, result: LaunchResult,
                   captures: dict[int, Any] | None = None) -> LaunchResult:
    """``Launch.fidelity``: the teacher-forced pass over every finished run of the launch that
    has a reference run (agentsim.fidelity), taking what the runs captured where it can; a
    failure is a line of the result, never raised."""
    if launch.fidelity and result.runs:
        from .fidelity import fidelity_for_runs

        fidelity_for_runs(store, result.runs, progress=result.fidelity.append, captures=captures)
    return result


def execute(
    scenarios: Sequence[str | Path | Scenario],
    backend_specs: Sequence[str],
    *,
    store: Store,
    instances: int = 10,
    seed: int = 0,
    modes: str | Sequence[str] = ("free",),
    batch_sizes: int | str | Sequence[int] = (1,),
    control: RunControl = RunControl(),
) -> tuple[list[RunRead], list[tuple[str, AgentsimError]]]:
    """:func:`run_launch` for scenarios without a parameter sweep, with no energy meter unless
    ``control`` gives one. Returns (runs, failures)."""
    launch = Launch(scenarios=list(scenarios), backends=list(backend_specs), modes=modes,
                    instances=instances, seed=seed, batch_sizes=batch_sizes)
    if control.meter is None:
        control = replace(control, meter=UnavailableMeter())
    result = run_launch(launch, store=store, control=control)
    return result.runs, result.failures


def _run_backend(store: Store, backend: Any, plans: Sequence[RunPlan], meter: EnergyMeter,
                 control: RunControl, captures: dict[int, Any] | None = None) -> list[RunRead]:
    """Every plan against one backend (loaded once). A backend that cannot load raises
    :class:`BackendError` before any of its runs is created. With ``captures`` (run id ->
    capture), each run's generated distributions are kept there (``Backend.capture``)."""
    from agentsim.backends.base import CaptureBudget, ScoreCapture, load_backend
    from agentsim.hardware import machine_info

    machine = machine_info()
    load_backend(backend)
    meter = backend.meter_for(meter)
    results: list[RunRead] = []
    try:
        for plan in plans:
            run = _new_run(store, plan, backend, meter, machine)
            if control.on_run_created is not None:
                control.on_run_created(run)
            if captures is not None:
                budget = next((c.budget for c in captures.values()), None) or CaptureBudget()
                backend.capture = captures[run.id] = ScoreCapture(budget)
            try:
                results.append(RunExecutor(store, backend, meter, control.progress, control.cancel).run(run, plan.scenario))
            finally:
                backend.capture = None
    finally:
        backend.close()
    return results


def _new_run(store: Store, plan: RunPlan, backend: Any, meter: EnergyMeter, machine: dict[str, Any]) -> RunRead:
    return store.create_run(plan.row(str(backend.spec), **run_fields_here(backend, meter, machine)))


def resume_run(
    store: Store,
    run_id: int,
    *,
    meter: EnergyMeter | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> RunRead:
    """Finish a run that was interrupted: records the missing hops only."""
    from agentsim.backends.base import create_backend, load_backend

    run = store.get_run(run_id)
    if run.status == "complete":
        return run
    if effective_status(run) == "running" and run.pid != os.getpid():
        raise AgentsimError(
            f"run {run_id} is still being written by process {run.pid} on {run.host}",
            hint="wait for it, or stop that process first; resume finishes interrupted runs",
        )
    scenario = scenario_from_ref(run.scenario_ref)
    if scenario.fingerprint != run.scenario_fingerprint:
        raise StoreError(
            f"run {run_id}: the scenario rebuilt from the store differs from the one recorded "
            "(the generator changed since the run started); cannot resume it faithfully"
        )
    backend = create_backend(run.backend)
    load_backend(backend)
    meter = backend.meter_for(meter or UnavailableMeter())
    info = backend.info()
    if run.model_sha256 and info.model_sha256 and info.model_sha256 != run.model_sha256:
        backend.close()
        raise StoreError(
            f"run {run_id} used model file sha256 {run.model_sha256[:12]}…, but {run.backend} "
            f"now loads {info.model_sha256[:12]}…; resuming would mix two models"
        )
    run = store.update_run(run_id, status="running", error=None, pid=os.getpid(), host=socket.gethostname())
    try:
        return RunExecutor(store, backend, meter, progress, cancel).run(run, scenario)
    finally:
        backend.close()
