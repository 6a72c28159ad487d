"""The teacher-forced pass: which reference, which hops, the backends' scores, the stored rows;
and the noise floor's pairing (the same rung at batch 1)."""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentsim.errors import AgentsimError
from agentsim.fidelity_tables import replace_fidelity
from agentsim.store import RunRead, Store, batch_size_of

from .metrics import hop_metrics, topk_hop_metrics

__all__ = ["METHOD", "default_reference", "check_reference", "ReferenceCache", "PassResult", "compute_fidelity",
           "fidelity_for_runs", "floor_partner", "same_rung"]

#: the pass's own identifier, stored with every row (bump when the computation changes)
METHOD = "teacher-forced v1"


# --------------------------------------------------------------------------------------------
# which reference


def _group(run: RunRead) -> tuple[Any, ...]:
    import json

    return (run.model, run.scenario, run.scenario_fingerprint, json.dumps(run.params, sort_keys=True, default=str),
            run.mode, run.seed, run.n_instances)


def default_reference(store: Store, run: RunRead) -> RunRead | None:
    """The top rung of the run's group among the stored complete runs -- the verdicts' default
    baseline rule (most bits; ties: lowest run id), except that among the top rung's runs one at
    the run's own batch size comes first (so that batching is not mixed into a rung's drift) --
    or None when that is the run itself or no such run exists."""
    from agentsim.precision import rung_bits

    def key(r: RunRead) -> tuple[float, int, int]:
        return (-rung_bits(r.precision), int(batch_size_of(r) != batch_size_of(run)), r.id)

    members = [r for r in store.list_runs() if _group(r) == _group(run) and r.status == "complete"]
    if run.id not in {r.id for r in members}:
        members.append(run)
    top = sorted(members, key=key)[0]
    return None if top.id == run.id else top


def check_reference(run: RunRead, ref: RunRead) -> None:
    """A reference must see the same instances: same scenario fingerprint, seed and count."""
    if ref.id == run.id:
        raise AgentsimError(f"run {run.id} cannot be its own reference", hint="give another run with --reference")
    problems = []
    if (ref.scenario_fingerprint or "") != (run.scenario_fingerprint or ""):
        problems.append("another scenario (fingerprint)")
    if ref.seed != run.seed or ref.n_instances != run.n_instances:
        problems.append(f"other instances (seed {ref.seed} x {ref.n_instances} vs {run.seed} x {run.n_instances})")
    if ref.mode != run.mode:
        problems.append(f"another mode ({ref.mode} vs {run.mode})")
    if problems:
        raise AgentsimError(f"run {ref.id} cannot be the reference of run {run.id}: " + "; ".join(problems),
                            hint="the reference must be a run of the same scenario, instances and mode")


# --------------------------------------------------------------------------------------------
# the reference's scores, cached across the rungs of one sweep


class ReferenceCache:
    """Scores by (role, backend spec, layout, system prompt, prompt, completion), least recently
    used first out, bounded in bytes (``AGENTSIM_FIDELITY_CACHE_MB``, default 512)."""

    def __init__(self, max_bytes: int | None = None) -> None:
        if max_bytes is None:
            max_bytes = int(float(os.environ.get("AGENTSIM_FIDELITY_CACHE_MB", "512")) * 2 ** 20)
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0

    @staticmethod
    def _size(scores: Any) -> int:
        lp = getattr(scores, "logprobs", None)
        return int(lp.nbytes) if isinstance(lp, np.ndarray) else 1024

    def get(self, key: tuple[Any, ...]) -> Any:
        v = self._items.get(key)
        if v is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return v

    def put(self, key: tuple[Any, ...], scores: Any) -> None:
        size = self._size(scores)
        if size > self.max_bytes:
            return
        if key in self._items:
            self._bytes -= self._size(self._items.pop(key))
        self._items[key] = scores
        self._bytes += size
        while self._bytes > self.max_bytes and self._items:
            _, old = self._items.popitem(last=False)
            self._bytes -= self._size(old)


# --------------------------------------------------------------------------------------------
# the pass


@dataclass
class _Item:
    instance_index: int
    hop_id: str
    topo_index: int
    request: Any
    completion: str


