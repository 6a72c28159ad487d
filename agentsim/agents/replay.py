"""Replay: the reference run's recorded requests re-sent verbatim to another rung, each call's answer
scored against the recorded one: a rung's local error rate per call, with its inputs held right
(agentsim's oracle mode for agents).

A replay run is an ordinary run in mode ``oracle`` with the reference's scenario, fingerprint,
seed and instances, so paired statistics compare replays of one reference rung by rung. Its hops
keep the reference's hop ids, parents and depths; tool hops are copied as they were (the agent's
own code answered them). An instance succeeds when every call of it agrees with the reference.
Replaying the reference rung itself gives the noise floor (llama.cpp greedy decoding: every call
agrees, unless batching or threads change the arithmetic).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentsim.errors import AgentsimError
from agentsim.store import RunRead, Store

from .run import order_rungs

__all__ = ["replay", "ReplayProgress"]


@dataclass
class ReplayProgress:
    spec: str
    instance: int
    calls: int
    agreed: int
    instances: int


def _source_run(store: Store, run_id: int) -> RunRead:
    run = store.get_run(run_id)
    if (run.scenario_ref or {}).get("kind") != "agent":
        raise AgentsimError(f"run {run_id} is not an agent run: replay re-sends an agent's recorded calls",
                            hint="agentsim agent run ... records one; agentsim runs lists them")
    if run.mode != "free":
        raise AgentsimError(f"run {run_id} is itself a replay (mode {run.mode}); replay its reference run")
    return run


def replay(store: Store, run_id: int, backends: Sequence[str], *, check: str | None = None,
           energy: str = "auto", progress: Callable[[ReplayProgress], None] | None = None,
           keep_going: bool = True) -> tuple[list[RunRead], list[tuple[str, AgentsimError]]]:
    """Replay run ``run_id``'s calls at every rung in ``backends``; returns (runs, failures)."""
    from agentsim.backends.base import create_backend
    from agentsim.measure import make_meter
    from agentsim.serve import AgentRunSpec, Serving
    from agentsim.serve.chat import TEXT_CHECKS, parse_request
    from agentsim.serve.recorder import Reference

    source = _source_run(store, run_id)
    text_check = check or (source.scenario_ref or {}).get("text_check") or "normalized"
    if text_check not in TEXT_CHECKS:
        raise AgentsimError(f"unknown check {text_check!r}", hint=f"one of {', '.join(TEXT_CHECKS)}")
    if not backends:
        raise AgentsimError("no backend given to replay at", hint="-b llama:qwen2.5-coder-0.5b@q4_0")
    specs = order_rungs(list(backends))
    for s in specs:
        create_backend(s)
    reference = Reference.load(store, run_id, text_check)
    finished = [i for i in store.instances(run_id) if i.finished]
    hops_by_instance = {i.index: store.hops(run_id, i.index) for i in finished}
    launch_id = uuid.uuid4().hex[:12]
    runs: list[RunRead] = []
    failures: list[tuple[str, AgentsimError]] = []
    meter = make_meter(energy)
    try:
        for spec in specs:
            try:
                run = AgentRunSpec(ref=dict(source.scenario_ref or {}), mode="oracle", seed=source.seed,
                                   n_instances=source.n_instances, launch_id=launch_id,
                                   params=dict(source.params or {}))
                serving = Serving(spec, store=store, run=run, meter=meter, reference=reference)
            except AgentsimError as exc:
                failures.append((spec, exc))
                if not keep_going:
                    break
                continue
            store.update_run(serving.run.id, backend_info={**serving.run.backend_info,
                                                           "agent": {"replay_of": run_id, "check": text_check}})
            serving.start()
            status, error = "complete", None
            try:
                for inst in finished:
                    _replay_instance(serving, reference, inst, hops_by_instance[inst.index], parse_request)
                    rec = serving.recorder
                    ok = rec.instance_correct(inst.index)
                    store.finish_instance(serving.run.id, inst.index, success=ok, final_correct=ok,
                                          root_causes=rec.origins(inst.index))
                    if progress is not None:
                        calls = [h for h in store.hops(serving.run.id, inst.index) if h.kind == "llm"]
                        progress(ReplayProgress(spec, inst.index, len(calls), sum(h.correct for h in calls),
                                                len(finished)))
            except KeyboardInterrupt:
                status, error = "interrupted", "interrupted by the user"
                raise
            except BaseException as exc:
                status, error = "failed", f"{type(exc).__name__}: {exc}"
                raise
            finally:
                runs.append(serving.close(status=status, error=error))
    finally:
        meter.close()
    return runs, failures


def _replay_instance(serving: Any, reference: Any, inst: Any, hops: list[Any], parse_request: Any) -> None:
    serving.recorder.open_instance(inst.index, inst.seed)
    calls = {c.hop_id: c for c in reference.calls.get(inst.index, [])}
    for hop in sorted(hops, key=lambda h: h.topo_index):
        if hop.kind == "tool":
            serving.recorder.copy_tool_hop(inst.index, hop)
            continue
        call = calls.get(hop.hop_id)
        if call is None:
            continue
        body = dict(call.request)
        body["model"] = ""  # the request goes to this rung's model, whatever the reference's was named
        req = parse_request(body)
        try:
            asyncio.run(serving.service.serve(inst.index, req, replay_of=call))
        except Exception as exc:  # noqa: BLE001 - a refused call is recorded (a backend hop) and replay goes on
            if type(exc).__name__ != "RequestError":
                raise
