"""``agentsim report``: the verdicts and their evidence, in the terminal, as HTML, Markdown or JSON."""

from __future__ import annotations

import argparse
from typing import Any

from .common import console, db_arg, open_store


def cmd_report(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from agentsim.render import (
        build_report,
        output_format,
        render_terminal,
        select_run_ids,
        verdict_lines,
        write_report,
    )

    if args.output:
        output_format(args.output)  # a bad file name fails before the statistics run
    store = open_store(args, readonly=True)
    ids = select_run_ids(store, args.run_ids, launch=args.launch, all_runs=args.all)
    doc = build_report(store, ids, args.baseline)
    con = console()
    if args.output:
        files = write_report(doc, args.output)
        for line in verdict_lines(doc):
            con.print(line)
        con.print(f"report written: {escape(str(files[0]))}"
                  + (f" (+{len(files) - 1} plot files beside it)" if len(files) > 1 else ""))
        return 0
    for part in render_terminal(doc):
        con.print(part, soft_wrap=False)
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from agentsim.analysis import analyse
    from agentsim.analysis.recommend import recommend
    from agentsim.analysis.results import to_json
    from agentsim.errors import AgentsimError
    from agentsim.render import select_run_ids

    from .common import print_json

    if not 0 < args.max_loss < 1:
        raise AgentsimError(f"--max-loss {args.max_loss} must be between 0 and 1",
                            hint="a share of task success: 0.05 = 5 points")
    for name in ("max_seconds_per_task", "max_joules_per_task"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            raise AgentsimError(f"--{name.replace('_', '-')} {v} must be above 0")
    store = open_store(args, readonly=True)
    ids = select_run_ids(store, args.run_ids, launch=args.launch, all_runs=args.all)
    ev = analyse(store, ids, args.baseline, accuracy_margin=args.max_loss)
    recs = recommend(ev, max_seconds_per_task=args.max_seconds_per_task, max_joules_per_task=args.max_joules_per_task)
    if args.json:
        print_json(to_json({"multiplicity": ev.multiplicity, "settings": ev.settings, "recommendations": recs}))
        return 0
    con = console()
    for r in recs:
        con.print(escape(r.line))
        if r.evidence:
            con.print("  evidence: " + escape(r.evidence), style="dim")
    con.print(escape(ev.multiplicity), style="dim")
    return 0


def add_cli(sub: Any) -> None:
    rp = sub.add_parser("recommend", help="which precision x batch to deploy, per scenario, with its evidence",
                        description="Per scenario: the cheapest precision x batch size shown non-inferior to the "
                                    "baseline (task success within --max-loss, cost not above it), within the "
                                    "budgets; or 'none shown yet' with what would decide it (docs/statistics.md).")
    rp.add_argument("run_ids", nargs="*", type=int, metavar="RUN_ID", help="runs to choose among")
    rp.add_argument("--launch", default=None, metavar="ID", help="every run of one launch (a prefix of its id will do)")
    rp.add_argument("--all", action="store_true", help="every run in the database")
    rp.add_argument("--baseline", type=str, default=None, metavar="RUN|PRECISION",
                    help="run id or precision (default: top rung of the same model, scenario, params and mode)")
    rp.add_argument("--max-loss", type=float, default=0.05, metavar="SHARE",
                    help="non-inferiority margin on task success (default 0.05 = 5 points)")
    rp.add_argument("--max-seconds-per-task", type=float, default=None, metavar="S", help="latency budget per task")
    rp.add_argument("--max-joules-per-task", type=float, default=None, metavar="J", help="energy budget per task")
    rp.add_argument("--json", action="store_true", help="JSON for scripts")
    db_arg(rp)
    rp.set_defaults(func=cmd_recommend)

    sp = sub.add_parser("report", help="verdicts and their evidence: terminal, or -o report.html / .md / .json",
                        description="Paired statistics and trap verdicts of runs against their baselines "
                                    "(docs/statistics.md), as a report (docs/report.md).")
    sp.add_argument("run_ids", nargs="*", type=int, metavar="RUN_ID", help="runs to report on (none: every run in the database)")
    sp.add_argument("--launch", default=None, metavar="ID", help="every run of one launch (a prefix of its id will do)")
    sp.add_argument("--all", action="store_true", help="every run in the database (the default)")
    sp.add_argument("--baseline", type=str, default=None, metavar="RUN|PRECISION",
                    help="run id or precision (default: top rung of the same model, scenario, params and mode)")
    sp.add_argument("-o", "--output", default=None, metavar="FILE",
                    help="write the report: .html (self-contained, plots inlined), .md (plots as SVG files "
                         "beside it), .json (evaluate()'s dict plus report metadata)")
    db_arg(sp)
    sp.set_defaults(func=cmd_report)