def _pairs(store: Store, run: RunRead, ref: RunRead) -> tuple[list[_Item], list[dict[str, Any]]]:
    """The hops to score (inputs identical to the reference's) and the rows of those that cannot
    be (diverged inputs, tool hops, the reference hop's failure)."""
    from agentsim.backends.base import GenerationRequest

    systems = {i.index: i.system_prompt for i in store.instances(run.id)}
    ref_systems = {i.index: i.system_prompt for i in store.instances(ref.id)}
    ref_hops = {(h.instance_index, h.hop_id): h for h in store.hops(ref.id)}
    items: list[_Item] = []
    skipped: list[dict[str, Any]] = []
    for h in store.hops(run.id):
        if h.kind == "tool":
            continue
        base = {"instance_index": h.instance_index, "hop_id": h.hop_id}
        r = ref_hops.get((h.instance_index, h.hop_id))
        if r is None:
            skipped.append({**base, "status": "unavailable", "reason": "the reference run has no such hop"})
        elif r.prompt is None or r.error_kind == "backend" or not r.completion:
            skipped.append({**base, "status": "unavailable",
                            "reason": "the reference hop has no completion to score" if r.prompt is not None
                            else "the reference hop had no prompt"})
        elif h.prompt != r.prompt or systems.get(h.instance_index) != ref_systems.get(h.instance_index):
            skipped.append({**base, "status": "diverged",
                            "reason": "inputs differ from the reference hop's (free mode: a parent's answer differed)"})
        else:
            items.append(_Item(h.instance_index, h.hop_id, h.topo_index,
                               GenerationRequest(prompt=r.prompt, system=ref_systems.get(h.instance_index)),
                               r.completion))
    return items, skipped


def _order(items: list[_Item], n_seq: int) -> list[_Item]:
    """Batch 1: an instance's hops one after the other (its prefix stays cached, as in the run);
    batch B: the same hop of B instances side by side, as the engine's lockstep batches are."""
    if n_seq <= 1:
        return sorted(items, key=lambda i: (i.instance_index, i.topo_index))
    return sorted(items, key=lambda i: (i.topo_index, i.instance_index))


def _n_seq(run: RunRead) -> int:
    return batch_size_of(run)


@dataclass
class PassResult:
    run_id: int
    reference_run_id: int
    hops: int
    compared: int
    seconds: float
    kind: str
    note: str | None = None
    #: hops whose two sides both came from what the backends computed while generating
    #: (``Backend.capture``), not scored again
    captured: int = 0


def compute_fidelity(store: Store, run_id: int, reference_id: int | None = None, *,
                     cache: ReferenceCache | None = None,
                     backends: dict[str, Any] | None = None,
                     make_backend: Callable[[str], Any] | None = None,
                     chunk: int = 16,
                     progress: Callable[[int, int], None] | None = None,
                     captures: dict[int, Any] | None = None) -> PassResult:
    """Score run ``run_id`` against its reference (default: :func:`default_reference`) and store
    one ``hop_fidelity`` row per model hop (earlier rows of the pair are replaced).

    ``backends``: loaded backends by spec string, reused and left open (a sweep's reference is
    loaded once); others are created with ``make_backend`` (default ``create_backend``), loaded
    when something must be scored, and closed here.

    ``captures``: run id -> the :class:`~agentsim.backends.base.ScoreCapture` its backend filled
    while it generated (a ``--fidelity`` launch). A hop whose reference completion both runs
    generated themselves (the reference always; the rung where it answered alike) takes both
    sides from there: the distributions the two runs sampled from, in their own layouts --
    what a teacher-forced pass recomputes, at none of its cost. Every other hop is scored
    teacher-forced on both sides (one source per comparison, never mixed).
    """
    from agentsim.backends.base import create_backend

    run = store.get_run(run_id)
    ref = _reference_of(store, run, reference_id)
    t0 = time.perf_counter()
    items, skipped = _pairs(store, run, ref)
    pool = _BackendPool(backends, make_backend or create_backend)
    rows: list[dict[str, Any]] = list(skipped)
    kind = "unavailable"
    note = None
    n_captured = 0
    try:
        ref_b = pool.get(ref.backend, load=False)
        rung_b = ref_b if ref.backend == run.backend else pool.get(run.backend, load=False)
        kinds = {ref_b.FIDELITY, rung_b.FIDELITY}
        if "none" in kinds:
            why = [f"{b.NAME} ({'a simulation: there is no model' if b.SIMULATED else b.FIDELITY_UNAVAILABLE})"
                   for b in (ref_b, rung_b) if b.FIDELITY == "none"]
            note = "unavailable: " + ", ".join(dict.fromkeys(why))
            rows += _unavailable(items, note)
            items = []
        else:
            kind = "exact" if kinds == {"exact"} else "topk"
        if items and captures:
            items, got = _from_captures(items, captures.get(ref.id), captures.get(run.id))
            rows += got
            n_captured = len(got)
            kind = _kind_of(rows, kind)
        if items and not (ref_b.FIDELITY_TEACHER_FORCED and rung_b.FIDELITY_TEACHER_FORCED):
            why = "unavailable: " + ", ".join(dict.fromkeys(
                f"{b.NAME} {b.FIDELITY_UNAVAILABLE}" for b in (ref_b, rung_b) if not b.FIDELITY_TEACHER_FORCED))
            if not captures:
                note = why
            rows += _unavailable(items, why)
            items = []
        if items:  # what the captures do not hold is scored teacher-forced: load the models
            ref_b = pool.get(ref.backend)
            rung_b = ref_b if ref.backend == run.backend else pool.get(run.backend)
        rows += _teacher_forced(items, (ref, ref_b), (run, rung_b), cache if cache is not None else ReferenceCache(),
                                chunk, progress)
    finally:
        pool.close()
    seconds = time.perf_counter() - t0
    # the k of a top-k estimate: the smaller of the two sides' lists (a backend's option)
    ks = [int(b.options["top_logprobs"]) for b in pool.made.values() if "top_logprobs" in getattr(b, "options", {})]
    top_k = min(ks) if ks else None
    compared = sum(1 for r in rows if r["status"] in ("exact", "topk"))
    replace_fidelity(store, run.id, ref.id, rows, method=METHOD, seconds=seconds,
                     layout={"rung_n_seq": _n_seq(run), "reference_n_seq": _n_seq(ref),
                             **({"captured_hops": n_captured} if n_captured else {}),
                             **({"top_k": top_k} if top_k and any(r["status"] == "topk" for r in rows) else {})},
                     note=note)
    return PassResult(run.id, ref.id, len(rows), compared, seconds, kind, note, n_captured)


