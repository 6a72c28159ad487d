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


def add_cli(sub: Any) -> None:
    sp = sub.add_parser("report", help="verdicts and their evidence: terminal, or -o report.html / .md / .json",
                        description="Paired statistics and trap verdicts of runs against their baselines "
                                    "(docs/statistics.md), as a report (docs/report.md).")
    sp.add_argument("run_ids", nargs="*", type=int, metavar="RUN_ID", help="runs to report on")
    sp.add_argument("--launch", default=None, metavar="ID", help="every run of one launch (a prefix of its id will do)")
    sp.add_argument("--all", action="store_true", help="every run in the database")
    sp.add_argument("--baseline", type=str, default=None, metavar="RUN|PRECISION",
                    help="run id or precision (default: top rung of the same model, scenario, params and mode)")
    sp.add_argument("-o", "--output", default=None, metavar="FILE",
                    help="write the report: .html (self-contained, plots inlined), .md (plots as SVG files "
                         "beside it), .json (evaluate()'s dict plus report metadata)")
    db_arg(sp)
    sp.set_defaults(func=cmd_report)
