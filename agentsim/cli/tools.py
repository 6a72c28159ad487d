"""``agentsim tools list [--json]``: the tools a ``kind: tool`` hop can call, with their arguments."""

from __future__ import annotations

import argparse
from typing import Any

from agentsim.console import compact_table, esc, name_column

from .common import console, print_json


def cmd_tools_list(args: argparse.Namespace) -> int:
    from agentsim.tools import describe_tools

    tools = describe_tools()
    if args.json:
        print_json(tools)
        return 0
    t = compact_table(title="tools (a tool hop: kind: tool, tool: NAME, args: {ARGUMENT: expression})",
                      caption="x=v: optional, default v. Register your own with @agentsim.tool(\"name\").")
    name_column(t, "tool", [d["name"] for d in tools])
    t.add_column("arguments", overflow="fold")
    t.add_column("what it does", overflow="fold")
    t.add_column("from", overflow="fold")
    for d in tools:
        t.add_row(esc(d["name"]), esc(", ".join(d["arguments"])), esc(d["description"]), esc(d["origin"]))
    console().print(t, soft_wrap=False)
    return 0


def add_cli(sub: Any) -> None:
    sp = sub.add_parser("tools", help="the tools tool hops can call")
    tsub = sp.add_subparsers(dest="tools_command", metavar="COMMAND")
    lp = tsub.add_parser("list", help="every registered tool with its argument names")
    lp.add_argument("--json", action="store_true", help="[{name, arguments, signature, description, origin}]")
    lp.set_defaults(func=cmd_tools_list)
    sp.set_defaults(func=lambda _args: sp.print_help() or 2)
