"""Ray executor: a 16-run ``noisy,latency_ms=50`` sweep in-process vs on a local Ray with 2
workers (target: >= 1.8x faster), and the per-hop overhead Ray adds (target: <= 5 ms/hop).

The sweep: chain-arith depth 3, 8 noisy seeds x free/oracle = 16 runs of 10 instances x 3 hops (``--instances``)
(each hop sleeps 50 ms, as a backend call would take). Ray runs on a fresh local cluster with
2 CPUs; its worker pool is warmed first (a launch of one instance per run: the pool's two worker
actors start, import agentsim and stay, ``keep_s``) so that the figure is the sweep's, not
Python's start-up; the cold figures are printed too: cluster start + warm-up, and the sweep on a
fresh pool (what a one-launch ``agentsim run --executor ray`` process pays).
The machine's load average is printed with the figures (the machine may be shared).

Per-hop overhead: one run of 300 hops with latency 0, the time between consecutive hop commits
(median), on Ray (the hop goes to the driver's actor and is committed there) minus in-process.
Both on SQLite. ``--db URL`` runs both on another database (e.g. PostgreSQL, workers commit).

    python benchmarks/ray_sweep.py [--db postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

SPEEDUP_TARGET = 1.8
OVERHEAD_TARGET_MS = 5.0


def sweep(executor: str | None, latency_ms: int = 50, instances: int = 10):  # type: ignore[no-untyped-def]
    from agentsim.launch import Launch

    return Launch(scenarios=["chain-arith"], params={"depth": 3}, modes="both", instances=instances, seed=1,
                  backends=[f"noisy,p=0.2,seed={{{','.join(str(s) for s in range(1, 9))}}},latency_ms={latency_ms}"],
                  energy="off", executor=executor)


def long_run(executor: str | None):  # type: ignore[no-untyped-def]
    from agentsim.launch import Launch

    return Launch(scenarios=["chain-arith"], params={"depth": 6}, modes="free", instances=50, seed=2,
                  backends=["noisy,p=0.2,seed=1"], energy="off", executor=executor)


def _db(base: str | None, folder: Path, name: str) -> str:
    if base is None:
        return str(folder / f"{name}.db")
    return base  # a server database: runs of each launch are told apart by their ids


def timed(launch, db: str) -> tuple[float, list]:  # type: ignore[no-untyped-def]
    from agentsim.launch import run_launch
    from agentsim.store import Store

    store = Store(db)
    t0 = time.perf_counter()
    result = run_launch(launch, store=store)
    wall = time.perf_counter() - t0
    assert not result.failures, result.failures
    return wall, [store.hops(r.id) for r in result.runs]


def gap_ms(hops: list) -> float:
    ts = sorted(h.created_at for h in hops)
    gaps = [(b - a).total_seconds() * 1000 for a, b in zip(ts, ts[1:], strict=False)]
    return statistics.median(gaps)


def _load(avg: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in avg)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=None, help="a server database URL (default: SQLite files in a temp folder)")
    ap.add_argument("--instances", type=int, default=10, help="instances per run (3 hops each)")
    args = ap.parse_args()
    import ray

    from agentsim.distributed.ray_executor import release_pool

    folder = Path(tempfile.mkdtemp(prefix="agentsim-ray-bench-"))
    load_before = os.getloadavg()
    t_in, hops_in = timed(sweep(None, instances=args.instances), _db(args.db, folder, "inproc"))
    n_runs, n_hops = len(hops_in), sum(len(h) for h in hops_in)

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    timed(sweep("ray", latency_ms=0, instances=1), _db(args.db, folder, "warm"))  # the pool up, agentsim imported
    cold = time.perf_counter() - t0
    t_ray, hops_ray = timed(sweep("ray", instances=args.instances), _db(args.db, folder, "ray"))

    _, (long_in,) = timed(long_run(None), _db(args.db, folder, "long_in"))
    _, (long_ray,) = timed(long_run("ray"), _db(args.db, folder, "long_ray"))
    release_pool()  # the same sweep on a pool that starts with it (one launch per process, as the CLI)
    t_fresh, _ = timed(sweep("ray", instances=args.instances), _db(args.db, folder, "fresh"))
    ray.shutdown()
    load_after = os.getloadavg()
    per_hop_in, per_hop_ray = gap_ms(long_in), gap_ms(long_ray)
    overhead = per_hop_ray - per_hop_in
    speedup = t_in / t_ray

    print(f"sweep: {n_runs} runs, {n_hops} hops, noisy latency 50 ms/hop, store: {args.db or 'SQLite'}")
    print(f"  in-process             {t_in:7.2f} s")
    print(f"  Ray, 2 workers (warm)  {t_ray:7.2f} s   speedup {speedup:.2f}x (target >= {SPEEDUP_TARGET}x)")
    print(f"  Ray, a fresh pool      {t_fresh:7.2f} s   speedup {t_in / t_fresh:.2f}x (worker start-up included)")
    print(f"  Ray cluster start + warm-up launch {cold:.2f} s (paid once per driver)")
    print(f"per-hop time, {len(long_in)} hops at latency 0 (median gap between commits):")
    print(f"  in-process {per_hop_in:.2f} ms, on Ray {per_hop_ray:.2f} ms: "
          f"Ray adds {overhead:.2f} ms/hop (target <= {OVERHEAD_TARGET_MS} ms)")
    print(f"load average (1, 5, 15 min) {os.cpu_count()} cores: before {_load(load_before)}, after {_load(load_after)}")
    ok = speedup >= SPEEDUP_TARGET and overhead <= OVERHEAD_TARGET_MS
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
