"""``agentsim casting``: the casting-overhead profiler (:mod:`agentsim.casting`) on the command line."""

from __future__ import annotations

import argparse
from typing import Any

from agentsim import casting
from agentsim.console import console, print_json
from agentsim.precision import TORCH_DTYPES, precision_lines

__all__ = ["add_cli"]


def _cmd_casting(args: argparse.Namespace) -> int:
    from rich.table import Table

    batches = casting.parse_batches(args.batch)
    precisions = [p.strip().lower() for chunk in args.precision for p in chunk.split(",") if p.strip()]
    shapes, layers, source = casting.model_shapes(args.model)
    config = casting.CastingConfig(dtype=args.dtype, device=args.device, repeats=args.repeats,
                                   threshold=args.threshold, threads=args.threads or None, clock=args.clock)
    origin = casting.ShapesOrigin(model=args.model or "", shapes_from=source, layers=layers)
    reports = [casting.profile_casting(shapes, p, batches, config, origin) for p in precisions]
    if args.json:
        print_json([r.as_dict() for r in reports])
        return 0
    out = console()
    shape_text = ", ".join(f"{s.name} {s.out_features}x{s.in_features}" for s in shapes)
    out.print(f"shapes from {source} ({layers} blocks): {shape_text}")
    for r in reports:
        block = "per output channel" if not r.block else f"block {r.block}"
        what = f"{r.precision} (emulated as {r.emulated_as}, {block})" if r.emulated_as else f"{r.precision} ({block})"
        t = Table(title=f"{what} -> {r.dtype} on {r.device}, {r.clock}, median of {r.repeats}, per decoder block")
        cols = ["batch", "dequant ms", "matmul ms", "total ms", "casting ratio", "vs dense"]
        if r.kernel:
            cols += ["kernel ms", "kernel vs dense", "kernel vs emulated"]
        for col in cols:
            t.add_column(col, justify="right")
        for row in r.rows:
            cells = [str(row.batch), f"{row.dequant_s * 1e3:.3f}", f"{row.matmul_s * 1e3:.3f}",
                     f"{row.total_s * 1e3:.3f}", f"{row.ratio:.2f}", f"{row.slowdown:.2f}x"]
            if r.kernel and row.kernel_s is not None:
                cells += [f"{row.kernel_s * 1e3:.3f}", f"{row.kernel_vs_dense:.2f}x", f"{row.kernel_vs_emulated:.2f}x"]
            t.add_row(*cells)
        out.print(t)
        if r.kernel:
            out.print(f"  real kernel: {r.kernel}")
        if r.amortised_batch is None:
            out.print(f"  casting stays >= {r.threshold:.0%} of the layer time up to batch {r.rows[-1].batch}: "
                      "not amortised in the measured range")
        else:
            out.print(f"  amortised from batch {r.amortised_batch} (casting < {r.threshold:.0%} of the layer time "
                      "from there on)")
    out.print("[dim]" + "; ".join(reports[0].notes) + "[/dim]" if reports else "")
    return 0


def _cmd_casting_default(args: argparse.Namespace) -> int:
    if not args.precision:
        args.precision = ["int4"]
    return _cmd_casting(args)


def add_cli(subparsers: Any) -> None:
    """``agentsim casting``: the casting-overhead profiler."""
    p = subparsers.add_parser(
        "casting",
        help="time weight dequantization vs matmul by batch size (the casting overhead of 4-bit weights)",
        description=casting.__doc__.split("\n\n")[0] if casting.__doc__ else None,
        epilog="precisions:\n  " + "\n  ".join(precision_lines(casting.CASTING_PRECISIONS))
        + "\n(int8-wo/int4-wo: torchao's real kernel timed beside its emulated form, agentsim int8/int4)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default=None, help="catalog name, a .gguf or a model folder (default: the catalog's default)")
    p.add_argument("--precision", action="append", default=None, metavar="P[,P...]",
                   help=f"weight format(s): {', '.join(casting.CASTING_PRECISIONS)} (default int4)")
    p.add_argument("--batch", default="1,2,4,8,16,32,64", help="batch sizes (default 1,2,4,8,16,32,64)")
    p.add_argument("--dtype", default="bf16", choices=sorted(TORCH_DTYPES), help="compute dtype (default bf16)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--repeats", type=int, default=5, help="timed runs per measurement; the median is kept")
    p.add_argument("--threshold", type=float, default=0.5, help="ratio below which casting counts as amortised")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                   help="wall: elapsed time (default); cpu: this thread's CPU time, with --threads 1, "
                        "for a busy shared CPU")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_casting_default)
