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
from dataclasses import dataclass, field
from typing import Any

from . import expr
from .answers import ParseFailure, check_answer, parse_answer
from .errors import AgentsimError, BackendError
from .limits import LimitExceeded
from .measure import (
    EnergyMeter,
    EnergyReading,
    GPUPeakMemory,
    PeakRSS,
)
from .scenario import HopSpec, Instance, Scenario
from .scenario.attribution import input_parents
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
    #: instances advanced together (their ready hops go to the backend as one call)
    batch_size: int = 1


@dataclass
class _HopOutcome:
    value: Any  # parsed value, or _MISSING when there is none
    correct: bool
    raw: str = ""  # the raw completion: what a child sees when the value is missing


@dataclass
class _Pending:
    """A prepared LLM hop waiting for its completion (alone, or in a batch)."""

    trace: Any
    request: Any  # GenerationRequest
    spec: HopSpec
    expected: Any
    expected_given: Any
    parents_ok: bool
    inputs_usable: bool
    finish: Callable[..., Any]


@dataclass
class _InstanceState:
    """One instance in flight: what its hops produced so far (recorded ones included)."""

    inst: Instance
    system: str | None
    outcomes: dict[str, _HopOutcome] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    roots: dict[str, list[str]] = field(default_factory=dict)
    last: Any = None

    def record(self, hop_id: str, saved: Any) -> None:
        """What a stored hop hands on to its children (its value, or nothing but its text)."""
        self.outcomes[hop_id] = _HopOutcome(
            saved.parsed if saved.parse_error is None and saved.error_kind != "backend" else _MISSING,
            saved.correct,
            saved.completion or "",
        )
        self.kinds[hop_id] = saved.error_kind
        self.roots[hop_id] = list(saved.root_cause)
        self.last = saved


def _weights(results: list[Any]) -> list[float]:
    """Each hop's share of a batch call, by tokens (prompt + completion). A hop whose backend
    reported no counts (a failure, a simulation) weighs as the average hop that did, or all
    weigh the same when none did."""
    known = [float((r.prompt_tokens or 0) + (r.completion_tokens or 0))
             if not isinstance(r, BaseException) and (r.prompt_tokens or r.completion_tokens) else None
             for r in results]
    have = [w for w in known if w is not None and w > 0]
    fill = sum(have) / len(have) if have else 1.0
    ws = [w if w is not None and w > 0 else fill for w in known]
    total = sum(ws)
    return [w / total for w in ws]


