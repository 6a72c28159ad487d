"""``agentsim agent run``: the user's unchanged agent program, once per instance and per rung,
against a ``serve`` of that rung; each instance judged by the user's check.

The program is run with ``OPENAI_BASE_URL`` pointing at the rung's server (a URL of its own per
instance, so every call lands in that instance), ``OPENAI_API_KEY`` set to a dummy key,
``OPENAI_MODEL``/``AGENTSIM_MODEL`` naming the served model, and ``AGENTSIM_INSTANCE``,
``AGENTSIM_SEED``, ``AGENTSIM_RUN_ID``. Its check is one of

``exit``                 the program's exit status (0: success), the default
``cmd:SHELL COMMAND``    a command given the program's output on standard input (exit 0: success),
                         with the same environment
``py:MODULE:FUNCTION``   a Python function ``f(output: str, instance: int, seed: int) -> bool``;
                         ``MODULE`` may be a path to a ``.py`` file

A program that crashes, times out or is judged wrong is a failed instance (its exit status,
output tail and stderr tail are stored with the instance), never a failed sweep.

The runs are ordinary runs: scenario ``agent:NAME``, a fingerprint of the command, the check and
the name (so paired statistics pair rungs instance by instance), mode ``free``. The rung with the
most bits runs first and is the reference the others' calls are judged against
(:mod:`agentsim.serve.recorder`).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsim.errors import AgentsimError
from agentsim.store import HopTrace, RunRead, Store

__all__ = ["AgentJob", "AgentCheck", "AgentResult", "InstanceOutcome", "run_agent", "resume_agent_run",
           "parse_check", "order_rungs"]

TAIL = 2000


@dataclass(frozen=True)
class AgentCheck:
    """How an instance is judged (module docstring)."""

    kind: str  # exit | cmd | py
    target: str = ""

    def __str__(self) -> str:
        return self.kind if self.kind == "exit" else f"{self.kind}:{self.target}"


def parse_check(text: str | None) -> AgentCheck:
    t = (text or "exit").strip()
    if t == "exit":
        return AgentCheck("exit")
    kind, sep, target = t.partition(":")
    if sep and kind in ("cmd", "py") and target.strip():
        if kind == "py" and ":" not in target:
            raise AgentsimError(f"check {t!r}: py: needs MODULE:FUNCTION", hint="e.g. py:checks.py:judge")
        return AgentCheck(kind, target.strip())
    raise AgentsimError(f"unknown check {t!r}", hint="exit | cmd:SHELL COMMAND | py:MODULE:FUNCTION")


@dataclass
class AgentJob:
    """An agent program and how to judge it, with the instances to run."""

    command: list[str]
    name: str = ""
    check: AgentCheck = field(default_factory=lambda: AgentCheck("exit"))
    instances: int = 5
    seed: int = 0
    timeout_s: float = 300.0
    cwd: str | None = None
    text_check: str = "normalized"

    def __post_init__(self) -> None:
        if not self.command:
            raise AgentsimError("no agent command given", hint="agentsim agent run -b SPEC -- python my_agent.py")
        if not self.name:
            self.name = Path(self.command[-1]).stem if len(self.command) > 1 else Path(self.command[0]).name
        if self.instances < 1:
            raise AgentsimError(f"instances must be at least 1 (got {self.instances})")
        if self.timeout_s <= 0:
            raise AgentsimError(f"timeout must be positive (got {self.timeout_s})")

    def ref(self) -> dict[str, Any]:
        """The run's scenario reference: everything that rebuilds the job (resume reads it)."""
        return {"kind": "agent", "name": self.name, "command": list(self.command), "check": str(self.check),
                "cwd": self.cwd, "timeout_s": self.timeout_s, "text_check": self.text_check, "source": "agent run"}

    @classmethod
    def from_ref(cls, ref: dict[str, Any], instances: int, seed: int) -> AgentJob:
        if ref.get("kind") != "agent" or not ref.get("command"):
            raise AgentsimError("this run is not an agent run (no agent command recorded)",
                                hint="agentsim run --resume finishes scenario runs")
        return cls(command=list(ref["command"]), name=ref.get("name") or "", check=parse_check(ref.get("check")),
                   instances=instances, seed=seed, timeout_s=float(ref.get("timeout_s") or 300.0),
                   cwd=ref.get("cwd"), text_check=ref.get("text_check") or "normalized")

    def instance_seed(self, index: int) -> int:
        return self.seed * 1_000_003 + index


@dataclass
class InstanceOutcome:
    index: int
    success: bool
    exit_code: int | None
    wall_s: float
    calls: int
    detail: str


