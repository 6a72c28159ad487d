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
truncated  wrong or unparsable, and generation stopped at the token budget
           (``stop_reason`` ``length``): the answer was cut off, not given
backend    the backend (or the tool) failed
========== =====================================================================

"Parent" here means the hop's **input parents** (:func:`agentsim.scenario.attribution.input_parents`:
the parents its expected answer uses, or the ``inputs`` it declares per instance), not every hop
of ``depends_on``: ``depends_on`` is what the prompt may show (prompting context) and the order
hops run in; a wrong parent that is context only makes a hop neither recovered nor propagated.
Every hop records both lists (``parents``: depends_on, ``inputs``: the input parents) and why its
generation stopped (``stop_reason``: eos, stop, grammar, length; None when the backend cannot tell).

Every hop is committed to the store as soon as it finishes, so a killed run can resume.

The parts, each small: :class:`RunExecutor` (what every run of one backend shares: the store,
the backend, the meter, the callbacks) makes one :class:`_RunInProgress` per run, which holds
that run's state (its :class:`RunCounters`, the hops recorded before a resume, the memory
probes) and advances its instances in groups of ``batch_size`` (batch 1 is a group of one, one
hop per step). :class:`_HopDraft` is one hop between its preparation and its record; one
:meth:`_RunInProgress._call` measures every backend call, of one hop or of a batch.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
from .store import HopRead, HopRecord, InstanceRecord, Run, RunRead, RunStore, batch_size_of, utcnow
from .tools import ToolError, call_tool
from .values import jsonable

if TYPE_CHECKING:
    from agentsim.backends.base import Backend, Completion, GenerationRequest

__all__ = ["ERROR_KINDS", "ORIGIN_KINDS", "MODES", "RunPlan", "RunExecutor", "RunCounters", "Progress",
           "Cancelled", "run_fields_here"]

ERROR_KINDS = ("none", "local", "propagated", "recovered", "parse", "truncated", "backend")
#: error kinds that start a failure chain (root causes)
ORIGIN_KINDS = ("local", "parse", "truncated", "backend")
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

    def row(self, backend: str, **fields: Any) -> Run:
        """The stored run of this plan against backend spec ``backend``, with ``fields`` (what
        the loaded backend and the process that runs it add: :func:`run_fields_here`). The one
        place a run row is made, in-process and for Ray alike."""
        from agentsim.backends.base import parse_spec

        sc = self.scenario
        values: dict[str, Any] = {
            "scenario": sc.name, "scenario_ref": sc.ref, "scenario_fingerprint": sc.fingerprint,
            "params": self.params, "backend": backend, "backend_name": parse_spec(backend).name,
            "mode": self.mode, "seed": self.seed, "n_instances": self.instances,
            "hops_per_instance": len(sc.order), "launch_id": self.launch_id, "batch_size": self.batch_size,
        }
        return Run(**{**values, **fields})


def run_fields_here(backend: Backend, meter: EnergyMeter, machine: dict[str, Any] | None = None) -> dict[str, Any]:
    """The columns of a run that say what runs it and where: the loaded backend's own fields
    (:meth:`BackendInfo.run_fields`), this machine's fingerprint, the energy meter, and this
    process (``pid``/``host``: the run reads as running while it lives)."""
    from .hardware import machine_info

    return {**backend.info().run_fields(), "machine": machine_info() if machine is None else machine,
            "energy_meter": meter.describe(), "pid": os.getpid(), "host": socket.gethostname()}


@dataclass
class RunCounters:
    """What one run has recorded, counted as it goes (progress and the error policy read it)."""

    hops_done: int = 0
    correct: int = 0
    #: LLM hops in a row whose backend failed (a success or a resume starts it again at 0)
    backend_errors_in_a_row: int = 0
    #: hops stored before this session started (a resumed run): the run-level meter misses them
    hops_before: int = 0

    def count(self, hop: HopRecord | HopRead) -> None:
        self.hops_done += 1
        self.correct += int(hop.correct)
        if hop.kind == "llm":
            self.backend_errors_in_a_row = self.backend_errors_in_a_row + 1 if hop.error_kind == "backend" else 0


