"""The hop engine: runs instances hop by hop, judges every hop and attributes its errors.

For each instance the hops run in topological order. In ``free`` mode a hop sees its parents'
*actual* outputs, so errors propagate; in ``oracle`` mode it sees their *expected* outputs, which
measures its own (local) accuracy. Each hop is judged twice: against the true expected answer
(``correct``) and against the answer that is right given the inputs it actually received
(``correct_given_inputs``). From these the engine assigns one error kind:

========== =====================================================================
none       right, and every parent was right
recovered  right although a parent was wrong
local      wrong although its inputs were right, or wrong given the inputs it got
propagated wrong because a parent was wrong, and right given those inputs
           (or its inputs were unusable, e.g. a parent's answer did not parse)
parse      the completion could not be parsed
backend    the backend (or the tool) failed
========== =====================================================================

Every hop is committed to the store as soon as it finishes, so a killed run can resume.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import expr
from .answers import ParseFailure, check_answer, parse_answer
from .errors import AgentsimError, BackendError
from .measure import (
    EnergyMeter,
    EnergyReading,
    GPUPeakMemory,
    PeakRSS,
)
from .scenario import HopSpec, Instance, Scenario
from .store import HopRead, HopTrace, InstanceRecord, RunRead, Store, new_hop_trace, utcnow
from .tools import ToolError, call_tool
from .values import jsonable

__all__ = ["ERROR_KINDS", "ORIGIN_KINDS", "MODES", "RunPlan", "RunExecutor", "Progress", "Cancelled"]

ERROR_KINDS = ("none", "local", "propagated", "recovered", "parse", "backend")
#: error kinds that start a failure chain (root causes)
ORIGIN_KINDS = ("local", "parse", "backend")
MODES = ("free", "oracle")

_MISSING = object()


@dataclass
class Progress:
    """Posted after every hop (and at run start / end)."""

    run_id: int
    backend: str
    scenario: str
    mode: str
    hops_done: int
    hops_total: int
    correct: int
    instances_done: int
    instances_total: int
    elapsed_s: float
    status: str = "running"
    message: str | None = None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.hops_done if self.hops_done else None

    @property
    def eta_s(self) -> float | None:
        if not self.hops_done or self.hops_done >= self.hops_total:
            return None
        return self.elapsed_s / self.hops_done * (self.hops_total - self.hops_done)


ProgressFn = Callable[[Progress], None]
CancelFn = Callable[[], bool]


class Cancelled(AgentsimError):
    """The run was cancelled by the user; what was recorded is kept."""


@dataclass
class RunPlan:
    """One run to execute: a scenario in one mode against one (already created) backend."""

    scenario: Scenario
    mode: str
    instances: int
    seed: int
    params: dict[str, Any]
    launch_id: str | None = None


@dataclass
class _HopOutcome:
    value: Any  # parsed value, or _MISSING when there is none
    correct: bool
    raw: str = ""  # the raw completion: what a child sees when the value is missing


# --------------------------------------------------------------------------------------------


def _sanitize(value: Any) -> Any:
    return None if value is _MISSING else value


def _judge(
    spec: HopSpec,
    value: Any,
    expected: Any,
    expected_given: Any,
    parents_ok: bool,
    inputs_usable: bool,
) -> tuple[bool, bool | None, str]:
    assert spec.check is not None
    correct = check_answer(value, expected, spec.check)
    cgi = check_answer(value, expected_given, spec.check) if inputs_usable and expected_given is not _MISSING else None
    if correct:
        return correct, cgi, "none" if parents_ok else "recovered"
    if parents_ok:
        return correct, cgi, "local"
    if not inputs_usable or cgi is None or cgi:
        return correct, cgi, "propagated"
    return correct, cgi, "local"


class RunExecutor:
    """Runs the instances of one run against one loaded backend, committing every hop."""

    def __init__(
        self,
        store: Store,
        backend: Any,
        meter: EnergyMeter,
        progress: ProgressFn | None,
        cancel: CancelFn | None,
        max_consecutive_backend_errors: int = 5,
    ) -> None:
        self.store = store
        self.backend = backend
        self.meter = meter
        self.progress = progress
        self.cancel = cancel
        self.max_errors = max_consecutive_backend_errors

    # ---------------------------------------------------------------------------------
    def run(self, run: RunRead, scenario: Scenario) -> RunRead:
        mode = run.mode
        total = run.n_instances * len(scenario.order)
        existing = self.store.hops(run.id)
        done = len(existing)
        correct_count = sum(1 for h in existing if h.correct)
        by_instance: dict[int, dict[str, HopRead]] = {}
        for h in existing:
            by_instance.setdefault(h.instance_index, {})[h.hop_id] = h
        finished = {i.index for i in self.store.instances(run.id) if i.finished}
        t0 = time.perf_counter()
        self._rss, self._gpu_mem = PeakRSS(), GPUPeakMemory()
        hops_before = done  # a resumed run's run-level reading covers only this session
        run_token = self.meter.begin()
        consecutive_errors = 0
        status, error = "complete", None

        def post(status_: str = "running", message: str | None = None) -> None:
            if self.progress is not None:
                self.progress(
                    Progress(run.id, run.backend, run.scenario, mode, done, total, correct_count,
                             len(finished), run.n_instances, time.perf_counter() - t0, status_, message)
                )

        post()
        try:
            for index in range(run.n_instances):
                if index in finished and len(by_instance.get(index, {})) == len(scenario.order):
                    continue
                inst = scenario.instance(run.seed, index)
                system = scenario.render_system(inst)
                self.store.ensure_instance(
                    InstanceRecord(run_id=run.id, index=index, seed=run.seed, vars=inst.vars,
                                   expected=inst.expected, system_prompt=system)
                )
                recorded = by_instance.get(index, {})
                outcomes: dict[str, _HopOutcome] = {}
                kinds: dict[str, str] = {}
                roots: dict[str, list[str]] = {}
                for topo, hop_id in enumerate(scenario.order):
                    if self.cancel is not None and self.cancel():
                        raise Cancelled("run cancelled; resume it with agentsim run --resume "
                                        f"{run.id}")
                    if hop_id in recorded:
                        h = recorded[hop_id]
                        value = h.parsed if h.parse_error is None and h.error_kind != "backend" else _MISSING
                        outcomes[hop_id] = _HopOutcome(value, h.correct, h.completion or "")
                        kinds[hop_id] = h.error_kind
                        roots[hop_id] = list(h.root_cause)
                        continue
                    trace = self._run_hop(run, scenario, inst, system, hop_id, topo, mode, outcomes, kinds, roots)
                    saved = self.store.record_hop(trace)
                    outcomes[hop_id] = _HopOutcome(
                        saved.parsed if saved.parse_error is None and saved.error_kind != "backend" else _MISSING,
                        saved.correct,
                        saved.completion or "",
                    )
                    kinds[hop_id] = saved.error_kind
                    roots[hop_id] = list(saved.root_cause)
                    done += 1
                    correct_count += int(saved.correct)
                    if saved.error_kind == "backend" and saved.kind == "llm":
                        consecutive_errors += 1
                        if consecutive_errors >= self.max_errors:
                            raise BackendError(
                                f"backend failed {consecutive_errors} hops in a row; "
                                f"last error: {saved.error_detail}"
                            )
                    elif saved.kind == "llm":
                        consecutive_errors = 0
                    post()
                origins = [h for h in scenario.order if kinds[h] in ORIGIN_KINDS]
                self.store.finish_instance(
                    run.id,
                    index,
                    success=all(outcomes[h].correct for h in scenario.order),
                    final_correct=all(outcomes[h].correct for h in scenario.sinks),
                    root_causes=origins,
                )
                finished.add(index)
        except Cancelled as exc:
            status, error = "interrupted", str(exc)
            raise
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted by the user"
            raise
        except AgentsimError as exc:
            status, error = "failed", str(exc)
            raise
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            reading = self.meter.end(run_token)
            self._rss.close()
            updated = self.store.update_run(
                run.id,
                status=status,
                error=error,
                finished_at=utcnow(),
                pid=None,
                run_energy_j=reading.joules,
                run_energy_kind=reading.kind,
                run_energy_source=reading.source,
                run_energy_resolution_j=reading.resolution_j,
                run_energy_note=reading.note,
                run_energy_hops=done - hops_before,
            )
            post(status, error)
        return updated

    # ---------------------------------------------------------------------------------
    def _run_hop(
        self,
        run: RunRead,
        scenario: Scenario,
        inst: Instance,
        system: str | None,
        hop_id: str,
        topo: int,
        mode: str,
        outcomes: dict[str, _HopOutcome],
        kinds: dict[str, str],
        roots: dict[str, list[str]],
    ) -> HopTrace:
        spec = scenario.hop(hop_id)
        parents = list(spec.depends_on)
        ctx = inst.context(scenario.spec.world)
        if mode == "oracle":
            inputs = {p: inst.expected[p] for p in parents}
            parents_ok = True
        else:
            inputs = {p: outcomes[p].value for p in parents}
            parents_ok = all(outcomes[p].correct for p in parents)
        inputs_usable = all(v is not _MISSING for v in inputs.values())
        # a parent without a parsed value hands on its raw completion, as an agent pipeline would
        ctx.update({p: (outcomes[p].raw if v is _MISSING else v) for p, v in inputs.items()})
        expected = inst.expected[hop_id]
        expected_given: Any = _MISSING
        if inputs_usable:
            try:
                expected_given = Scenario.expected_given(spec, ctx)
            except Exception:  # noqa: BLE001 - a wrong input can make the expectation undefined
                expected_given = _MISSING
        inherited = sorted(
            {r for p in parents if not outcomes[p].correct for r in (roots.get(p) or [p])},
            key=scenario.order.index,
        )
        trace = new_hop_trace(
            run_id=run.id,
            instance_index=inst.index,
            hop_id=hop_id,
            topo_index=topo,
            depth=scenario.depth[hop_id],
            kind=spec.kind,
            parents=parents,
            expected=expected,
            expected_given_inputs=_sanitize(expected_given),
            parents_ok=parents_ok,
        )

        def finish(kind: str, detail: str | None = None) -> HopTrace:
            trace.error_kind = kind
            trace.error_detail = detail
            if kind in ORIGIN_KINDS:
                trace.root_cause = [hop_id]
            elif kind == "propagated":
                trace.root_cause = inherited
            return trace

        if spec.kind == "tool":
            return self._run_tool(spec, ctx, trace, expected, expected_given, parents_ok, inputs_usable, finish)

        try:
            prompt = expr.render(spec.prompt or "", ctx)
        except Exception as exc:  # noqa: BLE001
            trace.prompt = None
            return finish("propagated" if not parents_ok else "backend", f"prompt template failed: {exc}")
        trace.prompt = prompt
        from agentsim.backends.base import GenerationRequest

        request = GenerationRequest(
            prompt=prompt,
            system=system,
            max_tokens=spec.max_tokens,
            stop=list(spec.stop),
            grammar=spec.grammar,
            seed=run.seed,
            hop_id=hop_id,
            instance_key=f"{run.scenario}:{inst.seed}:{inst.index}",
            expected=_sanitize(expected_given),
            parse=spec.parse,
        )
        self._rss.begin()
        self._gpu_mem.begin()
        token = self.meter.begin()
        t0 = time.perf_counter()
        try:
            completion = self.backend.generate(request)
        except (KeyboardInterrupt, Cancelled):
            raise
        except Exception as exc:  # noqa: BLE001 - a backend crash is recorded, not raised
            trace.wall_s = time.perf_counter() - t0
            self._energy(trace, self.meter.end(token))
            self._memory(trace, None)
            detail = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, AgentsimError):
                detail += "\n" + "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return finish("backend", detail)
        trace.wall_s = time.perf_counter() - t0
        self._energy(trace, self.meter.end(token))
        trace.completion = completion.text
        for attr in ("prompt_tokens", "completion_tokens", "cached_tokens", "prefill_s", "decode_s", "ttft_s", "peak_mem_bytes"):
            setattr(trace, attr, getattr(completion, attr))
        self._memory(trace, completion.peak_mem_bytes)
        value = parse_answer(completion.text, spec.parse)
        if isinstance(value, ParseFailure):
            trace.parse_error = value.reason
            # unusable inputs (a parent's answer was missing) make this hop's failure inherited
            return finish("parse" if inputs_usable else "propagated", value.reason)
        trace.parsed = value
        correct, cgi, kind = _judge(spec, value, expected, expected_given, parents_ok, inputs_usable)
        trace.correct = correct
        trace.correct_given_inputs = cgi
        return finish(kind)

    def _run_tool(self, spec, ctx, trace, expected, expected_given, parents_ok, inputs_usable, finish):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            args = {k: expr.evaluate(v, ctx) for k, v in spec.args.items()}
            trace.prompt = f"{spec.tool}(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")"
            value = call_tool(spec.tool, args)
        except (ToolError, Exception) as exc:  # noqa: BLE001 - tool errors are hop outcomes
            trace.wall_s = time.perf_counter() - t0
            detail = str(exc) if isinstance(exc, ToolError) else f"{type(exc).__name__}: {exc}"
            trace.error_detail = detail
            trace.completion = None
            return finish("propagated" if not parents_ok else "backend", f"tool error: {detail}")
        trace.wall_s = time.perf_counter() - t0
        value = jsonable(value)
        trace.completion = repr(value)
        trace.parsed = value
        correct, cgi, kind = _judge(spec, value, expected, expected_given, parents_ok, inputs_usable)
        trace.correct = correct
        trace.correct_given_inputs = cgi
        return finish(kind)

    @staticmethod
    def _energy(trace: HopTrace, reading: EnergyReading) -> None:
        trace.energy_j = reading.joules
        trace.energy_kind = reading.kind
        trace.energy_source = reading.source
        trace.energy_resolution_j = reading.resolution_j
        trace.energy_note = reading.note
        trace.energy_below_resolution = reading.below_resolution

    def _memory(self, trace: HopTrace, backend_peak: int | None) -> None:
        """This hop's peak RSS (and torch's peak CUDA allocation when CUDA is in use); the RSS
        stands in for ``peak_mem_bytes`` when the backend did not report a peak of its own."""
        trace.peak_rss_bytes = self._rss.end()
        trace.peak_gpu_mem_bytes = self._gpu_mem.end()
        if backend_peak is None:
            trace.peak_mem_bytes = trace.peak_rss_bytes