def _sum(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _share_reading(reading: EnergyReading, share: float, n: int) -> EnergyReading:
    """One hop's share of a reading taken over a batch call: the kind stays what it was
    (measured stays measured), and the note says the figure is attributed."""
    if reading.joules is None:
        return reading
    note = f"attributed: {share:.4g} of one reading over a batch of {n} hops, by tokens"
    return EnergyReading(
        joules=reading.joules * share,
        kind=reading.kind,
        source=reading.source,
        resolution_j=None if reading.resolution_j is None else reading.resolution_j * share,
        note=f"{reading.note}; {note}" if reading.note else note,
        below_resolution=reading.below_resolution,
        duration_s=reading.duration_s,
    )


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
                    Progress(run.id, run.backend, run.scenario_label or run.scenario, mode, done, total, correct_count,
                             len(finished), run.n_instances, time.perf_counter() - t0, status_, message)
                )

        def tally(saved: Any) -> None:
            """Count a recorded hop; too many backend failures in a row stop the run."""
            nonlocal done, correct_count, consecutive_errors
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

        def close_instance(index: int, state: _InstanceState) -> None:
            kinds, outcomes = state.kinds, state.outcomes
            origins = [h for h in scenario.order if kinds[h] in ORIGIN_KINDS]
            self.store.finish_instance(
                run.id,
                index,
                success=all(outcomes[h].correct for h in scenario.order),
                final_correct=all(outcomes[h].correct for h in scenario.sinks),
                root_causes=origins,
            )
            finished.add(index)

        pending = [i for i in range(run.n_instances)
                   if not (i in finished and len(by_instance.get(i, {})) == len(scenario.order))]
        batch = int(run.batch_size or 1)  # None: a run written before batching existed
        post()
        try:
            if batch > 1:
                self._run_batched(run, scenario, batch, pending, by_instance, tally, close_instance)
                pending = []
            for index in pending:  # batch 1: one instance after the other, one hop at a time
                state = self._open_instance(run, scenario, index, by_instance.get(index, {}))
                inst, system = state.inst, state.system
                outcomes, kinds, roots = state.outcomes, state.kinds, state.roots
                for topo, hop_id in enumerate(scenario.order):
                    self._check_cancel(run)
                    if hop_id in outcomes:
                        continue
                    trace = self._run_hop(run, scenario, inst, system, hop_id, topo, mode, outcomes, kinds, roots)
                    state.record(hop_id, self.store.record_hop(trace))
                    tally(state.last)
                close_instance(index, state)
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
    def _check_cancel(self, run: RunRead) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled(f"run cancelled; resume it with agentsim run --resume {run.id}")

    def _open_instance(self, run: RunRead, scenario: Scenario, index: int,
                       recorded: dict[str, HopRead]) -> _InstanceState:
        """Draw instance ``index``, record it (once), and restore the hops already stored."""
        inst = scenario.instance(run.seed, index)
        system = scenario.render_system(inst)
        self.store.ensure_instance(
            InstanceRecord(run_id=run.id, index=index, seed=run.seed, vars=inst.vars,
                           expected=inst.expected, system_prompt=system)
        )
        state = _InstanceState(inst, system)
        for hop_id in scenario.order:
            if hop_id in recorded:
                state.record(hop_id, recorded[hop_id])
        return state

    def _run_batched(self, run: RunRead, scenario: Scenario, batch: int, pending: list[int],
                     by_instance: dict[int, dict[str, HopRead]],
                     tally: Callable[[Any], None],
                     close_instance: Callable[[int, _InstanceState], None]) -> None:
        """Batch > 1: ``batch`` instances advance together. At every step the ready hops of all
        of them (every parent recorded) are prepared exactly as at batch 1; tool hops run at
        once, the LLM hops go to the backend as one ``generate_batch`` call, and every hop is
        committed as soon as the call returns (a killed run loses at most that call)."""
        for start in range(0, len(pending), batch):
            group = {i: self._open_instance(run, scenario, i, by_instance.get(i, {}))
                     for i in pending[start:start + batch]}
            while True:
                self._check_cancel(run)
                ready = [(index, topo, hop_id)
                         for index, st in group.items()
                         for topo, hop_id in enumerate(scenario.order)
                         if hop_id not in st.outcomes
                         and all(p in st.outcomes for p in scenario.hop(hop_id).depends_on)]
                if not ready:
                    break
                calls: list[tuple[_InstanceState, str, _Pending]] = []
                for index, topo, hop_id in ready:
                    st = group[index]
                    prep = self._prepare_hop(run, scenario, st.inst, st.system, hop_id, topo, run.mode,
                                             st.outcomes, st.kinds, st.roots)
                    if isinstance(prep, _Pending):
                        calls.append((st, hop_id, prep))
                    else:  # a tool hop or a failed template: nothing to send
                        st.record(hop_id, self.store.record_hop(prep))
                        tally(st.last)
                if calls:
                    traces = self._call_batch([c[2] for c in calls])
                    for (st, hop_id, _), trace in zip(calls, traces, strict=True):
                        st.record(hop_id, self.store.record_hop(trace))
                        tally(st.last)
            for index, st in group.items():
                close_instance(index, st)

    def _call_batch(self, preps: list[_Pending]) -> list[HopTrace]:
        """One backend call for several prepared hops. The meter is read once around it; each
        hop gets its share (by tokens) of the call's wall time and energy, and keeps the call's
        own figures in the ``batch_*`` columns."""
        n = len(preps)
        self._rss.begin()
        self._gpu_mem.begin()
        token = self.meter.begin()
        t0 = time.perf_counter()
        results: list[Any]
        try:
            results = list(self.backend.generate_batch([p.request for p in preps], return_exceptions=True))
            if len(results) != n:
                raise BackendError(f"generate_batch answered {len(results)} of {n} requests")
        except (KeyboardInterrupt, Cancelled):
            raise
        except Exception as exc:  # noqa: BLE001 - a failed batch call fails each of its hops
            results = [exc] * n
        wall = time.perf_counter() - t0
        reading = self.meter.end(token)
        peak_rss, peak_gpu = self._rss.end(), self._gpu_mem.end()
        completions = [r for r in results if not isinstance(r, BaseException)]
        attributed = [c for c in completions if c.extra.get("batch_timing") == "attributed"]
        if attributed:  # the backend decoded them together and measured the whole call
            batch_prefill = attributed[0].extra.get("batch_prefill_s")
            batch_decode = attributed[0].extra.get("batch_decode_s")
        else:  # answered one after the other: the call's times are the sums
            batch_prefill = _sum([c.prefill_s for c in completions])
            batch_decode = _sum([c.decode_s for c in completions])
        out: list[HopTrace] = []
        for prep, result, share in zip(preps, results, _weights(results), strict=True):
            trace = prep.trace
            trace.batch_n, trace.batch_share, trace.batch_wall_s = n, share, wall
            trace.batch_prefill_s, trace.batch_decode_s = batch_prefill, batch_decode
            trace.wall_s = wall * share
            self._energy(trace, _share_reading(reading, share, n))
            trace.peak_rss_bytes, trace.peak_gpu_mem_bytes = peak_rss, peak_gpu
            if isinstance(result, BaseException):
                trace.peak_mem_bytes = peak_rss
                out.append(self._failed(prep, result))
                continue
            trace.batch_timing = result.extra.get("batch_timing", "own")
            out.append(self._complete(prep, result, memory=False))
            if trace.peak_mem_bytes is None:
                trace.peak_mem_bytes = peak_rss
        return out

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
        """One hop by itself (batch 1): prepare it, call ``generate``, judge the completion."""
        prep = self._prepare_hop(run, scenario, inst, system, hop_id, topo, mode, outcomes, kinds, roots)
        if not isinstance(prep, _Pending):
            return prep
        trace = prep.trace
        self._rss.begin()
        self._gpu_mem.begin()
        token = self.meter.begin()
        t0 = time.perf_counter()
        try:
            completion = self.backend.generate(prep.request)
        except (KeyboardInterrupt, Cancelled):
            raise
        except Exception as exc:  # noqa: BLE001 - a backend crash is recorded, not raised
            trace.wall_s = time.perf_counter() - t0
            self._energy(trace, self.meter.end(token))
            self._memory(trace, None)
            return self._failed(prep, exc)
        trace.wall_s = time.perf_counter() - t0
        self._energy(trace, self.meter.end(token))
        return self._complete(prep, completion)

    def _prepare_hop(
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
    ) -> Any:
        """A hop up to its backend call: its inputs, expectations and trace, judged by
        ``parents_ok``/``inherited`` exactly as at batch 1. Returns the finished trace when no
        backend call is needed (a tool hop, a failed template), else a :class:`_Pending` call."""
        spec = scenario.hop(hop_id)
        parents = list(spec.depends_on)
        # judged by the parents its answer uses; the rest are context (scenario.attribution)
        used = input_parents(spec, parents)
        ctx = inst.context(scenario.spec.world)
        if mode == "oracle":
            inputs = {p: inst.expected[p] for p in parents}
            parents_ok = True
        else:
            inputs = {p: outcomes[p].value for p in parents}
            parents_ok = all(outcomes[p].correct for p in used)
        inputs_usable = all(inputs[p] is not _MISSING for p in used)
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
            {r for p in used if not outcomes[p].correct for r in (roots.get(p) or [p])},
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
        except LimitExceeded as exc:
            # a limit hit at run time (the inputs a hop received can be larger than the expected
            # ones): say where in the file, and which limit
            trace.prompt = None
            where = exc.located(source=scenario.source, line=scenario.line_of(hop_id, "prompt"), hop=hop_id,
                                field="prompt")
            return finish("propagated" if not parents_ok else "backend", f"prompt template failed: {where}")
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
        return _Pending(trace, request, spec, expected, expected_given, parents_ok, inputs_usable, finish)

    @staticmethod
    def _failed(prep: _Pending, exc: BaseException) -> HopTrace:
        """The backend raised for this hop: a ``backend`` error, recorded with its detail."""
        detail = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, AgentsimError):
            detail += "\n" + "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return prep.finish("backend", detail)

    def _complete(self, prep: _Pending, completion: Any, *, memory: bool = True) -> HopTrace:
        """Judge a completion: its figures onto the trace, parse, check, attribute."""
        trace, spec = prep.trace, prep.spec
        trace.completion = completion.text
        for attr in ("prompt_tokens", "completion_tokens", "cached_tokens", "prefill_s", "decode_s", "ttft_s", "peak_mem_bytes"):
            setattr(trace, attr, getattr(completion, attr))
        if memory:
            self._memory(trace, completion.peak_mem_bytes)
        value = parse_answer(completion.text, spec.parse)
        if isinstance(value, ParseFailure):
            trace.parse_error = value.reason
            # unusable inputs (a parent's answer was missing) make this hop's failure inherited
            return prep.finish("parse" if prep.inputs_usable else "propagated", value.reason)
        trace.parsed = value
        correct, cgi, kind = _judge(spec, value, prep.expected, prep.expected_given, prep.parents_ok, prep.inputs_usable)
        trace.correct = correct
        trace.correct_given_inputs = cgi
        return prep.finish(kind)

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
