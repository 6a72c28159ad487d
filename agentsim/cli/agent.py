"""``agentsim agent run`` and ``agentsim agent replay``."""

from __future__ import annotations

import argparse
from typing import Any

from agentsim.console import esc
from agentsim.errors import AgentsimError

from .common import console, db_arg, open_store


def _print_runs(runs: list[Any], store: Any) -> None:
    out = console()
    for r in runs:
        insts = [i for i in store.instances(r.id) if i.finished]
        ok = sum(1 for i in insts if i.success)
        calls = [h for h in store.hops(r.id) if h.kind == "llm"]
        agreed = sum(1 for h in calls if h.correct)
        out.print(f"run {r.id} {esc(r.backend)} {esc('[' + r.mode + ']')}: task success {ok}/{len(insts)}, "
                  f"{len(calls)} calls ({agreed} agree with the reference), {r.status}")
    if len(runs) > 1:
        ids = " ".join(str(r.id) for r in runs)
        out.print(f"compare: agentsim compare {ids}   report: agentsim report {ids} -o report.html   "
                  f"trace: agentsim tui")


def cmd_agent_run(args: argparse.Namespace) -> int:
    from agentsim.agents import AgentJob, parse_check, resume_agent_run, run_agent

    err = console(stderr=True)
    store = open_store(args)

    def progress(spec: str, o: Any, total: int) -> None:
        mark = "[green]ok[/green]" if o.success else "[red]failed[/red]"
        err.print(f"{esc(spec)}: instance {o.index + 1}/{total} {mark} ({o.calls} calls, {o.wall_s:.1f} s; "
                  f"{esc(o.detail)})")

    if args.resume is not None:
        if args.command or args.backend:
            raise AgentsimError("--resume takes a run id only (the run remembers its agent and backend)")
        runs = [resume_agent_run(store, args.resume, energy=args.energy, progress=progress)]
        _print_runs(runs, store)
        return 0 if runs[0].status == "complete" else 1
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    job = AgentJob(command=command, name=args.name or "", check=parse_check(args.check), instances=args.instances,
                   seed=args.seed, timeout_s=args.timeout, text_check=args.text_check)
    result = run_agent(job, args.backend or [], store=store, energy=args.energy, progress=progress,
                       reference_run=args.reference)
    for spec, exc in result.failures:
        err.print(f"[red]{esc(spec)} failed:[/red] {esc(exc)}")
    _print_runs(result.runs, store)
    return 0 if result.runs and not result.failures else 1


def cmd_agent_replay(args: argparse.Namespace) -> int:
    from agentsim.agents import replay

    err = console(stderr=True)
    store = open_store(args)

    def progress(p: Any) -> None:
        err.print(f"{esc(p.spec)}: instance {p.instance + 1}/{p.instances}: {p.agreed}/{p.calls} calls agree")

    runs, failures = replay(store, args.run, args.backend or [], check=args.check, energy=args.energy,
                            progress=progress)
    for spec, exc in failures:
        err.print(f"[red]{esc(spec)} failed:[/red] {esc(exc)}")
    _print_runs(runs, store)
    return 0 if runs and not failures else 1


def add_cli(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("agent", help="run your unchanged agent program at every rung; replay its calls",
                        description="Agent programs against agentsim serve (docs/agents.md).")
    asub = sp.add_subparsers(dest="agent_command", metavar="SUBCOMMAND")
    r = asub.add_parser("run", help="run an agent program once per instance and rung, judged by a check",
                        description="Runs COMMAND once per instance and per rung against a serve of that rung "
                                    "(OPENAI_BASE_URL, OPENAI_API_KEY, AGENTSIM_INSTANCE, AGENTSIM_SEED set).")
    r.add_argument("-b", "--backend", action="append", metavar="SPEC", help="a rung (repeat): llama:MODEL@PRECISION")
    r.add_argument("-n", "--instances", type=int, default=5, help="instances per rung (default 5)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--check", default="exit", help="exit (default) | cmd:SHELL COMMAND | py:MODULE:FUNCTION")
    r.add_argument("--text-check", default="normalized", choices=("exact", "normalized", "numeric"),
                   help="how a call's text is held against the reference's (tool calls: name and JSON arguments)")
    r.add_argument("--name", default=None, help="the agent's name (default: the script's)")
    r.add_argument("--timeout", type=float, default=300.0, help="seconds per instance before it counts as failed")
    r.add_argument("--reference", type=int, default=None, metavar="RUN",
                   help="judge calls against this run (default: the rung with the most bits, run first)")
    r.add_argument("--resume", type=int, default=None, metavar="RUN", help="finish an interrupted agent run")
    r.add_argument("--energy", default="auto", help="auto | nvml | rapl | estimate | off")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    db_arg(r)
    r.set_defaults(func=cmd_agent_run)
    p = asub.add_parser("replay", help="re-send a run's recorded calls to other rungs; score each call",
                        description="Replays RUN's recorded requests verbatim at each rung (oracle mode for agents).")
    p.add_argument("run", type=int, help="the reference agent run whose calls are re-sent")
    p.add_argument("-b", "--backend", action="append", metavar="SPEC", help="a rung (repeat)")
    p.add_argument("--check", default=None, choices=("exact", "normalized", "numeric"),
                   help="text check (default: the run's --text-check)")
    p.add_argument("--energy", default="auto", help="auto | nvml | rapl | estimate | off")
    db_arg(p)
    p.set_defaults(func=cmd_agent_replay)
    sp.set_defaults(func=lambda a: (sp.print_help(), 2)[1])
