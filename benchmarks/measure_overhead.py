"""Per-hop cost of measuring: energy meters' begin/end, the peak-RSS probe, and whole hops.

Run: ``.venv/bin/python benchmarks/measure_overhead.py``. Targets (not asserted in tests): meter
begin+end and the RSS probe stay within tens of µs per hop, far below one stored hop (~ms).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from agentsim.measure import PeakRSS, make_meter


def per_call_us(fn, n: int = 20000) -> float:
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(runs)


def main() -> None:
    for kind in ("off", "estimate", "auto"):
        meter = make_meter(kind)
        print(f"meter {kind:9s} ({meter.name:8s}) begin+end: {per_call_us(lambda m=meter: m.end(m.begin())):7.2f} µs")
        meter.close()
    probe = PeakRSS()
    print(f"peak RSS probe begin+end (per_hop={probe.per_hop}): "
          f"{per_call_us(lambda: (probe.begin(), probe.end())):7.2f} µs")
    probe.close()

    from agentsim import api

    with tempfile.TemporaryDirectory() as tmp:
        for energy in ("off", "estimate"):
            t0 = time.perf_counter()
            res = api.simulate("chain-linear", "oracle", instances=100, db=Path(tmp) / f"{energy}.db", energy=energy)
            hops = len(res.store.hops(res.runs[0].id))
            print(f"engine, oracle backend, energy={energy:8s}: {(time.perf_counter() - t0) / hops * 1e3:6.3f} ms/hop "
                  f"({hops} hops, incl. one SQLite commit each)")


if __name__ == "__main__":
    main()
