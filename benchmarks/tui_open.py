"""TUI open time on a database with 100k hop rows (target: under one second).

Builds ``--runs`` runs x ``--instances`` instances x 5 hops (100k hops by default) with bulk
inserts through the store's own tables (running the engine for 100k hops would take minutes and
measures the engine, not the viewer), then times, headless at 80x24:

* ``runs list``: from creating the app to the Runs screen showing every run with its aggregates;
* ``trace``: from asking the Trace screen for the largest run to its first instance's hop graph;
* the SQL aggregate query alone (``agentsim.tui.data.run_rows``).

Usage: ``python benchmarks/tui_open.py [--hops 100000] [--db PATH]``; exits 1 when a target is
missed. Part of ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.0
HOPS_PER_INSTANCE = 5


def build(path: Path, hops: int, runs: int) -> None:
    from sqlalchemy import insert

    from agentsim.store import HopRecord, HopTrace, InstanceRecord, Run, Store

    store = Store(path)
    per_run = hops // runs
    instances = per_run // HOPS_PER_INSTANCE
    rng = random.Random(0)
    hop_ids = [f"h{i}" for i in range(1, HOPS_PER_INSTANCE + 1)]
    for r in range(runs):
        run = store.create_run(Run(
            scenario=f"chain-{r % 4}", backend=f"noisy,p=0.{r % 9 + 1}", mode="free" if r % 2 == 0 else "oracle",
            n_instances=instances, hops_per_instance=HOPS_PER_INSTANCE, status="complete", batch=f"b{r // 2}",
            scenario_fingerprint=f"fp{r // 2}", seed=0,
        ))
        inst_rows, hop_rows = [], []
        for i in range(instances):
            ok, roots, prev_ok = True, [], True
            for t, hid in enumerate(hop_ids):
                correct = prev_ok and rng.random() > 0.08
                kind = "none" if correct else ("local" if prev_ok else "propagated")
                if kind == "local":
                    roots = [hid]
                hop_rows.append((HopRecord(
                    run_id=run.id, instance_index=i, hop_id=hid, topo_index=t, depth=t + 1,
                    parents=[hop_ids[t - 1]] if t else [], prompt=f"step {t} of instance {i}",
                    completion=str(rng.randint(0, 99)), parsed=1, expected=1, correct=correct, error_kind=kind,
                    root_cause=roots if not correct else [], wall_s=0.01, decode_s=0.008,
                    energy_j=0.05, energy_kind="estimated", energy_source="model:cpu_time*watts_per_core",
                ).columns()))
                prev_ok = correct
                ok = ok and correct
            inst_rows.append({"run_id": run.id, "index": i, "seed": 0, "vars": {}, "expected": {},
                              "finished": True, "success": ok, "final_correct": ok, "root_causes": roots[:1]})
        with store.engine.begin() as conn:
            conn.execute(insert(InstanceRecord.__table__), inst_rows)  # type: ignore[attr-defined]
            conn.execute(insert(HopTrace.__table__), hop_rows)  # type: ignore[attr-defined]
    store.close()


async def time_app(db: Path) -> dict[str, float]:
    from agentsim.tui.app import make_app
    from agentsim.tui.hop_graph import HopGraph
    from agentsim.tui.runs_screen import RunsScreen
    from agentsim.tui.trace_screen import TraceScreen

    async def wait(pilot, pred, timeout=30.0):  # type: ignore[no-untyped-def]
        end = time.perf_counter() + timeout
        while not pred():
            if time.perf_counter() > end:
                raise TimeoutError
            await pilot.pause(0.005)

    t0 = time.perf_counter()
    app = make_app(str(db), start="runs", refresh_s=3600)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.rows
                   and app.screen.query_one("#runs-table").row_count == len(app.screen.rows))
        t_runs = time.perf_counter() - t0
        runs = app.screen.rows
        big = max(runs, key=lambda r: r.hops_recorded)
        biggest, target = big.run.id, min(777, big.run.n_instances - 1)
        await pilot.press("4")
        await wait(pilot, lambda: isinstance(app.screen, TraceScreen))
        trace = app.screen
        await wait(pilot, lambda: trace.run is not None and trace.hops)
        t1 = time.perf_counter()
        trace.show_run(biggest, instance=target)
        await wait(pilot, lambda: trace.run.id == biggest and trace.instance_index == target
                   and trace.query_one(HopGraph).option_count == HOPS_PER_INSTANCE)
        t_trace = time.perf_counter() - t1
    return {"runs_list_s": t_runs, "trace_s": t_trace}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hops", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--db", default=None, help="keep the database here (default: a temporary folder)")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="agentsim-tui-bench-"))
    db = Path(args.db) if args.db else folder / "runs.db"
    if db.exists():
        db.unlink()
    t = time.perf_counter()
    build(db, args.hops, args.runs)
    build_s = time.perf_counter() - t

    from agentsim.store import Store
    from agentsim.tui.data import run_rows

    store = Store(db, readonly=True)
    n_hops = sum(store.hop_counts().values())
    t = time.perf_counter()
    rows = run_rows(store)
    sql_s = time.perf_counter() - t
    store.close()
    figures = asyncio.run(time_app(db))
    result = {"hops": n_hops, "runs": len(rows), "build_s": round(build_s, 2), "sql_aggregates_s": round(sql_s, 4),
              **{k: round(v, 3) for k, v in figures.items()}, "target_s": TARGET_S}
    print(json.dumps(result, indent=2))
    missed = [k for k in ("runs_list_s", "trace_s") if figures[k] > TARGET_S]
    if missed:
        print(f"target missed: {', '.join(missed)} > {TARGET_S} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
