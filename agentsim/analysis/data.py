"""Hop rows of stored runs as per-instance arrays: the unit every interval resamples.

An *instance* is identified across runs by ``(index, seed)``: every run of one scenario, seed and
instance count draws the same instances (free and oracle runs of one launch too), so two such
runs pair instance by instance and hop by hop. Only finished instances are analysed (an
interrupted run's half-done instance has no task outcome).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentsim.store import InstanceRead, RunRead, Store

from .energy import energy_summary

__all__ = ["RunData", "InstanceTable", "load_run", "instance_table", "common_units", "table_from_hops", "HOP_COLUMNS"]

HOP_COLUMNS = [
    "instance_index", "hop_id", "depth", "kind", "correct", "error_kind", "parents", "parents_ok",
    "prompt_tokens", "completion_tokens", "cached_tokens", "prefill_s", "decode_s", "wall_s",
    "ttft_s", "energy_j", "energy_kind", "energy_source", "energy_resolution_j", "energy_note",
    "energy_below_resolution", "stop_reason",
]

Key = tuple[int, int]  # (instance index, instance seed)


@dataclass
class RunData:
    """One run's finished instances and their hop rows (as read from the store)."""

    run: RunRead
    instances: list[InstanceRead]
    rows: list[dict[str, Any]]
    #: finished instances by key
    by_key: dict[Key, InstanceRead] = field(default_factory=dict)
    #: hop rows of finished instances by (key, hop_id)
    hops: dict[tuple[Key, str], dict[str, Any]] = field(default_factory=dict)
    energy_kind: str = "unavailable"

    @property
    def keys(self) -> list[Key]:
        return sorted(self.by_key)

    @property
    def is_simulation(self) -> bool:
        """A simulation backend (oracle/noisy): its seconds and joules are not a model's."""
        return self.run.kernel == "simulation" or self.run.precision_mode == "n/a"


def load_run(store: Store, run: RunRead | int) -> RunData:
    if isinstance(run, int):
        run = store.get_run(run)
    instances = store.instances(run.id)
    rows = store.hop_rows([run.id], HOP_COLUMNS)
    rd = RunData(run=run, instances=instances, rows=rows)
    seed_of = {}
    for inst in instances:
        if inst.finished:
            rd.by_key[(inst.index, inst.seed)] = inst
            seed_of[inst.index] = inst.seed
    for r in rows:
        s = seed_of.get(int(r["instance_index"]))
        if s is not None:
            rd.hops[((int(r["instance_index"]), s), r["hop_id"])] = r
    rd.energy_kind = energy_summary(rows).kind
    return rd


@dataclass
class InstanceTable:
    """Per-instance sums over a set of instances (axis 0 = instance, in ``keys`` order).

    Every figure of a run is a ratio of two such sums (hop accuracy = Σ correct / Σ hops, energy
    per correct task = Σ joules / Σ successes ...), so a bootstrap over instances is a matrix
    product of resampling weights with these columns.
    """

    keys: list[Key]
    success: np.ndarray          # 1.0 when every hop of the instance is right
    mh_correct: np.ndarray       # model (llm) hops right
    mh_n: np.ndarray             # model hops
    all_correct: np.ndarray      # hops right, tool hops included (the legacy "accuracy")
    hops_n: np.ndarray           # all hops (llm and tool)
    wall_s: np.ndarray           # seconds over all hops
    energy_j: np.ndarray | None  # joules of the run's one energy kind (None: unavailable/mixed)
    energy_kind: str
    tokens: np.ndarray           # completion tokens of llm hops with a decode time
    decode_s: np.ndarray         # decode seconds of those hops
    depths: list[int]            # model-hop depths present
    depth_correct: np.ndarray    # (instances x depths) model hops right at each depth
    depth_n: np.ndarray          # (instances x depths) model hops at each depth
    has_tokens: bool = False

    @property
    def m(self) -> int:
        return len(self.keys)


def common_units(a: RunData, b: RunData) -> tuple[list[Key], set[str] | None]:
    """Instances finished in both runs, and (when the runs' hop sets differ) the hop ids both have."""
    keys = sorted(set(a.by_key) & set(b.by_key))
    ha = {h for (_, h) in a.hops}
    hb = {h for (_, h) in b.hops}
    return keys, (None if ha == hb else ha & hb)


