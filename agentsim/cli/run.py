"""``agentsim validate`` and ``agentsim run``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from agentsim.console import progress_printer
from agentsim.errors import AgentsimError
from agentsim.limits import add_trust_argument

from .common import console, db_arg, open_store

# validate


def cmd_validate(args: argparse.Namespace) -> int:
    from agentsim.errors import ScenarioError
    from agentsim.scenario import load_scenario

    from rich.markup import escape

    from agentsim.limits import apply_trust

    out = console()
    note = apply_trust(args)
    if note:
        console(stderr=True).print(f"[yellow]note:[/yellow] {escape(note)}")
    bad = 0
    for f in args.files:
        try:
            sc = load_scenario(f)
        except ScenarioError as exc:
            bad += 1
            console(stderr=True).print(f"[red]invalid[/red] {escape(str(exc))}")
            continue
        out.print(
            f"[green]ok[/green] {f}: scenario '{sc.name}', {len(sc.order)} hops, "
            f"depth {max(sc.depth.values())}"
        )
        for w in sc.warnings:
            console(stderr=True).print(f"[yellow]warning[/yellow] {escape(str(w))}")
        bad += bool(args.strict and sc.warnings)
    return 2 if bad else 0


# --------------------------------------------------------------------------------------------
# run

def cmd_run(args: argparse.Namespace) -> int:
    from agentsim.launch import Launch, resume_run, run_launch
    from agentsim.measure import make_meter

    err = console(stderr=True)
    from agentsim.limits import apply_trust

    note = apply_trust(args)
    if note:
        err.print(f"[yellow]note:[/yellow] {note}", markup=True, highlight=False)
    store = open_store(args)
    bar, on_progress = progress_printer(err)
    if args.resume is not None:
        if args.scenarios or args.backend:
            raise AgentsimError("--resume takes a run id only (the run remembers its scenario and backend)")
        meter = make_meter(args.energy)
        try:
            with bar:
                run = resume_run(store, args.resume, meter=meter, progress=on_progress)
        finally:
            meter.close()
        _print_run_lines([run], store)
        return 0 if run.status == "complete" else 1
    launch = Launch(scenarios=args.scenarios, backends=args.backend or [], params=args.param or None,
                    modes=args.mode, instances=args.instances, seed=args.seed, energy=args.energy,
                    batch_sizes=args.batch)
    with bar:
        result = run_launch(launch, store=store, progress=on_progress)
    _print_run_lines(result.runs, store)
    for spec, exc in result.failures:
        from rich.markup import escape

        console(stderr=True).print(f"[red]error:[/red] backend {escape(spec)}: {escape(str(exc))}")
    return 1 if result.failures else 0


def _print_run_lines(runs: Sequence[Any], store: Any) -> None:
    from agentsim.analysis import summarize_run

    out = console()
    for run in runs:
        s = summarize_run(store, run)
        acc = f"{s['accuracy']:.3f}" if s["accuracy"] is not None else "-"
        ts = f"{s['task_success']:.3f}" if s["task_success"] is not None else "-"
        out.print(
            f"run {run.id}: {run.scenario} [{run.mode}] {run.backend}"
            f"{f' batch {run.batch_size}' if (run.batch_size or 1) > 1 else ''} — {s['status']}, "
            f"hop accuracy {acc}, task success {ts}"
        )


# --------------------------------------------------------------------------------------------



def add_cli(sub: Any) -> None:
    sp = sub.add_parser("validate", help="validate scenario files")
    sp.add_argument("files", nargs="+", metavar="FILE")
    sp.add_argument("--strict", action="store_true", help="fail (exit 2) on warnings too")
    add_trust_argument(sp)
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
    sp.add_argument("--batch", default="1", metavar="B[,B...]",
                    help="instances advanced together, their ready hops sent to the backend as one "
                         "call; a list sweeps (one run per size, e.g. --batch 1,4,16)")
    sp.add_argument("--energy", default="auto", help="auto | nvml | rapl | estimate | off")
    sp.add_argument("--resume", type=int, metavar="RUN_ID", help="finish an interrupted run")
    add_trust_argument(sp)
    db_arg(sp)
    sp.set_defaults(func=cmd_run)