@dataclass
class AgentResult:
    runs: list[RunRead]
    failures: list[tuple[str, AgentsimError]]
    launch_id: str


ProgressFn = Callable[[str, InstanceOutcome, int], None]


def order_rungs(specs: Sequence[str]) -> list[str]:
    """Backend specs with the most bits first (the reference rung); ties and unknowns keep their order."""
    from agentsim.backends.base import create_backend, parse_spec
    from agentsim.precision import bits

    def precision(spec: str) -> str | None:
        try:  # what the backend says it runs (a .gguf path's tensor types), before anything loads
            return create_backend(spec).info().precision or parse_spec(spec).precision
        except AgentsimError:
            return parse_spec(spec).precision

    def key(item: tuple[int, str]) -> tuple[float, int]:
        p = precision(item[1])
        b = bits(p) if p else None
        return (-(b if b is not None else -math.inf), item[0])

    return [s for _, s in sorted(enumerate(specs), key=key)]


# --------------------------------------------------------------------------------------------


def _tail(text: str | bytes | None) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return text[-TAIL:]


def _python_check(target: str) -> Callable[..., Any]:
    mod_name, _, fn = target.rpartition(":")
    try:
        if mod_name.endswith(".py") or os.sep in mod_name:
            path = Path(mod_name).resolve()
            spec = importlib.util.spec_from_file_location(f"agentsim_check_{path.stem}", path)
            if spec is None or spec.loader is None or not path.exists():
                raise AgentsimError(f"check file {mod_name} does not exist")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
    except AgentsimError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module
        raise AgentsimError(f"cannot import the check {target!r}: {type(exc).__name__}: {exc}") from None
    func = getattr(module, fn, None)
    if not callable(func):
        raise AgentsimError(f"check {target!r}: {mod_name} has no function {fn!r}")
    return func  # type: ignore[no-any-return]


class _Judge:
    def __init__(self, check: AgentCheck) -> None:
        self.check = check
        self.func = _python_check(check.target) if check.kind == "py" else None

    def __call__(self, rc: int, output: str, env: dict[str, str], index: int, seed: int,
                 cwd: str | None) -> tuple[bool, str]:
        if self.check.kind == "exit":
            return rc == 0, f"exit status {rc}"
        if rc != 0:
            return False, f"the agent exited with status {rc}"
        if self.check.kind == "cmd":
            p = subprocess.run(self.check.target, shell=True, input=output, text=True, capture_output=True,  # noqa: S602 - the user's own check command
                               env=env, cwd=cwd, timeout=120, check=False)
            return p.returncode == 0, f"check exit status {p.returncode}" + (f": {_tail(p.stderr)[-300:]}" if p.stderr else "")
        assert self.func is not None
        try:
            ok = self.func(output, index, seed)
        except Exception as exc:  # noqa: BLE001 - a failing check fails the instance
            return False, f"check raised {type(exc).__name__}: {exc}"
        return bool(ok), f"check returned {ok!r}"


def _delete_hops(store: Store, run_id: int, index: int) -> None:
    """A resumed instance starts again: the calls of its unfinished attempt are removed."""
    from sqlalchemy import delete

    with store.engine.begin() as conn:
        conn.execute(delete(HopTrace.__table__).where(  # type: ignore[attr-defined]
            HopTrace.run_id == run_id, HopTrace.instance_index == index))


def _run_instances(job: AgentJob, serving: Any, store: Store, judge: _Judge, progress: ProgressFn | None,
                   spec: str) -> None:
    done = {i.index for i in store.instances(serving.run.id) if i.finished}
    for index in range(job.instances):
        if index in done:
            continue
        _delete_hops(store, serving.run.id, index)
        seed = job.instance_seed(index)
        serving.recorder.open_instance(index, seed)
        env = dict(os.environ)
        env.update({
            "OPENAI_BASE_URL": serving.instance_url(index), "OPENAI_API_BASE": serving.instance_url(index),
            "OPENAI_API_KEY": "agentsim-local", "OPENAI_MODEL": serving.service.model,
            "AGENTSIM_MODEL": serving.service.model, "AGENTSIM_INSTANCE": str(index), "AGENTSIM_SEED": str(seed),
            "AGENTSIM_RUN_ID": str(serving.run.id), "AGENTSIM_BACKEND": str(serving.backend.spec),
        })
        t0 = time.perf_counter()
        rc: int | None
        try:
            p = subprocess.run(job.command, env=env, cwd=job.cwd, capture_output=True, text=True,
                               timeout=job.timeout_s, check=False)
            rc, out, err = p.returncode, p.stdout, p.stderr
            ok, detail = judge(rc, out, env, index, seed, job.cwd)
        except subprocess.TimeoutExpired as exc:
            rc, out, err = None, _tail(exc.stdout), _tail(exc.stderr)
            ok, detail = False, f"timed out after {job.timeout_s:g} s"
        except OSError as exc:
            raise AgentsimError(f"cannot start the agent {shlex.join(job.command)}: {exc.strerror or exc}") from None
        wall = time.perf_counter() - t0
        calls = sum(1 for h in store.hops(serving.run.id, index) if h.kind == "llm")
        store.finish_instance(
            serving.run.id, index, success=ok, final_correct=ok, root_causes=serving.recorder.origins(index),
            vars={"exit_code": rc, "check": detail, "wall_s": round(wall, 3), "calls": calls,
                  "stdout_tail": _tail(out), "stderr_tail": _tail(err)})
        if progress is not None:
            progress(spec, InstanceOutcome(index, ok, rc, wall, calls, detail), job.instances)


