"""``agentsim demo``: the main job."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_demo(args: argparse.Namespace) -> int:
    from agentsim.demo import run_demo

    return run_demo(args)


def add_cli(sub: Any) -> None:
    sp = sub.add_parser("demo", help="the main job: bundled scenarios x precisions, a comparison table")
    sp.add_argument("--db", default="agentsim-demo.db")
    sp.add_argument("--instances", type=int, default=None)
    sp.add_argument("--quick", action="store_true", help="fewer instances, fewer precisions")
    sp.add_argument("--batch", type=int, default=None, metavar="B",
                    help="instances decoded together (default: the demo's own, see docs/batching.md)")
    sp.add_argument("--no-fidelity", dest="fidelity", action="store_false",
                    help="skip the teacher-forced fidelity pass (KLD of each rung against the top rung; "
                         "docs/fidelity.md)")
    sp.set_defaults(func=cmd_demo)
