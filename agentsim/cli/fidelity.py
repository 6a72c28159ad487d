"""``agentsim fidelity``: score finished runs teacher-forced against their reference run
(agentsim.fidelity), and print what is stored."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from agentsim.console import esc

from .common import console, db_arg, open_store, print_json

if TYPE_CHECKING:
    from agentsim.fidelity import FidelitySummary, RunFidelity

__all__ = ["add_cli", "fidelity_lines"]


def fidelity_lines(fig: RunFidelity) -> list[tuple[str, str]]:
    """(label, text) rows of :func:`agentsim.fidelity.run_figures` for ``show`` and ``fidelity``."""
    rows: list[tuple[str, str]] = []
    ref, f = fig.reference_run_id, fig.flips
    rows.append(("reference run", str(ref) if ref is not None
                 else "none (this run is the top rung of its model, scenario and mode)"))
    if f:
        rows.append(("flips vs reference", f"tasks {f.task_right_to_wrong} right->wrong, {f.task_wrong_to_right} "
                     f"wrong->right of {f.tasks_paired}; hops {f.hop_right_to_wrong} / {f.hop_wrong_to_right} "
                     f"of {f.hops_paired}"))
    if ref is not None:
        d = fig.fidelity
        other = d.reference_run_id if d else None
        label = "fidelity vs reference" if other in (None, ref) else f"fidelity vs run {other}"
        rows.append((label, kld_text(d)))
    for fl in fig.floor:
        ff = fl.flips
        rows.append((f"noise floor (vs run {fl.against_run_id}, batch {fl.against_batch})",
                     f"hops {ff.hop_right_to_wrong} / {ff.hop_wrong_to_right} flipped of {ff.hops_paired}, "
                     f"tasks {ff.task_flips}; " + kld_text(fl.fidelity)))
    return rows


def kld_text(d: FidelitySummary | None) -> str:
    if not d:
        return "not computed (agentsim fidelity RUN)"
    if d.kld_mean is None:
        why = "; ".join(f"{k} ({v})" for k, v in (d.reasons or {}).items()) or d.note or "-"
        return f"{d.kind}: no hop compared: {why}"
    ci = d.kld_ci95
    est = f" ({d.estimate_label})" if d.estimate_label else ""
    text = (f"KLD {d.kld_mean:.3g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "") + f"{est}, same top "
            f"{100 * (d.same_top or 0.0):.1f}%, RMS dp {100 * (d.delta_p_rms or 0.0):.2f}%; {d.compared} hops "
            f"({d.positions} positions)")
    if d.diverged:
        text += f", {d.diverged} diverged (free mode: inputs differ, not compared)"
    return text


def cmd_fidelity(args: argparse.Namespace) -> int:
    from agentsim import fidelity
    from agentsim.errors import AgentsimError
    from agentsim.store import batch_size_of

    store = open_store(args, readonly=args.show)
    out = console()
    err = console(stderr=True)
    if args.reference is not None and len(args.run_ids) > 1:
        raise AgentsimError("--reference takes one run id to score against: give one RUN with it")
    runs = [store.get_run(rid) for rid in dict.fromkeys(args.run_ids)]
    if not args.show:
        if args.reference is not None:
            res = fidelity.compute_fidelity(store, runs[0].id, args.reference)
            err.print(esc(f"fidelity: run {res.run_id} vs run {res.reference_run_id}: {res.compared} of {res.hops} "
                          f"hops compared in {res.seconds:.1f} s" + (f" ({res.note})" if res.note else "")),
                      highlight=False)
        else:
            # each run against its reference (the top rung), and a batched run against the same
            # rung at batch 1 (its noise floor)
            failed = [r for r in fidelity.fidelity_for_runs(store, runs, progress=lambda m: err.print(esc(m), highlight=False))
                      if isinstance(r, AgentsimError)]
            if failed and len(failed) >= len(runs):
                raise failed[0]
    results = []
    for run in runs:
        fig = fidelity.run_figures(store, run, args.reference)
        results.append({"run_id": run.id, **fig.to_json()})
        if not args.json:
            out.print(f"[bold]run {run.id}[/bold] " + esc(f"{run.backend} [{run.mode}] batch {batch_size_of(run)}"))
            for k, v in fidelity_lines(fig):
                out.print(f"  {esc(k)}: {esc(v)}", highlight=False)
    if args.json:
        print_json(results)
    return 0


def add_cli(sub: Any) -> None:
    sp = sub.add_parser("fidelity", help="score runs teacher-forced against a reference run: KLD, same top token, "
                                         "delta-p, flips (docs/fidelity.md)")
    sp.add_argument("run_ids", type=int, nargs="+", metavar="RUN")
    sp.add_argument("--reference", type=int, default=None, metavar="RUN",
                    help="the run to hold it against (default: the top rung of its model, scenario and mode; "
                         "the same rung at batch 1 measures the noise floor)")
    sp.add_argument("--show", action="store_true", help="print what is stored; compute nothing")
    sp.add_argument("--json", action="store_true")
    db_arg(sp)
    sp.set_defaults(func=cmd_fidelity)