def run_agent(job: AgentJob, backends: Sequence[str], *, store: Store, energy: str = "auto",
              progress: ProgressFn | None = None, reference_run: int | None = None,
              keep_going: bool = True) -> AgentResult:
    """Run ``job`` at every rung in ``backends`` (most bits first); returns the runs made."""
    from agentsim.backends.base import create_backend
    from agentsim.measure import make_meter
    from agentsim.serve import AgentRunSpec, Serving
    from agentsim.serve.recorder import Reference

    if not backends:
        raise AgentsimError("no backend given", hint="-b llama:qwen2.5-coder-0.5b@f16 -b llama:qwen2.5-coder-0.5b@q4_0")
    specs = order_rungs(list(backends))
    for s in specs:
        create_backend(s)  # every spec checked before any agent runs
    judge = _Judge(job.check)
    launch_id = uuid.uuid4().hex[:12]
    reference = Reference.load(store, reference_run, job.text_check) if reference_run is not None else None
    runs: list[RunRead] = []
    failures: list[tuple[str, AgentsimError]] = []
    meter = make_meter(energy)
    try:
        for spec in specs:
            try:
                params = {"reference_run": reference.run_id} if reference is not None else {}
                run = AgentRunSpec(ref=job.ref(), seed=job.seed, n_instances=job.instances, launch_id=launch_id)
                serving = Serving(spec, store=store, run=run, meter=meter, reference=reference)
                # the reference is named in the run's backend_info, not its params: params take part
                # in pairing (agentsim.analysis.trap.group_key), and every rung of one job pairs
                store.update_run(serving.run.id, backend_info={**serving.run.backend_info, "agent": params})
                runs.append(_serve_instances(job, serving, store, judge, progress, spec))
            except AgentsimError as exc:
                failures.append((spec, exc))
                if not keep_going:
                    break
                continue
            if reference is None:
                reference = Reference.load(store, runs[-1].id, job.text_check)
    finally:
        meter.close()
    return AgentResult(runs, failures, launch_id)


def _serve_instances(job: AgentJob, serving: Any, store: Store, judge: _Judge, progress: ProgressFn | None,
                     spec: str) -> RunRead:
    serving.start()
    try:
        _run_instances(job, serving, store, judge, progress, spec)
    except KeyboardInterrupt:
        serving.close(status="interrupted", error="interrupted by the user")
        raise
    except AgentsimError as exc:
        serving.close(status="failed", error=str(exc))
        raise
    except BaseException as exc:
        serving.close(status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    return serving.close()


def resume_agent_run(store: Store, run_id: int, *, energy: str = "auto",
                     progress: ProgressFn | None = None) -> RunRead:
    """Finish an interrupted agent run: its finished instances are kept, the others run again."""
    from agentsim.measure import make_meter
    from agentsim.serve import Serving
    from agentsim.serve.recorder import Reference

    run = store.get_run(run_id)
    job = AgentJob.from_ref(run.scenario_ref or {}, run.n_instances, run.seed)
    if run.status == "complete":
        return run
    ref_id = ((run.backend_info or {}).get("agent") or {}).get("reference_run")
    reference = Reference.load(store, int(ref_id), job.text_check) if ref_id is not None else None
    meter = make_meter(energy)
    try:
        serving = Serving(run.backend, store=store, run=run, meter=meter, reference=reference)
        store.update_run(run_id, pid=os.getpid())
        return _serve_instances(job, serving, store, _Judge(job.check), progress, run.backend)
    finally:
        meter.close()


def python_command(script: str | Path, *args: str) -> list[str]:
    """``[sys.executable, script, *args]``: the interpreter running agentsim runs the agent too."""
    return [sys.executable, str(script), *args]