def _reference_of(store: Store, run: RunRead, reference_id: int | None) -> RunRead:
    """The run ``run`` is scored against (``reference_id``, or :func:`default_reference`), checked."""
    if run.status != "complete":
        raise AgentsimError(f"run {run.id} is {run.status}: fidelity needs a complete run",
                            hint=f"finish it first: agentsim run --resume {run.id}")
    if reference_id is None:
        ref = default_reference(store, run)
        if ref is None:
            raise AgentsimError(f"run {run.id} has no reference run: it is the top rung of its model, scenario and mode",
                                hint="give one with --reference RUN")
    else:
        ref = store.get_run(int(reference_id))
    check_reference(run, ref)
    return ref


class _BackendPool:
    """The backends of one pass: those given (by spec, reused and left open; one this pass loads
    is added to them) and those made here (loaded only when something must be scored, closed by
    :meth:`close`)."""

    def __init__(self, given: dict[str, Any] | None, make: Callable[[str], Any]) -> None:
        self.given, self.make = given, make
        self.made: dict[str, Any] = {}
        self.opened: list[Any] = []

    def get(self, spec: str, load: bool = True) -> Any:
        if self.given is not None and spec in self.given:
            return self.given[spec]
        b = self.made.get(spec)
        if b is None:
            b = self.made[spec] = self.make(spec)
        if load and b not in self.opened:
            b.load()
            self.opened.append(b)
            if self.given is not None:
                self.given[spec] = b
        return b

    def close(self) -> None:
        for b in self.opened:
            if self.given is None:
                b.close()


def _unavailable(items: list[Any], reason: str) -> list[dict[str, Any]]:
    return [{"instance_index": i.instance_index, "hop_id": i.hop_id, "status": "unavailable", "reason": reason}
            for i in items]


