"""What the fidelity pass costs against the runs it scores (docs/fidelity.md, "Cost").

Runs the demo's scenarios (chain-linear, fanin-dag) on the default model at the top rung and at
one lower rung, at the demo's batch size, in free and oracle mode (as the demo does) -- once as a
plain launch and once as ``Launch(fidelity=True)`` (what ``run --fidelity`` and the demo do: the
runs keep the distributions they sampled from, then the pass scores every lower-rung run against
its top-rung run, teacher-forced where the capture does not hold a hop), each in its own
database -- and prints the wall time of each and the ratio

    (seconds with --fidelity - seconds without) / seconds without

in wall time and in this process's CPU time (the machine may be shared: CPU time is the steadier
figure), which the issue bounds at 0.5 (at most 50 % added). With two rungs the reference's share
is larger than with the demo's five (it is scored once, for all of them): the figure is an upper
bound for the demo. ``--tiny`` does the same on the tiny
self-written GGUF of the tests (seconds; a smoke run, its ratio means little).

Measured on 2026-12-07 on the idle 2-core VM (docs/fidelity.md, "Cost"): +20 % of the wall time
(and of the CPU time) for both modes, +30 % (CPU +31 %) for ``--mode oracle`` (before the runs kept
their own distributions: +39 % and +73 % of the CPU time).

    python benchmarks/fidelity_cost.py [--instances 12] [--rungs f16,q4_0] [--batch 8] [--tiny]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--instances", type=int, default=12)
    p.add_argument("--rungs", default="f16,q4_0", help="top rung first, then the rungs scored against it")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--mode", default="both", choices=("free", "oracle", "both"), help="the demo runs both")
    p.add_argument("--tiny", action="store_true", help="the tests' tiny GGUF instead of the default model")
    args = p.parse_args(argv)
    rungs = [r.strip() for r in args.rungs.split(",") if r.strip()]
    if len(rungs) < 2 or args.instances < 1 or args.batch < 1:
        p.error("--rungs needs a top rung and at least one more; --instances and --batch must be >= 1")
    from agentsim.launch import Launch, RunControl, run_launch
    from agentsim.measure import UnavailableMeter
    from agentsim.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        if args.tiny:
            from tests.tiny_models import write_tiny_gguf

            paths = {"f32": write_tiny_gguf(Path(tmp) / "tiny.gguf", seed=0, dtype="f32")}
            # two files of one "model" would be two models: the tiny pass scores the same file at
            # batch B against batch 1 (the noise floor's pairing), which costs the same
            specs = [f"llama:{paths['f32']},n_threads=1"]
            scenarios = ["chain-arith-d4"]
        else:
            from agentsim import models

            models.fetch(models.DEFAULT_MODEL, log=lambda m: None)
            models.prepare(models.DEFAULT_MODEL, rungs, log=lambda m: None)
            specs = [f"llama:{models.DEFAULT_MODEL}@{r}" for r in rungs]
            scenarios = ["chain-linear", "fanin-dag"]
        batches = (1, args.batch) if args.tiny else args.batch

        def launch(fid: bool, name: str) -> tuple[float, float, Any, list[Any]] | None:
            store = Store(Path(tmp) / f"{name}.db")
            t0, c0 = time.perf_counter(), time.process_time()
            res = run_launch(Launch(scenarios=scenarios, backends=specs, modes=args.mode, instances=args.instances,
                                    batch_sizes=batches, energy="off", fidelity=fid),
                             store=store, control=RunControl(meter=UnavailableMeter()))
            t, c = time.perf_counter() - t0, time.process_time() - c0
            if res.failures:
                print(f"a run failed: {res.failures[0][0]}: {res.failures[0][1]}")
                return None
            return t, c, store, res.runs

        # the same launch twice, in separate databases: without and with --fidelity (the capture
        # while generating and the pass after it both count)
        plain = launch(False, "plain")
        with_fid = launch(True, "fidelity")
        if plain is None or with_fid is None:
            return 1
        t_runs, c_runs, store_a, runs = plain
        t_all, c_all, store, _runs_b = with_fid
        store_a.close()
        from agentsim.fidelity_tables import fidelity_passes, fidelity_rows

        passes = [(p.run_id, p.reference_run_id, p.seconds, p.layout) for p in fidelity_passes(store)]
        hops = sum(1 for p in passes for r in fidelity_rows(store, p[0], p[1]) if r.status in ("exact", "topk"))
        captured = sum(int((r[3] or {}).get("captured_hops", 0)) for r in passes)
        t_pass = sum(float(r[2] or 0) for r in passes)
        t_fid, c_fid = t_all - t_runs, c_all - c_runs
        print(f"runs: {len(runs)} ({', '.join(rungs if not args.tiny else ['tiny f32'])}; {', '.join(scenarios)}; "
              f"{args.instances} instances, batch {args.batch}, {args.mode}) in {t_runs:.1f} s wall, "
              f"{c_runs:.1f} s CPU")
        print(f"with --fidelity: {t_all:.1f} s wall, {c_all:.1f} s CPU; {len(passes)} passes, {hops} hops compared "
              f"({captured} from the runs' captured distributions), the passes {t_pass:.1f} s wall")
        print(f"added: {100 * t_fid / t_runs:.0f} % of the runs' wall time, {100 * c_fid / c_runs:.0f} % of their "
              "CPU time (bound: 50 %)")
        print("bound of 50 %: " + ", ".join(f"{'met' if x <= 0.5 else 'NOT met'} in {what}"
                                            for x, what in ((c_fid / c_runs, "CPU time"), (t_fid / t_runs, "wall time")))
              + " (on a shared machine the CPU figure is the steadier one)")
        for r in passes:
            from agentsim.fidelity import fidelity_summary

            s = fidelity_summary(store, r[0], r[1])
            if s and s.kld_mean is not None:
                print(f"  run {r[0]} vs {r[1]}: KLD {s.kld_mean:.3g} "
                      f"[{s.kld_ci95[0]:.3g}, {s.kld_ci95[1]:.3g}], same top {100 * s.same_top:.1f}%"
                      if s.kld_ci95 else f"  run {r[0]} vs {r[1]}: KLD {s.kld_mean:.3g}")
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