@dataclass
class _HopOutcome:
    value: Any  # parsed value, or _MISSING when there is none
    correct: bool
    raw: str = ""  # the raw completion: what a child sees when the value is missing


@dataclass
class _InstanceState:
    """One instance in flight: what its hops produced so far (recorded ones included)."""

    inst: Instance
    system: str | None
    outcomes: dict[str, _HopOutcome] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    roots: dict[str, list[str]] = field(default_factory=dict)

    def record(self, hop_id: str, saved: HopRecord | HopRead) -> None:
        """What a stored hop hands on to its children (its value, or nothing but its text)."""
        self.outcomes[hop_id] = _HopOutcome(
            saved.parsed if saved.parse_error is None and saved.error_kind != "backend" else _MISSING,
            saved.correct,
            saved.completion or "",
        )
        self.kinds[hop_id] = saved.error_kind
        self.roots[hop_id] = list(saved.root_cause)


@dataclass
class _HopDraft:
    """One hop between its preparation and its record: its record so far, what it is judged
    against, and (an LLM hop) the request for the backend."""

    record: HopRecord
    spec: HopSpec
    expected: Any
    expected_given: Any  # _MISSING when undefined for the inputs it got
    parents_ok: bool
    inputs_usable: bool
    #: the root causes it inherits when its failure is propagated
    inherited: list[str]
    request: GenerationRequest | None = None

    def finish(self, kind: str, detail: str | None = None) -> HopRecord:
        rec = self.record
        rec.error_kind = kind
        rec.error_detail = detail
        if kind in ORIGIN_KINDS:
            rec.root_cause = [rec.hop_id]
        elif kind == "propagated":
            rec.root_cause = self.inherited
        return rec

    def fail(self, detail: str) -> HopRecord:
        """The hop could not be run (a template or a tool failed): its own fault when its inputs
        were right, else inherited from the parent that was wrong."""
        return self.finish("propagated" if not self.parents_ok else "backend", detail)

    def backend_failed(self, exc: BaseException) -> HopRecord:
        """The backend raised for this hop: a ``backend`` error, recorded with its detail."""
        detail = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, AgentsimError):
            detail += "\n" + "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return self.finish("backend", detail)

    def judge(self, value: Any) -> HopRecord:
        """Check a parsed value against the expected answer and the one right for the inputs
        received, and attribute the error (the table in the module docstring)."""
        spec, rec = self.spec, self.record
        assert spec.check is not None
        rec.parsed = value
        rec.correct = correct = check_answer(value, self.expected, spec.check)
        given = self.expected_given
        cgi = check_answer(value, given, spec.check) if self.inputs_usable and given is not _MISSING else None
        rec.correct_given_inputs = cgi
        if correct:
            return self.finish("none" if self.parents_ok else "recovered")
        if self.parents_ok:
            return self.finish("local")
        if not self.inputs_usable or cgi is None or cgi:
            return self.finish("propagated")
        return self.finish("local")

    def complete(self, completion: Completion) -> HopRecord:
        """A completion's figures onto the record, then parse, check, attribute."""
        rec = self.record
        rec.completion = completion.text
        rec.prompt_tokens, rec.completion_tokens = completion.prompt_tokens, completion.completion_tokens
        rec.cached_tokens, rec.ttft_s = completion.cached_tokens, completion.ttft_s
        rec.prefill_s, rec.decode_s = completion.prefill_s, completion.decode_s
        rec.peak_mem_bytes = completion.peak_mem_bytes
        rec.timing_source, rec.tokens_source = completion.timing_source, completion.tokens_source
        rec.stop_reason = completion.finish_reason
        value = parse_answer(completion.text, self.spec.parse)
        if isinstance(value, ParseFailure):
            rec.parse_error = value.reason
            if rec.stop_reason == "length":
                return self.finish("truncated", self._cut(value.reason))
            # unusable inputs (a parent's answer was missing) make this hop's failure inherited
            return self.finish("parse" if self.inputs_usable else "propagated", value.reason)
        judged = self.judge(value)
        if rec.stop_reason == "length" and not rec.correct and rec.correct_given_inputs is not True:
            # a cut-off answer is not an answer: its last number is no local error
            return self.finish("truncated", self._cut(f"parsed {value!r} from the cut-off text"))
        return judged

    def _cut(self, what: str) -> str:
        return (f"the completion reached the token budget (max_tokens={self.spec.max_tokens}) before it "
                f"ended; {what}")