def instance_table(rd: RunData, keys: list[Key] | None = None, hop_ids: set[str] | None = None,
                   hop_pairs: set[tuple[Key, str]] | None = None, depths: list[int] | None = None) -> InstanceTable:
    """Sums per instance over ``keys`` (default: all finished instances of the run).

    ``hop_ids`` / ``hop_pairs`` restrict the hops counted (pairing: only hops both runs have);
    ``depths`` fixes the depth columns (so two paired tables line up).
    """
    keys = rd.keys if keys is None else keys
    pos = {k: i for i, k in enumerate(keys)}
    m = len(keys)
    mh_c, mh_n, hops_n, all_c = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m)
    wall, energy, tokens, dec = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m)
    kind = rd.energy_kind if rd.energy_kind in ("measured", "estimated") else rd.energy_kind
    has_energy = kind in ("measured", "estimated")
    by_depth: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if depths is not None:
        for d in depths:
            by_depth[d] = (np.zeros(m), np.zeros(m))
    has_tokens = False
    for (key, hop_id), r in rd.hops.items():
        i = pos.get(key)
        if i is None or (hop_ids is not None and hop_id not in hop_ids):
            continue
        if hop_pairs is not None and (key, hop_id) not in hop_pairs:
            continue
        hops_n[i] += 1
        all_c[i] += 1.0 if r["correct"] else 0.0
        wall[i] += float(r["wall_s"] or 0.0)
        if has_energy and r["energy_kind"] == kind and r["energy_j"] is not None:
            energy[i] += float(r["energy_j"])
        if r["kind"] == "tool":
            continue
        ok = 1.0 if r["correct"] else 0.0
        mh_c[i] += ok
        mh_n[i] += 1
        d = int(r["depth"])
        if d not in by_depth:
            if depths is not None:
                continue
            by_depth[d] = (np.zeros(m), np.zeros(m))
        by_depth[d][0][i] += ok
        by_depth[d][1][i] += 1
        if r["completion_tokens"] and r["decode_s"]:
            tokens[i] += float(r["completion_tokens"])
            dec[i] += float(r["decode_s"])
            has_tokens = True
    success = np.array([1.0 if rd.by_key[k].success else 0.0 for k in keys])
    ds = sorted(by_depth) if depths is None else list(depths)
    dc = np.stack([by_depth[d][0] for d in ds], axis=1) if ds else np.zeros((m, 0))
    dn = np.stack([by_depth[d][1] for d in ds], axis=1) if ds else np.zeros((m, 0))
    return InstanceTable(keys=keys, success=success, mh_correct=mh_c, mh_n=mh_n, all_correct=all_c, hops_n=hops_n, wall_s=wall,
                         energy_j=energy if has_energy else None, energy_kind=kind, tokens=tokens, decode_s=dec,
                         depths=ds, depth_correct=dc, depth_n=dn, has_tokens=has_tokens)


def table_from_hops(correct: np.ndarray, depths: list[int], *, wall_s: np.ndarray | None = None,
                    energy_j: np.ndarray | None = None, energy_kind: str = "unavailable") -> InstanceTable:
    """An :class:`InstanceTable` from a (instances x hops) matrix of right/wrong model hops.

    ``depths[j]`` is hop j's depth; an instance succeeds when all its hops are right. ``wall_s`` /
    ``energy_j`` are per-instance totals. For tests and what-if analyses without a store.
    """
    c = np.asarray(correct, dtype=float)
    m, h = c.shape
    ds = sorted(set(depths))
    dc = np.stack([c[:, [j for j in range(h) if depths[j] == d]].sum(axis=1) for d in ds], axis=1)
    dn = np.stack([np.full(m, float(sum(1 for j in range(h) if depths[j] == d))) for d in ds], axis=1)
    kind = energy_kind if energy_j is not None else "unavailable"
    return InstanceTable(keys=[(i, 0) for i in range(m)], success=(c.min(axis=1) == 1).astype(float),
                         mh_correct=c.sum(axis=1), mh_n=np.full(m, float(h)), all_correct=c.sum(axis=1), hops_n=np.full(m, float(h)),
                         wall_s=np.zeros(m) if wall_s is None else np.asarray(wall_s, dtype=float),
                         energy_j=None if energy_j is None else np.asarray(energy_j, dtype=float),
                         energy_kind=kind, tokens=np.zeros(m), decode_s=np.zeros(m), depths=ds,
                         depth_correct=dc, depth_n=dn, has_tokens=False)


def rung_bits(rd: RunData) -> float:
    """The bits of a run's precision (−inf when unknown): what "the top rung" is ranked by
    (:func:`agentsim.precision.rung_bits`, the fidelity reference's rule too)."""
    from agentsim.precision import rung_bits as precision_rung_bits

    return precision_rung_bits(rd.run.precision)


def top_rung(members: list[RunData]) -> RunData:
    """The top rung among runs: the most bits, ties by the lowest run id (one rule for trap and scale)."""
    return sorted(members, key=lambda x: (-rung_bits(x), x.run.id))[0]


def subset_table(t: InstanceTable, keys: list[Key]) -> InstanceTable:
    """The rows of ``t`` for ``keys`` (each must be in ``t.keys``), in that order."""
    import dataclasses

    pos = {k: i for i, k in enumerate(t.keys)}
    idx = np.array([pos[k] for k in keys], dtype=int)
    cols = {f.name: getattr(t, f.name) for f in dataclasses.fields(t)}
    for name, v in cols.items():
        if isinstance(v, np.ndarray):
            cols[name] = v[idx]
    cols["keys"] = list(keys)
    return InstanceTable(**cols)
