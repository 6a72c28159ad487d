"""``agentsim import trace FILE -o SCENARIO.yaml``."""

from __future__ import annotations

import argparse

from agentsim.console import esc

from .common import console


def cmd_import_trace(args: argparse.Namespace) -> int:
    from agentsim.importers import import_trace
    from agentsim.scenario import load_scenario

    out = import_trace(args.file, args.output, name=args.name)
    sc = load_scenario(out)
    llm = sum(1 for h in sc.order if sc.hop(h).kind == "llm")
    console().print(f"[green]wrote[/green] {esc(out)}: scenario '{esc(sc.name)}', {llm} LLM hops, "
                    f"{len(sc.order) - llm} tool hops, depth {max(sc.depth.values())}")
    console().print(f"replay it: agentsim run {esc(out)} -b SPEC --mode oracle -n 1   "
                    f"(free mode: errors propagate from the rung's own answers)")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("import", help="import recorded traces as replayable scenarios",
                        description="Import recorded LLM calls (docs/agents.md).")
    isub = sp.add_subparsers(dest="import_command", metavar="SUBCOMMAND")
    t = isub.add_parser("trace", help="OTLP JSON (GenAI / OpenInference) or OpenAI JSONL -> a scenario file")
    t.add_argument("file", help="the trace file")
    t.add_argument("-o", "--output", required=True, metavar="SCENARIO.yaml", help="the scenario file to write")
    t.add_argument("--name", default=None, help="the scenario's name (default: trace-FILE)")
    t.set_defaults(func=cmd_import_trace)
    sp.set_defaults(func=lambda a: (sp.print_help(), 2)[1])