# --------------------------------------------------------------------------------------------
# one backend call's figures, shared out over the hops it answered


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


def _batch_times(results: list[Any]) -> tuple[float | None, float | None]:
    """A batch call's own prefill and decode times: as the backend measured them when it decoded
    the requests together ("attributed"), else the sums of their own times."""
    completions = [r for r in results if not isinstance(r, BaseException)]
    attributed = [c for c in completions if c.batch_timing == "attributed"]
    if attributed:
        return attributed[0].batch_prefill_s, attributed[0].batch_decode_s
    return _sum([c.prefill_s for c in completions]), _sum([c.decode_s for c in completions])


def _put_energy(rec: HopRecord, reading: EnergyReading) -> None:
    rec.energy_j = reading.joules
    rec.energy_kind = reading.kind
    rec.energy_source = reading.source
    rec.energy_resolution_j = reading.resolution_j
    rec.energy_note = reading.note
    rec.energy_below_resolution = reading.below_resolution


@dataclass
class _CallFigures:
    """What was measured around one backend call."""

    wall_s: float
    reading: EnergyReading
    peak_rss: int | None
    peak_gpu: int | None


# --------------------------------------------------------------------------------------------
# the executor


class RunExecutor:
    """Runs the instances of one run against one loaded backend, committing every hop.

    Holds what the runs of one backend share; each :meth:`run` gets its own state."""

    def __init__(
        self,
        store: RunStore,
        backend: Backend,
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

    def run(self, run: RunRead, scenario: Scenario) -> RunRead:
        """Record every hop of ``run`` not recorded yet (all of them, unless it is resumed)."""
        return _RunInProgress(self, run, scenario).execute()


def _end_status(exc: BaseException) -> tuple[str, str]:
    """The status and error a run ends with when ``exc`` stops it."""
    if isinstance(exc, Cancelled):
        return "interrupted", str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "interrupted by the user"
    if isinstance(exc, AgentsimError):
        return "failed", str(exc)
    return "failed", f"{type(exc).__name__}: {exc}"


class _RunInProgress:
    """One run's state while it executes: counters, what a resume found stored, memory probes."""

    def __init__(self, ex: RunExecutor, run: RunRead, scenario: Scenario) -> None:
        self.ex, self.store, self.backend = ex, ex.store, ex.backend
        self.run, self.scenario = run, scenario
        self.batch = batch_size_of(run)
        self.total = run.n_instances * len(scenario.order)
        recorded = self.store.hops(run.id)
        self.recorded: dict[int, dict[str, HopRead]] = {}
        for h in recorded:
            self.recorded.setdefault(h.instance_index, {})[h.hop_id] = h
        self.finished = {i.index for i in self.store.instances(run.id) if i.finished}
        self.counters = RunCounters(hops_done=len(recorded), correct=sum(1 for h in recorded if h.correct),
                                    hops_before=len(recorded))
        self.t0 = time.perf_counter()
        self.rss, self.gpu_mem = PeakRSS(), GPUPeakMemory()

    # the run's life ---------------------------------------------------------------------
    def execute(self) -> RunRead:
        run_token = self.ex.meter.begin()
        status, error = "complete", None
        self._post()
        try:
            pending = [i for i in range(self.run.n_instances) if not self._whole(i)]
            for start in range(0, len(pending), self.batch):
                self._run_group(pending[start:start + self.batch])
        except BaseException as exc:
            status, error = _end_status(exc)
            raise
        finally:
            updated = self._close(run_token, status, error)
        return updated

    def _whole(self, index: int) -> bool:
        return index in self.finished and len(self.recorded.get(index, {})) == len(self.scenario.order)

    def _close(self, run_token: Any, status: str, error: str | None) -> RunRead:
        reading = self.ex.meter.end(run_token)
        self.rss.close()
        updated = self.store.update_run(
            self.run.id,
            **self._backend_notes(),
            status=status,
            error=error,
            finished_at=utcnow(),
            pid=None,
            run_energy_j=reading.joules,
            run_energy_kind=reading.kind,
            run_energy_source=reading.source,
            run_energy_resolution_j=reading.resolution_j,
            run_energy_note=reading.note,
            run_energy_hops=self.counters.hops_done - self.counters.hops_before,
        )
        self._post(status, error)
        return updated

    def _backend_notes(self) -> dict[str, Any]:
        """The backend's info as it stands at the end of the run, with the notes it gathered while
        running (a server that refused a field, a grammar it could not apply) added to those
        stored before: ``{"backend_info": ...}``, or nothing when the backend cannot say."""
        try:
            now = self.backend.info().run_fields()["backend_info"]
        except Exception:  # noqa: BLE001 - a backend that crashed keeps what was stored at its start
            return {}
        before = dict(self.run.backend_info or {})
        notes = list(dict.fromkeys([*before.get("notes", []), *now.get("notes", [])]))
        merged = {**before, **now}
        if notes:
            merged["notes"] = notes
        return {} if merged == before else {"backend_info": merged}

    def _post(self, status: str = "running", message: str | None = None) -> None:
        if self.ex.progress is None:
            return
        run, c = self.run, self.counters
        self.ex.progress(Progress(run.id, run.backend, run.scenario_label or run.scenario, run.mode, c.hops_done,
                                  self.total, c.correct, len(self.finished), run.n_instances,
                                  time.perf_counter() - self.t0, status, message))

    def _check_cancel(self) -> None:
        if self.ex.cancel is not None and self.ex.cancel():
            raise Cancelled(f"run cancelled; resume it with agentsim run --resume {self.run.id}")

    def _store(self, state: _InstanceState, rec: HopRecord) -> None:
        """Commit one hop and count it; too many backend failures in a row stop the run."""
        saved = self.store.record_hop(rec)
        state.record(saved.hop_id, saved)
        self.counters.count(saved)
        if self.counters.backend_errors_in_a_row >= self.ex.max_errors:
            raise BackendError(f"backend failed {self.counters.backend_errors_in_a_row} hops in a row; "
                               f"last error: {saved.error_detail}")
        self._post()

    # instances ----------------------------------------------------------------------------
    def _open_instance(self, index: int) -> _InstanceState:
        """Draw instance ``index``, record it (once), and restore the hops already stored."""
        run, scenario = self.run, self.scenario
        inst = scenario.instance(run.seed, index)
        system = scenario.render_system(inst)
        self.store.ensure_instance(
            InstanceRecord(run_id=run.id, index=index, seed=run.seed, vars=inst.vars,
                           expected=inst.expected, system_prompt=system)
        )
        state = _InstanceState(inst, system)
        recorded = self.recorded.get(index, {})
        for hop_id in scenario.order:
            if hop_id in recorded:
                state.record(hop_id, recorded[hop_id])
        return state

    def _close_instance(self, index: int, state: _InstanceState) -> None:
        order, sinks = self.scenario.order, self.scenario.sinks
        self.store.finish_instance(
            self.run.id,
            index,
            success=all(state.outcomes[h].correct for h in order),
            final_correct=all(state.outcomes[h].correct for h in sinks),
            root_causes=[h for h in order if state.kinds[h] in ORIGIN_KINDS],
        )
        self.finished.add(index)

    def _ready(self, group: dict[int, _InstanceState]) -> list[tuple[_InstanceState, int, str]]:
        """The hops of ``group`` whose parents are all recorded, instance by instance in
        topological order. At batch 1 only the first: one hop at a time, in order."""
        order = self.scenario.order
        ready = [(st, topo, hop_id)
                 for st in group.values()
                 for topo, hop_id in enumerate(order)
                 if hop_id not in st.outcomes
                 and all(p in st.outcomes for p in self.scenario.hop(hop_id).depends_on)]
        return ready[:1] if self.batch == 1 else ready

    def _run_group(self, indices: list[int]) -> None:
        """``indices`` advance together. At every step their ready hops are prepared; tool hops
        (and hops whose template failed) are recorded at once, the LLM hops go to the backend
        in one call, and every hop is committed as soon as the call returns (a killed run
        loses at most that call)."""
        group = {i: self._open_instance(i) for i in indices}
        while ready := self._ready(group):
            self._check_cancel()
            calls: list[tuple[_InstanceState, _HopDraft]] = []
            for st, topo, hop_id in ready:
                draft = self._prepare(st, hop_id, topo)
                if draft.request is not None:
                    calls.append((st, draft))
                else:
                    self._store(st, draft.record)
            if calls:
                for (st, _), rec in zip(calls, self._call([d for _, d in calls]), strict=True):
                    self._store(st, rec)
        for index, st in group.items():
            self._close_instance(index, st)

    # a backend call -------------------------------------------------------------------------
    def _call(self, drafts: list[_HopDraft]) -> list[HopRecord]:
        """One backend call for the prepared hops, measured once (wall time, energy, peak memory).
        At batch 1 it is ``generate`` for one hop, whose figures are its own; at batch > 1 it
        is ``generate_batch``: each hop gets its share (by tokens) of the call's wall time and
        energy, and keeps the call's own figures in the ``batch_*`` columns."""
        requests = [d.request for d in drafts]
        results, figures = self._measured(requests)
        batched = self.batch > 1
        n = len(drafts)
        shares = _weights(results) if batched else [1.0] * n
        batch_prefill, batch_decode = _batch_times(results) if batched else (None, None)
        out: list[HopRecord] = []
        for draft, result, share in zip(drafts, results, shares, strict=True):
            rec = draft.record
            rec.wall_s = figures.wall_s * share
            _put_energy(rec, _share_reading(figures.reading, share, n) if batched else figures.reading)
            rec.peak_rss_bytes, rec.peak_gpu_mem_bytes = figures.peak_rss, figures.peak_gpu
            if batched:
                rec.batch_n, rec.batch_share, rec.batch_wall_s = n, share, figures.wall_s
                rec.batch_prefill_s, rec.batch_decode_s = batch_prefill, batch_decode
            if isinstance(result, BaseException):
                out.append(draft.backend_failed(result))
            else:
                if batched:
                    rec.batch_timing = result.batch_timing or "own"
                out.append(draft.complete(result))
            if rec.peak_mem_bytes is None:  # the backend reported no peak of its own
                rec.peak_mem_bytes = figures.peak_rss
        return out

    def _measured(self, requests: list[Any]) -> tuple[list[Any], _CallFigures]:
        """The backend's answers (an exception in the slot of a request that failed) and what
        was measured around the call."""
        n = len(requests)
        self.rss.begin()
        self.gpu_mem.begin()
        token = self.ex.meter.begin()
        t0 = time.perf_counter()
        results: list[Any]
        try:
            if self.batch > 1:
                results = list(self.backend.generate_batch(requests, return_exceptions=True))
                if len(results) != n:
                    raise BackendError(f"generate_batch answered {len(results)} of {n} requests")
            else:
                results = [self.backend.generate(requests[0])]
        except (KeyboardInterrupt, Cancelled):
            raise
        except Exception as exc:  # noqa: BLE001 - a backend crash fails the hops of its call, recorded
            results = [exc] * n
        wall = time.perf_counter() - t0
        reading = self.ex.meter.end(token)
        return results, _CallFigures(wall, reading, self.rss.end(), self.gpu_mem.end())

    # preparing a hop --------------------------------------------------------------------
    def _prepare(self, state: _InstanceState, hop_id: str, topo: int) -> _HopDraft:
        """A hop up to its backend call: its inputs, expectations and record, judged by its
        parents exactly as at batch 1. A tool hop (or a hop whose template failed) comes back
        finished, with no request."""
        run, scenario, inst, outcomes = self.run, self.scenario, state.inst, state.outcomes
        spec = scenario.hop(hop_id)
        parents = list(spec.depends_on)
        ctx = inst.context(scenario.spec.world)
        # judged by the parents its answer uses (its inputs, per instance where the hop declares
        # them); the rest of depends_on is prompting context (scenario.attribution)
        used = input_parents(spec, parents, ctx)
        if run.mode == "oracle":
            inputs = {p: inst.expected[p] for p in parents}
            parents_ok = True
        else:
            inputs = {p: outcomes[p].value for p in parents}
            parents_ok = all(outcomes[p].correct for p in used)
        inputs_usable = all(inputs[p] is not _MISSING for p in used)
        # a parent without a parsed value hands on its raw completion, as an agent pipeline would
        ctx.update({p: (outcomes[p].raw if v is _MISSING else v) for p, v in inputs.items()})
        expected_given: Any = _MISSING
        if inputs_usable:
            try:
                expected_given = Scenario.expected_given(spec, ctx)
            except Exception:  # noqa: BLE001 - a wrong input can make the expectation undefined
                expected_given = _MISSING
        inherited = sorted({r for p in used if not outcomes[p].correct for r in (state.roots.get(p) or [p])},
                           key=scenario.order.index)
        record = HopRecord(
            run_id=run.id, instance_index=inst.index, hop_id=hop_id, topo_index=topo,
            depth=scenario.depth[hop_id], kind=spec.kind, parents=parents, inputs=used, expected=inst.expected[hop_id],
            expected_given_inputs=None if expected_given is _MISSING else expected_given, parents_ok=parents_ok,
        )
        draft = _HopDraft(record, spec, inst.expected[hop_id], expected_given, parents_ok, inputs_usable, inherited)
        if spec.kind == "tool":
            self._run_tool(draft, ctx)
        else:
            self._render(draft, state, ctx)
        return draft

    def _render(self, draft: _HopDraft, state: _InstanceState, ctx: dict[str, Any]) -> None:
        """An LLM hop's prompt and request; a template that fails finishes the hop."""
        spec, hop_id, run = draft.spec, draft.record.hop_id, self.run
        messages, recorded = None, None
        try:
            if spec.messages:  # a recorded chat (agentsim import trace)
                messages, prompt, recorded = spec.chat(ctx)
            else:
                prompt = expr.render(spec.prompt or "", ctx)
        except LimitExceeded as exc:
            # a limit hit at run time (the inputs a hop received can be larger than the expected
            # ones): say where in the file, and which limit
            where = exc.located(source=self.scenario.source, line=self.scenario.line_of(hop_id, "prompt"),
                                hop=hop_id, field="prompt")
            draft.fail(f"prompt template failed: {where}")
            return
        except Exception as exc:  # noqa: BLE001
            draft.fail(f"prompt template failed: {exc}")
            return
        draft.record.prompt = prompt if recorded is None else recorded
        from agentsim.backends.base import GenerationRequest

        simulated = bool(getattr(self.backend, "SIMULATED", False))
        given = draft.expected_given
        draft.request = GenerationRequest(
            prompt=prompt,
            system=state.system,
            max_tokens=spec.max_tokens,
            stop=list(spec.stop),
            grammar=spec.grammar,
            seed=run.seed,
            hop_id=hop_id,
            instance_key=f"{run.scenario}:{state.inst.seed}:{state.inst.index}",
            # the answer is for simulations only: a model backend sees the prompt alone
            expected=None if not simulated or given is _MISSING else given,
            parse=spec.parse,
            messages=messages,
            tools=spec.tools if messages is not None else None,
        )

    @staticmethod
    def _run_tool(draft: _HopDraft, ctx: dict[str, Any]) -> None:
        spec, rec = draft.spec, draft.record
        t0 = time.perf_counter()
        try:
            args = {k: expr.evaluate(v, ctx) for k, v in spec.args.items()}
            rec.prompt = f"{spec.tool}(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")"
            value = call_tool(spec.tool, args)
        except (ToolError, Exception) as exc:  # noqa: BLE001 - tool errors are hop outcomes
            rec.wall_s = time.perf_counter() - t0
            detail = str(exc) if isinstance(exc, ToolError) else f"{type(exc).__name__}: {exc}"
            rec.completion = None
            draft.fail(f"tool error: {detail}")
            return
        rec.wall_s = time.perf_counter() - t0
        value = jsonable(value)
        rec.completion = repr(value)
        draft.judge(value)
