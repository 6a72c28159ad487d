"""Per-hop overhead of the engine and store, measured with the instant ``oracle`` backend.

Every hop is rendered, judged, attributed, metered and committed to SQLite (WAL), exactly as in
a real run; the backend itself costs nothing, so the time per hop is agentsim's own overhead.
Compare it with a real model's seconds per hop (``agentsim show RUN_ID``).

    python benchmarks/engine_overhead.py [--instances 200] [--energy off|auto]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=200)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--energy", default="auto")
    args = ap.parse_args()

    import agentsim
    from agentsim.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        agentsim.simulate("chain-arith", "oracle", params={"depth": args.depth}, instances=5, db=store, energy=args.energy)
        per_hop = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = agentsim.simulate("chain-arith", "oracle", params={"depth": args.depth},
                                    instances=args.instances, db=store, energy=args.energy)
            hops = sum(r.n_instances * r.hops_per_instance for r in res.runs)
            per_hop.append((time.perf_counter() - t0) / hops * 1000)
    print(f"engine_overhead: {hops} hops per repeat, energy={args.energy}")
    print(f"  per-hop overhead: median {statistics.median(per_hop):.2f} ms, "
          f"min {min(per_hop):.2f} ms, max {max(per_hop):.2f} ms (oracle backend, SQLite WAL, one commit per hop)")


if __name__ == "__main__":
    main()
