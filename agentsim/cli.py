"""The ``agentsim`` command line.

User errors (bad scenario files, unknown backends, missing models, ...) print one clear message
and exit 2; they never show a traceback. Feature modules add their own sub-commands through
``add_cli(subparsers)`` functions listed in :data:`EXTENSIONS` (imported lazily, nothing heavy).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import AgentsimError

#: modules providing ``add_cli(subparsers)``; each must import nothing heavy at module level
EXTENSIONS: list[str] = ["agentsim.tui.cli", "agentsim.models", "agentsim.casting"]


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _store(args: argparse.Namespace, readonly: bool = False) -> Any:
    from .store import Store

    return Store(args.db, readonly=readonly)


# --------------------------------------------------------------------------------------------
# validate


def cmd_validate(args: argparse.Namespace) -> int:
    from .errors import ScenarioError
    from .scenario import load_scenario

    console = _console()
    bad = 0
    for f in args.files:
        try:
            sc = load_scenario(f)
        except ScenarioError as exc:
            bad += 1
            from rich.markup import escape

            _console(stderr=True).print(f"[red]invalid[/red] {escape(str(exc))}")
            continue
        console.print(
            f"[green]ok[/green] {f}: scenario '{sc.name}', {len(sc.order)} hops, "
            f"depth {max(sc.depth.values())}"
        )
    return 2 if bad else 0


# --------------------------------------------------------------------------------------------
# run


def _progress_printer(console: Any) -> tuple[Any, Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("acc {task.fields[acc]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    from rich.markup import escape

    tasks: dict[int, Any] = {}

    def on_progress(p: Any) -> None:
        if p.run_id not in tasks:
            tasks[p.run_id] = bar.add_task(
                escape(f"run {p.run_id} {p.scenario} [{p.mode}] {p.backend}"), total=p.hops_total, acc="-"
            )
        acc = f"{p.accuracy:.2f}" if p.accuracy is not None else "-"
        bar.update(tasks[p.run_id], completed=p.hops_done, acc=acc)

    return bar, on_progress


def cmd_run(args: argparse.Namespace) -> int:
    from .engine import execute, resume_run
    from .generators import parse_params
    from .measure import make_meter
    from .scenario import resolve_scenario

    console = _console(stderr=True)
    store = _store(args)
    meter = make_meter(args.energy)
    bar, on_progress = _progress_printer(console)
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

        _console(stderr=True).print(f"[red]error:[/red] backend {escape(spec)}: {escape(str(exc))}")
    return 1 if failures else 0


def _print_run_lines(runs: Sequence[Any], store: Any) -> None:
    from .analysis import summarize_run

    out = _console()
    for run in runs:
        s = summarize_run(store, run)
        acc = f"{s['accuracy']:.3f}" if s["accuracy"] is not None else "-"
        ts = f"{s['task_success']:.3f}" if s["task_success"] is not None else "-"
        out.print(
            f"run {run.id}: {run.scenario} [{run.mode}] {run.backend} — {s['status']}, "
            f"hop accuracy {acc}, task success {ts}"
        )


# --------------------------------------------------------------------------------------------
# runs / show / export / compare


def cmd_runs(args: argparse.Namespace) -> int:
    from .engine import effective_status

    store = _store(args, readonly=True)
    runs = store.list_runs(limit=args.limit)
    counts = store.hop_counts()
    if args.json:
        _print_json([
            {
                "run_id": r.id, "scenario": r.scenario, "backend": r.backend, "precision": r.precision,
                "precision_mode": r.precision_mode, "mode": r.mode, "status": effective_status(r),
                "instances": r.n_instances, "hops_expected": r.n_instances * r.hops_per_instance,
                "hops_recorded": counts.get(r.id, 0), "seed": r.seed, "batch": r.batch,
                "created_at": r.created_at.isoformat(), "machine": r.machine,
            }
            for r in runs
        ])
        return 0
    from rich.table import Table

    t = Table(title=f"runs in {store.db}")
    for col in ("id", "scenario", "backend", "mode", "status", "hops", "created"):
        t.add_column(col)
    for r in runs:
        t.add_row(str(r.id), r.scenario, r.backend, r.mode, effective_status(r),
                  f"{counts.get(r.id, 0)}/{r.n_instances * r.hops_per_instance}",
                  r.created_at.strftime("%Y-%m-%d %H:%M"))
    _console().print(t)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from .analysis import summarize_run

    store = _store(args, readonly=True)
    s = summarize_run(store, args.run_id)
    if args.json:
        _print_json(s)
        return 0
    from rich.table import Table

    out = _console()
    out.print(f"[bold]run {s['run_id']}[/bold]: {s['scenario']} [{s['mode']}] {s['backend']} — {s['status']}")
    if s["error"]:
        out.print(f"[red]{s['error']}[/red]")
    t = Table(show_header=False)
    t.add_column("metric")
    t.add_column("value")
    rows = [
        ("precision", f"{s['precision'] or '-'} ({s['precision_mode']}, {s['kernel'] or '-'})"),
        ("instances", f"{s['instances_finished']}/{s['instances']}"),
        ("hops", f"{s['hops_recorded']}/{s['hops_expected']}"),
        ("hop accuracy", _fmt_ci(s["accuracy"], s["accuracy_ci95"])),
        ("task success", _fmt_ci(s["task_success"], s["task_success_ci95"])),
        ("errors", ", ".join(f"{k} {v}" for k, v in s["error_kinds"].items() if v) or "none"),
        ("accuracy by depth", "  ".join(f"d{d}: {v['accuracy']:.2f}" for d, v in s["accuracy_by_depth"].items())),
        ("per-hop reliability r", f"{s['reliability']['r']:.3f}" if s["reliability"]["r"] else "-"),
        ("tokens (prompt/completion)", f"{_fmt(s['prompt_tokens'])} / {_fmt(s['completion_tokens'])}"),
        ("time (prefill/decode/wall s)", f"{_fmt(s['prefill_s'])} / {_fmt(s['decode_s'])} / {_fmt(s['wall_s'])}"),
        ("energy", _fmt_energy(s["energy"])),
    ]
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)
    return 0


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _fmt_ci(v: Any, ci: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" + (f"  [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _fmt_energy(e: dict[str, Any]) -> str:
    if e["kind"] == "unavailable":
        return "unavailable (no meter on this machine)"
    if e["kind"] == "mixed":
        parts = [f"{k}: {v['joules']:.3f} J" for k, v in e["by_kind"].items() if v["joules"] is not None]
        return "mixed — " + ", ".join(parts)
    return f"{e['joules']:.3f} J ({e['kind']}, {e['source']})"


def cmd_export(args: argparse.Namespace) -> int:
    from .api import load_results

    results = load_results(args.db, [args.run_id])
    frames = results.to_pandas()
    out = Path(args.output)
    if args.format == "csv":
        frames.hops.to_csv(out, index=False)
    else:
        from .analysis import summarize_run

        payload = {"run": summarize_run(results.store, args.run_id),
                   "hops": json.loads(frames.hops.to_json(orient="records", date_format="iso"))}
        out.write_text(json.dumps(payload, indent=2, default=str))
    _console(stderr=True).print(f"wrote {len(frames.hops)} hops of run {args.run_id} to {out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .analysis import compare_runs
    from .report import comparison_table

    store = _store(args, readonly=True)
    rows = compare_runs(store, args.run_ids, baseline=args.baseline)
    if args.json:
        _print_json(rows)
        return 0
    _console().print(comparison_table(rows))
    return 0


# --------------------------------------------------------------------------------------------
# scenarios


def cmd_scenarios_list(args: argparse.Namespace) -> int:
    from .catalog import list_scenarios

    items = list_scenarios(extra_dirs=args.dir)
    if args.json:
        _print_json(items)
        return 0
    from rich.table import Table

    t = Table(title="scenarios (families take --param KEY=VALUE; a..b sweeps)")
    for col in ("name", "kind", "hops", "params", "description"):
        t.add_column(col)
    for it in items:
        params = ", ".join(f"{k}={v}" for k, v in it["params"].items())
        shape = it.get("shape")
        hops = f"{shape['hops']} (depth {shape['depth']})" if shape else "-"
        kind = it["kind"] if not (it["kind"] == "file" and it.get("family")) else f"file -> {it['family']}"
        desc = it["description"] if not it.get("error") else f"[red]invalid: {it['error']}[/red]"
        t.add_row(it["name"], kind, hops, params, desc)
    _console().print(t)
    return 0


def cmd_scenarios_show(args: argparse.Namespace) -> int:
    from .catalog import describe_instance
    from .generators import parse_params
    from .scenario import resolve_scenario

    points = parse_params(args.param)
    if len(points) > 1:
        raise AgentsimError("scenarios show takes single values for --param, not a sweep")
    sc = resolve_scenario(args.name, points[0] or None)
    info = describe_instance(sc, seed=args.seed, index=args.index)
    if args.json:
        _print_json(info)
        return 0
    out = _console()
    out.print(f"[bold]{info['name']}[/bold] — {info['description']}")
    shape = info["shape"]
    out.print(f"seed {info['seed']}, instance {info['index']}, {shape['hops']} hops "
              f"({shape['llm_hops']} model, {shape['tool_hops']} tool), depth {shape['depth']}")
    if info["family"]:
        params = " ".join(f"{k}={v}" for k, v in info["params"].items())
        out.print(f"family {info['family']}: {params}")
    if info["system"]:
        out.print("[dim]system:[/dim]\n" + info["system"])
    for h in info["hops"]:
        deps = ", ".join(h["depends_on"]) or "-"
        out.print(f"\n[bold cyan]{h['id']}[/bold cyan] ({h['kind']}, depth {h['depth']}, after {deps})")
        out.print(h["prompt"])
        out.print(f"[green]expected:[/green] {h['expected']!r}", highlight=False)
        if h["kind"] == "llm":
            fmt = h["parse"].get("type", "text")
            out.print(f"[dim]parse {fmt}, grammar {h['grammar'] or '-'}, max_tokens {h['max_tokens']}[/dim]",
                      highlight=False)
    return 0


# --------------------------------------------------------------------------------------------
# demo


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="agentsim",
        description="What does 4-bit (or 8-bit, or FP4) do to a multi-step LLM agent workflow?",
    )
    p.add_argument("--version", action="version", version=f"agentsim {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def db_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--db", default=None, help="database path or SQLAlchemy URL (default: $AGENTSIM_DB or ./agentsim.db)")

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

    sp = sub.add_parser("runs", help="list runs")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--limit", type=int, default=None)
    db_arg(sp)
    sp.set_defaults(func=cmd_runs)

    sp = sub.add_parser("show", help="one run's figures")
    sp.add_argument("run_id", type=int)
    sp.add_argument("--json", action="store_true")
    db_arg(sp)
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser("compare", help="compare runs against a baseline run")
    sp.add_argument("run_ids", type=int, nargs="+")
    sp.add_argument("--baseline", type=int, default=None, help="baseline run id (default: the first)")
    sp.add_argument("--json", action="store_true")
    db_arg(sp)
    sp.set_defaults(func=cmd_compare)

    sp = sub.add_parser("export", help="export a run's hop traces")
    sp.add_argument("run_id", type=int)
    sp.add_argument("--format", choices=("csv", "json"), default="csv")
    sp.add_argument("-o", "--output", required=True)
    db_arg(sp)
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("scenarios", help="list or show bundled scenarios and families")
    ssub = sp.add_subparsers(dest="scenarios_command", metavar="ACTION", required=True)
    s1 = ssub.add_parser("list", help="list scenarios")
    s1.add_argument("--json", action="store_true")
    s1.add_argument("--dir", action="append", default=[], help="also list scenario files in this folder")
    s1.set_defaults(func=cmd_scenarios_list)
    s2 = ssub.add_parser("show", help="show one instance: hops, prompts, expected answers")
    s2.add_argument("name")
    s2.add_argument("--seed", type=int, default=0)
    s2.add_argument("--index", type=int, default=0)
    s2.add_argument("--param", "-p", action="append", metavar="KEY=VALUE")
    s2.add_argument("--json", action="store_true")
    s2.set_defaults(func=cmd_scenarios_show)

    sp = sub.add_parser("demo", help="the main job: bundled scenarios x precisions, a comparison table")
    sp.add_argument("--db", default="agentsim-demo.db")
    sp.add_argument("--instances", type=int, default=None)
    sp.add_argument("--quick", action="store_true", help="fewer instances, fewer precisions")
    sp.set_defaults(func=cmd_demo)

    for target in EXTENSIONS:
        importlib.import_module(target).add_cli(sub)
    return p


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except AgentsimError as exc:
        from rich.markup import escape

        _console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}")
        return exc.exit_code
    except KeyboardInterrupt:
        _console(stderr=True).print("[yellow]interrupted[/yellow]: what was recorded is kept; "
                                    "agentsim run --resume RUN_ID finishes a run")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last resort: say it is a bug, keep it short
        if os.environ.get("AGENTSIM_DEBUG"):
            raise
        _console(stderr=True).print(
            f"[red]internal error[/red] ({type(exc).__name__}: {exc}). This is a bug in agentsim; "
            "rerun with AGENTSIM_DEBUG=1 for the traceback and report it."
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
