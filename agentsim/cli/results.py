"""``agentsim runs``, ``show``, ``compare`` and ``export``: reading stored runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import console, db_arg, fmt, fmt_ci, fmt_energy, open_store, print_json


def cmd_runs(args: argparse.Namespace) -> int:
    from agentsim.store import effective_status

    store = open_store(args, readonly=True)
    runs = store.list_runs(limit=args.limit)
    counts = store.hop_counts()
    if args.json:
        print_json([
            {
                "run_id": r.id, "scenario": r.scenario, "backend": r.backend, "precision": r.precision,
                "precision_mode": r.precision_mode, "mode": r.mode, "status": effective_status(r),
                "instances": r.n_instances, "hops_expected": r.n_instances * r.hops_per_instance,
                "hops_recorded": counts.get(r.id, 0), "seed": r.seed, "launch_id": r.launch_id,
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
    console().print(t)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from agentsim.analysis import summarize_run

    store = open_store(args, readonly=True)
    s = summarize_run(store, args.run_id)
    if args.json:
        print_json(s)
        return 0
    from rich.table import Table

    out = console()
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
        ("hop accuracy", fmt_ci(s["accuracy"], s["accuracy_ci95"])),
        ("task success", fmt_ci(s["task_success"], s["task_success_ci95"])),
        ("errors", ", ".join(f"{k} {v}" for k, v in s["error_kinds"].items() if v) or "none"),
        ("accuracy by depth", "  ".join(f"d{d}: {v['accuracy']:.2f}" for d, v in s["accuracy_by_depth"].items())),
        ("per-hop reliability r", f"{s['reliability']['r']:.3f}" if s["reliability"]["r"] else "-"),
        ("tokens (prompt/completion)", f"{fmt(s['prompt_tokens'])} / {fmt(s['completion_tokens'])}"),
        ("time (prefill/decode/wall s)", f"{fmt(s['prefill_s'])} / {fmt(s['decode_s'])} / {fmt(s['wall_s'])}"),
        ("energy", fmt_energy(s["energy"])),
    ]
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)
    return 0

def cmd_export(args: argparse.Namespace) -> int:
    from agentsim.api import load_results

    results = load_results(args.db, [args.run_id])
    frames = results.to_pandas()
    out = Path(args.output)
    if args.format == "csv":
        frames.hops.to_csv(out, index=False)
    else:
        from agentsim.analysis import summarize_run

        payload = {"run": summarize_run(results.store, args.run_id),
                   "hops": json.loads(frames.hops.to_json(orient="records", date_format="iso"))}
        out.write_text(json.dumps(payload, indent=2, default=str))
    console(stderr=True).print(f"wrote {len(frames.hops)} hops of run {args.run_id} to {out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from agentsim.analysis import compare_runs
    from agentsim.report import comparison_table

    store = open_store(args, readonly=True)
    rows = compare_runs(store, args.run_ids, baseline=args.baseline)
    if args.json:
        print_json(rows)
        return 0
    console().print(comparison_table(rows))
    return 0


# --------------------------------------------------------------------------------------------
# scenarios


def add_cli(sub: Any) -> None:
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
