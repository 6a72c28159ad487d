"""``agentsim serve``: an OpenAI-compatible server over a backend, every request recorded."""

from __future__ import annotations

import argparse

from agentsim.console import esc

from .common import console, db_arg, open_store


def cmd_serve(args: argparse.Namespace) -> int:
    from agentsim.measure import make_meter
    from agentsim.serve import AgentRunSpec, ServeOptions, Serving
    from agentsim.serve.recorder import serve_ref

    err = console(stderr=True)
    meter = make_meter(args.energy)
    store = open_store(args)
    try:
        serving = Serving(args.backend, store=store, run=AgentRunSpec(ref=serve_ref(args.name), seed=args.seed),
                          options=ServeOptions(host=args.host, port=args.port, allow_remote=args.allow_remote),
                          meter=meter)
        with serving:
            where = "" if serving.server.loopback else \
                " [yellow](not loopback: any machine that reaches this port can use it)[/yellow]"
            err.print(f"serving [bold]{esc(args.backend)}[/bold] at {esc(serving.base_url)}{where}")
            err.print(f"recording into run {serving.run.id} ({esc(store.db)}); instance k: "
                      f"{esc(serving.url)}/i/k/v1 or header X-Agentsim-Instance: k. Ctrl-C stops.")
            try:
                serving.server.wait()
            except KeyboardInterrupt:
                pass
        run = serving.run
        hops = len(store.hops(run.id))
        err.print(f"run {run.id}: {hops} hops recorded, {run.status}")
    finally:
        meter.close()
        store.close()
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("serve", help="an OpenAI-compatible chat server over a backend; every request a recorded hop",
                        description="Serve SPEC as an OpenAI-compatible /v1/chat/completions endpoint on loopback. "
                                    "Every request is recorded as a hop of one run (docs/agents.md).")
    sp.add_argument("-b", "--backend", required=True, metavar="SPEC", help="backend spec, e.g. llama:qwen2.5-coder-0.5b@q4_0")
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; others need --allow-remote)")
    sp.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    sp.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    sp.add_argument("--name", default="serve", help="the run's name (its scenario is agent:NAME)")
    sp.add_argument("--seed", type=int, default=0, help="the run's seed")
    sp.add_argument("--energy", default="auto", help="auto | nvml | rapl | estimate | off")
    db_arg(sp)
    sp.set_defaults(func=cmd_serve)
