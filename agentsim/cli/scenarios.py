"""``agentsim scenarios list|show``."""

from __future__ import annotations

import argparse
from typing import Any

from agentsim.console import esc, name_column
from agentsim.errors import AgentsimError

from .common import console, print_json


def cmd_scenarios_list(args: argparse.Namespace) -> int:
    from agentsim.scenario.listing import list_scenarios

    items = list_scenarios(extra_dirs=args.dir)
    if args.json:
        print_json(items)
        return 0
    from rich.table import Table

    t = Table(title="scenarios (families take --param KEY=VALUE; a..b sweeps)")
    name_column(t, "name", [it["name"] for it in items])
    for col in ("kind", "hops", "params", "description"):
        t.add_column(col)
    for it in items:
        params = ", ".join(f"{k}={v}" for k, v in it["params"].items())
        shape = it.get("shape")
        hops = f"{shape['hops']} (depth {shape['depth']})" if shape else "-"
        kind = it["kind"] if not (it["kind"] == "file" and it.get("family")) else f"file -> {it['family']}"
        desc = esc(it["description"]) if not it.get("error") else f"[red]invalid: {esc(it['error'])}[/red]"
        t.add_row(esc(it["name"]), esc(kind), hops, esc(params), desc)
    console().print(t)
    return 0


def cmd_scenarios_show(args: argparse.Namespace) -> int:
    from agentsim.launch import parse_params
    from agentsim.scenario import resolve_scenario
    from agentsim.scenario.listing import describe_instance

    points = parse_params(args.param)
    if len(points) > 1:
        raise AgentsimError("scenarios show takes single values for --param, not a sweep")
    sc = resolve_scenario(args.name, points[0] or None)
    info = describe_instance(sc, seed=args.seed, index=args.index)
    if args.json:
        print_json(info)
        return 0
    out = console()
    out.print(f"[bold]{esc(info['name'])}[/bold] — {esc(info['description'])}")
    shape = info["shape"]
    out.print(f"seed {info['seed']}, instance {info['index']}, {shape['hops']} hops "
              f"({shape['llm_hops']} model, {shape['tool_hops']} tool), depth {shape['depth']}")
    if info["family"]:
        params = " ".join(f"{k}={v}" for k, v in info["params"].items())
        out.print(esc(f"family {info['family']}: {params}"))
    if info["system"]:
        out.print("[dim]system:[/dim]\n" + esc(info["system"]))
    for h in info["hops"]:
        deps = ", ".join(h["depends_on"]) or "-"
        out.print(f"\n[bold cyan]{esc(h['id'])}[/bold cyan] ({h['kind']}, depth {h['depth']}, after {esc(deps)})")
        out.print(esc(h["prompt"]))
        out.print(f"[green]expected:[/green] {esc(repr(h['expected']))}", highlight=False)
        if h["kind"] == "llm":
            fmt = h["parse"].get("type", "text")
            out.print(f"[dim]parse {esc(fmt)}, grammar {esc(h['grammar'] or '-')}, max_tokens {h['max_tokens']}[/dim]",
                      highlight=False)
    return 0



def add_cli(sub: Any) -> None:
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