def _teacher_forced(items: list[Any], reference: tuple[RunRead, Any], rung: tuple[RunRead, Any],
                    cache: ReferenceCache, chunk: int, progress: Callable[[int, int], None] | None) -> list[dict[str, Any]]:
    """The hops ``items`` scored teacher-forced by both runs' backends, each in its own run's
    layout (batch size), in parts of about ``chunk`` hops that hold whole batches of both."""
    (ref, ref_b), (run, rung_b) = reference, rung
    ref_seq, rung_seq = _n_seq(ref), _n_seq(run)
    rows: list[dict[str, Any]] = []
    done = 0
    if ref_seq != rung_seq:
        # the reference in its own order first (batch 1: an instance's hops one after the
        # other, its prefix cached, as in its run), held in the cache for the rung's parts
        ref_order = _order(items, ref_seq)
        ref_step = ref_seq * max(1, -(-chunk // ref_seq))
        for start in range(0, len(ref_order), ref_step):
            part = ref_order[start:start + ref_step]
            _scores("reference", ref_b, ref.backend, part, ref_seq, cache)
    ordered = _order(items, rung_seq)
    unit = math.lcm(rung_seq, ref_seq)  # parts hold whole batches of both layouts
    step = unit * max(1, -(-chunk // unit))
    for start in range(0, len(ordered), step):
        part = ordered[start:start + step]
        ref_scores = _scores("reference", ref_b, ref.backend, part, ref_seq, cache)
        rung_scores = _scores("rung", rung_b, run.backend, part, rung_seq, cache)
        for it, a, b in zip(part, ref_scores, rung_scores, strict=True):
            rows.append(_row(it, a, b))
        done += len(part)
        if progress:
            progress(done, len(ordered))
    return rows


def _from_captures(items: list[_Item], ref_cap: Any, run_cap: Any) -> tuple[list[_Item], list[dict[str, Any]]]:
    """The rows of the hops whose both sides are captured, and the items left to score."""
    if ref_cap is None or run_cap is None:
        return items, []
    left: list[_Item] = []
    rows: list[dict[str, Any]] = []
    for it in items:
        a = ref_cap.get(it.request.system, it.request.prompt, it.completion)
        b = run_cap.get(it.request.system, it.request.prompt, it.completion)
        if a is not None and b is None and a.kind == "topk":
            got = run_cap.entry(it.request.system, it.request.prompt)
            row = _topk_prefix_row(it, a, got[1] if got is not None else None)
            if row is not None:
                rows.append(row)
                continue
        if a is None or b is None or a.kind != b.kind:
            left.append(it)
        else:
            rows.append(_row(it, a, b))
    return left, rows


def _topk_prefix_row(it: _Item, a: Any, b: Any) -> dict[str, Any] | None:
    """A server's logprobs cover the tokens it generated: where the rung's answer parted from
    the reference's, their distributions are comparable up to the first token that differs
    (both saw the same text before it) -- that far and no further, said in the reason."""
    if b is None or b.kind != "topk" or not b.token_ids:
        return None
    n = 0
    while n < min(len(a.token_ids), len(b.token_ids)) and a.token_ids[n] == b.token_ids[n]:
        n += 1
    upto = min(n + 1, len(a.token_ids), len(b.token_ids))
    if upto < 1:
        return None
    from agentsim.backends.base import TokenScores

    cut_a = TokenScores("topk", list(a.token_ids[:upto]), list(a.logprobs[:upto]), source="captured")
    cut_b = TokenScores("topk", list(a.token_ids[:upto]), list(b.logprobs[:upto]), source="captured")
    row = _row(it, cut_a, cut_b)
    if row["status"] == "topk":
        row["reason"] = (f"compared up to where the answers parted: {upto} of {len(a.token_ids)} positions "
                         "(a server's logprobs cover only the tokens it generated)")
    return row


def _kind_of(rows: list[dict[str, Any]], kind: str) -> str:
    kinds = {r["status"] for r in rows}
    return "topk" if "topk" in kinds else ("exact" if "exact" in kinds else kind)


def _scores(role: str, b: Any, spec: str, part: list[_Item], n_seq: int, cache: ReferenceCache) -> list[Any]:
    """Scores of ``part`` on backend ``b``, from the cache where this content was scored before
    in this role and layout: the same reference hop scored for several rungs, and a rung's hops
    whose prompt and reference completion are the same in its free and oracle runs (most of
    them, on a good rung) -- scored once for both."""
    keys = [(role, spec, n_seq, i.request.system, i.request.prompt, i.completion) for i in part]
    got = [cache.get(k) for k in keys]
    missing = [j for j, g in enumerate(got) if g is None]
    if missing:
        fresh = b.score([(part[j].request, part[j].completion) for j in missing], n_seq=n_seq)
        for j, sc in zip(missing, fresh, strict=True):
            got[j] = sc
            cache.put(keys[j], sc)
    return got


def _row(it: _Item, a: Any, b: Any) -> dict[str, Any]:
    base = {"instance_index": it.instance_index, "hop_id": it.hop_id}
    if a.kind == "unavailable" or b.kind == "unavailable":
        return {**base, "status": "unavailable", "reason": a.reason or b.reason}
    if list(a.token_ids) != list(b.token_ids):
        return {**base, "status": "unavailable", "reason": "the two rungs tokenize the completion differently"}
    if not a.token_ids:
        return {**base, "status": "unavailable", "reason": "empty completion"}
    if a.kind == "exact" and b.kind == "exact":
        m, status = hop_metrics(a.logprobs, b.logprobs, a.token_ids), "exact"
    else:
        m, status = topk_hop_metrics(_as_topk(a), _as_topk(b), a.token_ids), "topk"
    return {**base, "status": status, "reason": None, "positions": m.positions, "kld_mean": m.kld_mean,
            "kld_max": m.kld_max, "kld_max_at": m.kld_max_at, "same_top": m.same_top,
            "delta_p_mean": m.delta_p_mean, "delta_p_rms": m.delta_p_rms, "parted_at": m.parted_at}


def _as_topk(s: Any, k: int = 20) -> list[dict[int, float]]:
    if s.kind == "topk":
        return list(s.logprobs)
    from .metrics import _log_softmax

    lp = _log_softmax(np.asarray(s.logprobs))
    top = np.argsort(-lp, axis=1)[:, :k]
    return [{int(t): float(lp[j, t]) for t in top[j]} for j in range(lp.shape[0])]


def fidelity_for_runs(store: Store, runs: Sequence[RunRead], *,
                      progress: Callable[[str], None] | None = None,
                      captures: dict[int, Any] | None = None) -> list[PassResult | AgentsimError]:
    """``--fidelity``: every run that has a reference (the top rung of its group) is scored; the
    references' backends stay loaded across the runs held against them and their scores are
    cached. A run without a reference (the top rung itself) is left out; a failure is returned
    in its slot, never raised."""
    todo: list[tuple[RunRead, RunRead]] = []
    out: list[PassResult | AgentsimError] = []
    for r in runs:
        r = store.get_run(r.id)
        if r.status != "complete":
            out.append(AgentsimError(f"run {r.id} is {r.status}: fidelity needs a complete run"))
            continue
        ref = default_reference(store, r)
        if ref is not None:
            todo.append((r, ref))
        partner = floor_partner(store, r)
        if partner is not None and (ref is None or partner.id != ref.id):
            todo.append((r, partner))  # the noise floor: the same rung at batch 1
        if ref is None and partner is None:
            out.append(AgentsimError(
                f"run {r.id} has no reference run: it is the top rung of its model, scenario and mode "
                "(and no batch-1 run of its rung to measure a noise floor against)",
                hint=f"give one: agentsim fidelity {r.id} --reference RUN"))
            if progress:
                progress(f"fidelity: run {r.id}: nothing to score against (the top rung)")
    todo.sort(key=lambda p: (p[1].id, p[0].id))
    cache = ReferenceCache()
    loaded: dict[str, Any] = {}
    try:
        for run, ref in todo:
            # keep only the reference loaded between runs: one rung model at a time
            for spec in [s for s in loaded if s != ref.backend]:
                loaded.pop(spec).close()
            try:
                res = compute_fidelity(store, run.id, ref.id, cache=cache, backends=loaded, captures=captures)
                out.append(res)
                if progress:
                    how = f", {res.captured} from the runs' own distributions" if res.captured else ""
                    progress(f"fidelity: run {run.id} vs run {ref.id}: {res.compared} of {res.hops} hops "
                             f"compared{how} in {res.seconds:.1f} s" + (f" ({res.note})" if res.note else ""))
            except AgentsimError as exc:
                out.append(exc)
                if progress:
                    progress(f"fidelity: run {run.id}: {exc.message}")
    finally:
        for b in loaded.values():
            b.close()
    return out


# --------------------------------------------------------------------------------------------
# the noise floor and the figures shown beside accuracy


def same_rung(a: RunRead, b: RunRead) -> bool:
    return _group(a) == _group(b) and a.model == b.model and a.precision == b.precision and \
        a.backend_name == b.backend_name


def floor_partner(store: Store, run: RunRead) -> RunRead | None:
    """The run that ``run``'s noise floor is measured against: the same rung (model, precision,
    scenario, instances, mode) at batch 1 with the same backend spec, when ``run`` is batched --
    the lowest id of them."""
    if batch_size_of(run) <= 1:
        return None
    cands = [r for r in store.list_runs() if r.id != run.id and r.status == "complete" and same_rung(r, run)
             and batch_size_of(r) == 1 and r.backend == run.backend]
    return min(cands, key=lambda r: r.id) if cands else None
