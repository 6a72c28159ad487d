"""Every served request a hop of a run: its DAG from conversation continuation, its judgement
against a reference run's calls.

A request *continues* an earlier call of the same instance when its messages begin with that
call's messages followed by that call's answer (compared by :func:`agentsim.serve.chat.canonical`:
ids and spacing aside); the longest such call is its parent. A ``tool`` message answering a call's
``tool_call_id`` is recorded once as a *tool hop* (kind ``tool``: the call, the result the agent
sent), child of the call that asked for it and parent of the request that carries it. Hop ids are
``c1, c2, ...`` in order of arrival within the instance (tool hops ``c1.t0``, ...).

Judging (see docs/agents.md). A run with a *reference* (the same agent and instances at the
reference rung) judges every call when it is recorded:

========== ===================================================================================
none       the reference made a call with these very inputs, and this answer agrees with its answer
local      the reference made a call with these inputs, and this answer differs (the rung's own error)
recovered  no reference call had these inputs (the conversation diverged), yet the answer agrees
           with the reference's call at the same position
propagated the conversation had diverged, and the answer differs (or the reference made fewer calls)
backend    the backend could not answer (context too long, unknown model, a crash)
========== ===================================================================================

A run without a reference *is* the reference: its calls are right by definition (error ``none``)
and only backend failures count against it. Its task success comes from the agent's check.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from agentsim.store import HopRecord, InstanceRecord, Run, RunRead, Store
from agentsim.values import jsonable

from .chat import ChatRequest, answer_message, canonical, same_answer

__all__ = ["Recorder", "CallOutcome", "Reference", "agent_fingerprint", "AgentRunSpec", "serve_ref", "new_agent_run",
           "RecordedCall",
           "recorded_calls"]


def agent_fingerprint(ref: dict[str, Any]) -> str:
    """What makes two agent runs comparable instance by instance: the agent's command, its check and
    its name (instances and seed are compared beside it, as for scenario runs)."""
    core = {k: ref.get(k) for k in ("kind", "name", "command", "check", "source")}
    return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AgentRunSpec:
    """What the stored run of an agent (or of a plain ``serve``) says it ran: the agent's
    ``scenario_ref`` (``kind: agent``, its name, command and check), the mode, seed and number of
    instances, the launch it belongs to and its parameters."""

    ref: dict[str, Any] = field(default_factory=lambda: serve_ref())
    mode: str = "free"
    seed: int = 0
    n_instances: int = 1
    launch_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def serve_ref(name: str = "serve") -> dict[str, Any]:
    """The scenario reference of a plain ``agentsim serve`` run named ``name``."""
    return {"kind": "agent", "name": name, "source": "serve"}


def new_agent_run(store: Store, backend: Any, meter: Any, spec: AgentRunSpec) -> RunRead:
    """Create the stored run of an agent (or of a plain ``serve``) against one loaded backend
    (its backend and node columns from :func:`agentsim.engine.run_fields_here`, as every run's)."""
    from agentsim.engine import run_fields_here

    ref = dict(spec.ref)
    run = Run(
        scenario=f"agent:{ref.get('name') or 'agent'}",
        scenario_ref=ref,
        scenario_fingerprint=agent_fingerprint(ref),
        params=dict(spec.params),
        backend=str(backend.spec),
        mode=spec.mode,
        seed=spec.seed,
        n_instances=spec.n_instances,
        hops_per_instance=0,  # an agent makes as many calls as it makes: no fixed count
        launch_id=spec.launch_id,
        batch_size=1,
        **run_fields_here(backend, meter),
    )
    return store.create_run(run)


@dataclass
class RecordedCall:
    """One stored call as replay and judging read it."""

    hop_id: str
    request: dict[str, Any]
    answer: dict[str, Any]
    canon: list[str]
    error_kind: str
    parents: list[str] = field(default_factory=list)
    depth: int = 1


def recorded_calls(store: Store, run_id: int) -> dict[int, list[RecordedCall]]:
    """The LLM calls of a stored agent run, per instance, in order of arrival."""
    out: dict[int, list[RecordedCall]] = {}
    for h in store.hops(run_id):
        if h.kind != "llm" or not h.prompt:
            continue
        try:
            request = json.loads(h.prompt)
        except ValueError:
            continue
        answer = (h.parsed or {}).get("message") if isinstance(h.parsed, dict) else None
        out.setdefault(h.instance_index, []).append(RecordedCall(
            h.hop_id, request, answer or {"role": "assistant", "content": h.completion},
            canonical(request.get("messages") or []), h.error_kind, list(h.parents), h.depth))
    for calls in out.values():
        calls.sort(key=lambda c: _order(c.hop_id))
    return out


def _order(hop_id: str) -> tuple[int, str]:
    head = hop_id.split(".")[0].lstrip("c")
    return (int(head) if head.isdigit() else 10**9, hop_id)


@dataclass
class Reference:
    """The reference run's calls, to judge another run's calls by."""

    run_id: int
    calls: dict[int, list[RecordedCall]]
    check: str = "normalized"

    @classmethod
    def load(cls, store: Store, run_id: int, check: str = "normalized") -> Reference:
        return cls(run_id, recorded_calls(store, run_id), check)


@dataclass
class CallOutcome:
    """What came back for one request: the answer, or the failure, with the backend's figures."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    text: str | None = None  # the raw completion
    finish_reason: str | None = None
    completion: Any = None  # backends.base.Completion
    error: str | None = None
    wall_s: float | None = None
    reading: Any = None  # measure.EnergyReading
    batch_n: int | None = None
    batch_share: float | None = None
    batch_wall_s: float | None = None
    batch_timing: str | None = None


@dataclass
class _Hop:
    hop_id: str
    canon_with_answer: list[str]
    depth: int
    correct: bool
    kind: str
    roots: list[str]


@dataclass
class _InstanceLog:
    hops: list[_Hop] = field(default_factory=list)
    calls: dict[str, tuple[str, dict[str, Any], int]] = field(default_factory=dict)  # tool call id -> (hop, call, depth)
    tool_hops: dict[str, str] = field(default_factory=dict)  # tool call id -> tool hop id
    n_llm: int = 0
    topo: int = 0


class Recorder:
    """Records the calls of one run (thread-safe); one per served rung."""

    def __init__(self, store: Store, run: RunRead, reference: Reference | None = None) -> None:
        self.store = store
        self.run = run
        self.reference = reference
        self._lock = threading.RLock()
        self._logs: dict[int, _InstanceLog] = {}
        self._n_instances = run.n_instances

    # instances ---------------------------------------------------------------------------
    def open_instance(self, index: int, seed: int, facts: dict[str, Any] | None = None) -> None:
        """Record instance ``index`` (once) and start its call log afresh."""
        with self._lock:
            self.store.ensure_instance(InstanceRecord(run_id=self.run.id, index=index, seed=seed,
                                                      vars=dict(facts or {}), expected={}))
            self._logs[index] = _InstanceLog()
            if index >= self._n_instances:
                self._n_instances = index + 1
                self.store.update_run(self.run.id, n_instances=self._n_instances)

    def _log(self, index: int) -> _InstanceLog:
        log = self._logs.get(index)
        if log is None:  # a plain serve: an instance appears with its first request
            self.open_instance(index, self.run.seed + index)
            log = self._logs[index]
        return log

    def instance_correct(self, index: int) -> bool:
        """Every call of the instance judged right (the oracle-mode task success of a replay)."""
        log = self._logs.get(index)
        return bool(log) and all(h.correct for h in log.hops)  # type: ignore[union-attr]

    def origins(self, index: int) -> list[str]:
        log = self._logs.get(index)
        if log is None:
            return []
        return sorted({r for h in log.hops if not h.correct for r in h.roots}, key=_order)

    # calls -------------------------------------------------------------------------------
    def record(self, index: int, req: ChatRequest, outcome: CallOutcome,
               replay_of: RecordedCall | None = None) -> HopRecord:
        """Store one call (and the tool hops its messages answer) and return the stored hop.
        ``replay_of``: the reference call this request re-sends (replay): the hop takes its id, its
        parents and its depth, and is judged against its answer alone (inputs held right)."""
        with self._lock:
            log = self._log(index)
            canon = canonical(req.messages)
            log.n_llm += 1
            if replay_of is not None:
                parents, depth, hop_id = list(replay_of.parents), replay_of.depth, replay_of.hop_id
            else:
                parents, depth = self._parents(index, log, req, canon)
                hop_id = f"c{log.n_llm}"
            answer = answer_message(outcome.content, outcome.tool_calls)
            trace = HopRecord(run_id=self.run.id, instance_index=index, hop_id=hop_id, topo_index=log.topo,
                                  depth=depth, kind="llm", parents=parents,
                                  prompt=json.dumps(jsonable(req.recorded()), ensure_ascii=False))
            log.topo += 1
            c = outcome.completion
            if c is not None:
                for attr in ("prompt_tokens", "completion_tokens", "cached_tokens", "prefill_s", "decode_s",
                             "ttft_s", "peak_mem_bytes"):
                    setattr(trace, attr, getattr(c, attr))
                trace.stop_reason = c.finish_reason  # agentsim's words (eos / stop / grammar / length)
            trace.wall_s = outcome.wall_s
            for attr in ("batch_n", "batch_share", "batch_wall_s", "batch_timing"):
                setattr(trace, attr, getattr(outcome, attr))
            r = outcome.reading
            if r is not None:
                trace.energy_j, trace.energy_kind, trace.energy_source = r.joules, r.kind, r.source
                trace.energy_resolution_j, trace.energy_note = r.resolution_j, r.note
                trace.energy_below_resolution = r.below_resolution
            parent_hops = [h for h in log.hops if h.hop_id in parents]
            inherited = sorted({x for h in parent_hops if not h.correct for x in h.roots}, key=_order)
            roots: list[str] = []
            if outcome.error is not None:
                trace.error_kind, trace.error_detail, trace.correct = "backend", outcome.error, False
                trace.parse_error = None
                roots = [hop_id]
            else:
                trace.completion = outcome.text
                trace.parsed = {"message": answer, "finish_reason": outcome.finish_reason}
                if replay_of is not None:
                    self._judge_replay(trace, replay_of, answer, hop_id)
                else:
                    self._judge(trace, index, log, canon, answer, hop_id, inherited)
                roots = list(trace.root_cause)
            trace.root_cause = roots
            saved = self.store.record_hop(trace)
            log.hops.append(_Hop(hop_id, canon + canonical([answer]), depth, bool(trace.correct), "llm", roots))
            for call in outcome.tool_calls:
                log.calls[call["id"]] = (hop_id, call, depth)
            return saved

    def _parents(self, index: int, log: _InstanceLog, req: ChatRequest, canon: list[str]) -> tuple[list[str], int]:
        """The call this request continues and the tool results it carries (recorded here as tool
        hops, once each); the request's depth is one more than its deepest parent's."""
        parents: list[str] = []
        depth = 1
        best: _Hop | None = None
        for h in log.hops:
            if h.kind == "llm" and len(h.canon_with_answer) <= len(canon) and \
                    canon[:len(h.canon_with_answer)] == h.canon_with_answer:
                if best is None or len(h.canon_with_answer) > len(best.canon_with_answer):
                    best = h
        if best is not None:
            parents.append(best.hop_id)
            depth = best.depth + 1
        for m in req.messages:
            if m.get("role") != "tool":
                continue
            cid = m.get("tool_call_id")
            if cid in log.tool_hops:
                tid = log.tool_hops[cid]
            elif cid in log.calls:
                tid = self._tool_hop(index, log, cid, m)
            else:
                continue
            if tid not in parents:
                parents.append(tid)
            tdepth = next((h.depth for h in log.hops if h.hop_id == tid), 1)
            depth = max(depth, tdepth + 1)
        return parents, depth

    def _tool_hop(self, index: int, log: _InstanceLog, cid: str, message: dict[str, Any]) -> str:
        caller, call, cdepth = log.calls[cid]
        k = sum(1 for t in log.tool_hops.values() if t.startswith(caller + "."))
        tid = f"{caller}.t{k}"
        fn = call.get("function") or {}
        caller_hop = next(h for h in log.hops if h.hop_id == caller)
        trace = HopRecord(run_id=self.run.id, instance_index=index, hop_id=tid, topo_index=log.topo,
                              depth=cdepth + 1, kind="tool", parents=[caller],
                              prompt=f"{fn.get('name')}({fn.get('arguments')})",
                              completion=message.get("content"), parsed={"tool_call_id": cid,
                                                                         "content": message.get("content")})
        log.topo += 1
        # a tool's result is what the agent's own code returned: right exactly when its call was
        trace.correct = caller_hop.correct
        trace.parents_ok = caller_hop.correct
        trace.error_kind = "none" if caller_hop.correct else "propagated"
        trace.root_cause = [] if caller_hop.correct else list(caller_hop.roots)
        self.store.record_hop(trace)
        log.tool_hops[cid] = tid
        log.hops.append(_Hop(tid, [], cdepth + 1, caller_hop.correct, "tool", list(trace.root_cause)))
        return tid

    def copy_tool_hop(self, index: int, hop: Any) -> HopRecord:
        """Replay: a reference tool hop recorded again as it was (its result is the agent's own
        code's, which replay holds right)."""
        with self._lock:
            log = self._log(index)
            trace = HopRecord(run_id=self.run.id, instance_index=index, hop_id=hop.hop_id, topo_index=log.topo,
                              depth=hop.depth, kind="tool", parents=list(hop.parents), prompt=hop.prompt,
                              completion=hop.completion, parsed=hop.parsed, expected=hop.completion,
                              correct=True, parents_ok=True, error_kind="none")
            log.topo += 1
            saved = self.store.record_hop(trace)
            log.hops.append(_Hop(hop.hop_id, [], hop.depth, True, "tool", []))
            return saved

    def _judge_replay(self, trace: Any, ref: RecordedCall, answer: dict[str, Any], hop_id: str) -> None:
        check = self.reference.check if self.reference is not None else "normalized"
        ok = same_answer(answer, ref.answer, check)
        trace.expected = trace.expected_given_inputs = ref.answer
        trace.correct = trace.correct_given_inputs = ok
        trace.parents_ok = True
        trace.error_kind = "none" if ok else "local"
        trace.root_cause = [] if ok else [hop_id]

    def _judge(self, trace: Any, index: int, log: _InstanceLog, canon: list[str], answer: dict[str, Any],
               hop_id: str, inherited: list[str]) -> None:
        ref = self.reference
        if ref is None:
            trace.correct, trace.error_kind, trace.parents_ok = True, "none", True
            return
        calls = ref.calls.get(index, [])
        same_inputs = next((c for c in calls if c.canon == canon), None)
        if same_inputs is not None:
            trace.expected = same_inputs.answer
            trace.expected_given_inputs = same_inputs.answer
            ok = same_answer(answer, same_inputs.answer, ref.check)
            trace.correct, trace.correct_given_inputs, trace.parents_ok = ok, ok, True
            trace.error_kind = "none" if ok else "local"
            trace.root_cause = [] if ok else [hop_id]
            if same_inputs.hop_id != hop_id:
                trace.error_detail = f"inputs as the reference's call {same_inputs.hop_id}"
            return
        at = next((c for c in calls if c.hop_id == hop_id), None)
        trace.parents_ok = False
        trace.expected = at.answer if at is not None else None
        ok = at is not None and same_answer(answer, at.answer, ref.check)
        trace.correct = ok
        trace.error_kind = "recovered" if ok else "propagated"
        trace.error_detail = ("inputs diverged from every reference call of this instance"
                              + ("" if at is not None else f"; the reference made no call {hop_id}"))
        # diverged without an earlier error of this rung (e.g. a tool's own nondeterminism): this call
        trace.root_cause = [] if ok else (inherited or self.origins(index) or [hop_id])
