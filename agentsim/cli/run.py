"""``agentsim validate`` and ``agentsim run``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from agentsim.console import progress_printer
from agentsim.errors import AgentsimError

from .common import console, db_arg, open_store

# validate


def cmd_validate(args: argparse.Namespace) -> int:
    from agentsim.errors import ScenarioError
    from agentsim.scenario import load_scenario

    out = console()
    bad = 0
    for f in args.files:
        try:
            sc = load_scenario(f)
        except ScenarioError as exc:
            bad += 1
            from rich.markup import escape

            console(stderr=True).print(f"[red]invalid[/red] {escape(str(exc))}")
            continue
        out.print(
            f"[green]ok[/green] {f}: scenario '{sc.name}', {len(sc.order)} hops, "
            f"depth {max(sc.depth.values())}"
        )
    return 2 if bad else 0


# --------------------------------------------------------------------------------------------
# run

def cmd_run(args: argparse.Namespace) -> int:
    from agentsim.engine import execute, resume_run
    from agentsim.measure import make_meter
    from agentsim.scenario import resolve_scenario
    from agentsim.scenario.registry import parse_params

    err = console(stderr=True)
    store = open_store(args)
    meter = make_meter(args.energy)
    bar, on_progress = progress_printer(err)
    try:
        if args.resume is not None:
            if args.scenarios or args.backend:
                raise AgentsimError("--resume takes a run id only (the run remembers its scenario and backend)")
            with bar:
                run = resume_run(store, args.resume, meter=meter, progress=on_progress)
            _print_run_lines([run], store)
            return 0 if run.status == "complete" else 1
        if not args.scenarios:
            raise AgentsimError("no scenario given", hint="agentsim run SCENARIO --backend SPEC (agentsim scenarios list)")
        if not args.backend:
            raise AgentsimError("no --backend given", hint="e.g. --backend noisy,p=0.2 or --backend oracle")
        sweep = parse_params(args.param)
        scenarios = [resolve_scenario(s, p or None) for s in args.scenarios for p in sweep]
        modes = ("free", "oracle") if args.mode == "both" else (args.mode,)
        with bar:
            runs, failures = execute(
                scenarios, args.backend, store=store, instances=args.instances, seed=args.seed,
                modes=modes, meter=meter, progress=on_progress,
            )
    finally:
        meter.close()
    _print_run_lines(runs, store)
    for spec, exc in failures:
        from rich.markup import escape

        console(stderr=True).print(f"[red]error:[/red] backend {escape(spec)}: {escape(str(exc))}")
    return 1 if failures else 0


def _print_run_lines(runs: Sequence[Any], store: Any) -> None:
    from agentsim.analysis import summarize_run

    out = console()
    for run in runs:
        s = summarize_run(store, run)
        acc = f"{s['accuracy']:.3f}" if s["accuracy"] is not None else "-"
        ts = f"{s['task_success']:.3f}" if s["task_success"] is not None else "-"
        out.print(
            f"run {run.id}: {run.scenario} [{run.mode}] {run.backend} — {s['status']}, "
            f"hop accuracy {acc}, task success {ts}"
        )


# --------------------------------------------------------------------------------------------



def add_cli(sub: Any) -> None:
    sp = sub.add_parser("validate", help="validate scenario files")
    sp.add_argument("files", nargs="+", metavar="FILE")
    sp.set_defaults(func=cmd_validate)

    sp = sub.add_parser("run", help="run scenarios against backends (or --resume a run)")
    sp.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="scenario file, bundled name or family")
    sp.add_argument("--backend", "-b", action="append", metavar="SPEC",
                    help="NAME[:MODEL][@PRECISION][,key=value...]; repeat for several")
    sp.add_argument("--instances", "-n", type=int, default=10)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--mode", choices=("free", "oracle", "both"), default="free")
    sp.add_argument("--param", "-p", action="append", metavar="KEY=VALUE",
                    help="generator parameter; a..b or x|y sweeps (e.g. depth=1..6)")
    sp.add_argument("--energy", default="auto", help="auto | nvml | rapl | estimate | off")
    sp.add_argument("--resume", type=int, metavar="RUN_ID", help="finish an interrupted run")
    db_arg(sp)
    sp.set_defaults(func=cmd_run)
