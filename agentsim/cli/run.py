"""``agentsim validate`` and ``agentsim run``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from agentsim.console import esc, progress_printer
from agentsim.errors import AgentsimError
from agentsim.limits import add_trust_argument

from .common import console, db_arg, failures_exit_code, open_store, run_mode

# validate


def cmd_validate(args: argparse.Namespace) -> int:
    """Check scenario files; an invalid file lists every problem found, each with
    ``file:line: hop 'x', field 'y': what`` and its hint."""
    from agentsim.errors import ScenarioError
    from agentsim.limits import apply_trust
    from agentsim.scenario import load_scenario

    out = console()
    err = console(stderr=True)
    note = apply_trust(args)
    if note:
        err.print(f"[yellow]note:[/yellow] {esc(note)}")
    bad = 0
    for f in args.files:
        try:
            sc = load_scenario(f)
        except ScenarioError as exc:
            bad += 1
            problems = exc.problems
            if len(problems) == 1:
                err.print(f"[red]invalid[/red] {esc(exc)}")
                continue
            err.print(f"[red]invalid[/red] {esc(f)}: {len(problems)} problems")
            for p in problems:
                err.print(f"  {esc(p)}".replace("\n  hint:", "\n    hint:"))
            continue
        out.print(
            f"[green]ok[/green] {esc(f)}: scenario '{esc(sc.name)}', {len(sc.order)} hops, "
            f"depth {max(sc.depth.values())}"
        )
        for w in sc.warnings:
            err.print(f"[yellow]warning[/yellow] {esc(w)}")
        bad += bool(args.strict and sc.warnings)
    return 2 if bad else 0


# --------------------------------------------------------------------------------------------
# run

def cmd_run(args: argparse.Namespace) -> int:
    from agentsim.launch import Launch, RunControl, resume_run, run_launch
    from agentsim.measure import make_meter

    err = console(stderr=True)
    from agentsim.limits import apply_trust

    note = apply_trust(args)
    if note:
        err.print(f"[yellow]note:[/yellow] {note}", markup=True, highlight=False)
    if args.resume is not None:
        open_store(args, readonly=True).close()  # a mistyped --db is an error, not a new empty file
    store = open_store(args)
    bar, on_progress = progress_printer(err)
    if args.resume is not None:
        if args.scenarios or args.backend:
            raise AgentsimError("--resume takes a run id only (the run remembers its scenario and backend)")
        meter = make_meter(args.energy)
        try:
            with bar, _stopped_runs_said(store, before=args.resume - 1, only=args.resume):
                run = resume_run(store, args.resume, meter=meter, progress=on_progress)
        finally:
            meter.close()
        _print_run_lines([run], store)
        return 0 if run.status == "complete" else 1
    if not args.backend and args.param and _stdout_is_a_pipe():
        raise AgentsimError(
            "no --backend given",
            hint="e.g. --backend 'noisy,p=0.2'. Output goes to a pipe: if the command had an unquoted | "
                 "in a --param value, the shell cut it there; quote the sweep: --param 'distractors=4|16'",
        )
    launch = Launch(scenarios=args.scenarios, backends=args.backend or [], params=args.param or None,
                    modes=args.mode, instances=args.instances, seed=args.seed, energy=args.energy,
                    batch_sizes=args.batch, executor=args.executor, fidelity=args.fidelity)
    launch.check()
    for sc in launch.resolved_scenarios():
        for w in sc.warnings:
            err.print(f"[yellow]warning[/yellow] {esc(w)}")
    before = max((r.id for r in store.list_runs()), default=0)
    with bar, _stopped_runs_said(store, before=before):
        result = run_launch(launch, store=store, control=RunControl(progress=on_progress))
    _print_run_lines(result.runs, store)
    for line in result.fidelity:
        err.print(esc(line), highlight=False)
    for spec, exc in result.failures:
        console(stderr=True).print(f"[red]error:[/red] backend {esc(spec)}: {esc(exc)}")
    return failures_exit_code(result.failures)


class RunStopped(AgentsimError):
    """A run stopped part-way (the disk filled up, or the user interrupted it): what was
    committed is kept, and the message names each run and the command that finishes it."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def resume_commands(store: Any, run_ids: Sequence[int]) -> str:
    """``agentsim run --resume ID --db DB`` for each run, ``; ``-separated (paste-able)."""
    import shlex

    return "; ".join(f"agentsim run --resume {i} --db {shlex.quote(str(store.db))}" for i in run_ids)


def _unfinished(store: Any, before: int, only: int | None) -> list[tuple[int, int]]:
    """``(run id, hops committed)`` of the runs after ``before`` (or run ``only``) not complete."""
    try:
        counts = store.hop_counts()
        runs = [r for r in store.list_runs() if r.id > before and (only is None or r.id == only)]
        return [(r.id, counts.get(r.id, 0)) for r in sorted(runs, key=lambda r: r.id) if r.status != "complete"]
    except Exception:  # noqa: BLE001 - reading may fail too; say what is known
        return [(only, 0)] if only is not None else []


class _stopped_runs_said:  # noqa: N801 - used as a context manager, like contextlib's
    """Turn a full disk or Ctrl-C during a launch into a message naming the unfinished runs,
    how much of each is committed, and the resume command (with the real ids and --db)."""

    def __init__(self, store: Any, *, before: int, only: int | None = None) -> None:
        self.store, self.before, self.only = store, before, only

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, _tb: Any) -> bool:
        from agentsim.store import disk_full

        if kind is None:
            return False
        full = disk_full(exc)
        if not full and not issubclass(kind, KeyboardInterrupt):
            return False
        runs = _unfinished(self.store, self.before, self.only)
        kept = ", ".join(f"run {i}: {n} hops committed" for i, n in runs) or "no hop had been committed"
        resume = resume_commands(self.store, [i for i, _ in runs])
        then = f"finish with: {resume}" if resume else "rerun the command"
        if full:
            raise RunStopped(
                f"the disk holding {self.store.db} is full (SQLite: database or disk is full). Nothing "
                f"recorded is lost ({kept}; each hop is committed as it completes)",
                hint=f"free some space, then {then} (the results equal an uninterrupted run's)",
                exit_code=1,
            ) from None
        raise RunStopped(f"interrupted: what was recorded is kept ({kept})", hint=then, exit_code=130) from None


def _stdout_is_a_pipe() -> bool:
    import os
    import stat
    import sys

    try:
        return stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def _print_run_lines(runs: Sequence[Any], store: Any) -> None:
    from agentsim.analysis import summarize_run
    from agentsim.store import batch_size_of

    out = console()
    for run in runs:
        s = summarize_run(store, run)
        acc = f"{s.model_hop_accuracy:.3f}" if s.model_hop_accuracy is not None else "-"
        ts = f"{s.task_success:.3f}" if s.task_success is not None else "-"
        out.print(esc(
            f"run {run.id}: {s.scenario_label} [{run.mode}] {run.backend}"
            f"{f' batch {run.batch_size}' if batch_size_of(run) > 1 else ''} — "
            f"{s.status}, hop accuracy {acc}, task success {ts}"
        ))


# --------------------------------------------------------------------------------------------



class DefaultsShown(argparse.RawDescriptionHelpFormatter):
    """``--help`` shows every real default ("(default: 10)"); options without one (None, False)
    and help texts that already name theirs are left as they are."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS \
                or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def _precisions_epilog() -> str:
    """What each model backend's @PRECISION may be (from agentsim.precision, the one list)."""
    from agentsim.precision import HF_PRECISIONS, LLAMA_PRECISIONS, precision_lines

    return ("llama precisions (llama:MODEL@P):\n  " + "\n  ".join(precision_lines(LLAMA_PRECISIONS))
            + "\nhf precisions (hf:MODEL@P):\n  " + "\n  ".join(precision_lines(HF_PRECISIONS))
            + "\nopenai:MODEL,base_url=...[,precision=LABEL]: the precision is declared, not verified"
            + "\nsimulations: oracle, noisy[,p=..,latency_ms=..] (no model, no precision)")


def add_cli(sub: Any) -> None:
    sp = sub.add_parser("validate", help="validate scenario files")
    sp.add_argument("files", nargs="+", metavar="FILE")
    sp.add_argument("--strict", action="store_true", help="fail (exit 2) on warnings too")
    add_trust_argument(sp)
    sp.set_defaults(func=cmd_validate)

    sp = sub.add_parser("run", help="run scenarios against backends (or --resume a run)",
                        formatter_class=DefaultsShown, epilog=_precisions_epilog())
    sp.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="scenario file, bundled name or family")
    sp.add_argument("--backend", "-b", action="append", metavar="SPEC",
                    help="NAME[:MODEL][@PRECISION][,key=value...]; repeat for several")
    sp.add_argument("--instances", "-n", type=int, default=10, help="instances (seeded draws) per run")
    sp.add_argument("--seed", type=int, default=0, help="the seed of the draws: same seed, same questions")
    sp.add_argument("--mode", type=run_mode, metavar="{free,oracle,both}", default="free",
                    help="free: hops see their parents' actual answers; oracle: the expected ones")
    sp.add_argument("--param", "-p", action="append", metavar="KEY=VALUE",
                    help="scenario parameter; a..b or x|y sweeps (e.g. depth=1..6); quote a | in a "
                         "shell: --param 'distractors=4|16'")
    sp.add_argument("--batch", default="1", metavar="B[,B...]",
                    help="instances advanced together, their ready hops sent to the backend as one "
                         "call; a list sweeps (one run per size, e.g. --batch 1,4,16)")
    sp.add_argument("--energy", default="auto", help="auto | nvml | rapl | estimate | off")
    sp.add_argument("--executor", default="in-process", metavar="NAME[,key=value...]",
                    help="where the runs execute: in-process, or ray[,address=auto|ray://HOST:PORT]"
                         "[,num_gpus=N][,num_cpus=N] (the runs are spread over long-lived Ray workers, one per CPU/GPU slot; keep_s=S keeps them S seconds after the launch; docs/distributed.md)")
    sp.add_argument("--resume", type=int, metavar="RUN_ID", help="finish an interrupted run")
    sp.add_argument("--fidelity", action="store_true",
                    help="after the runs, score each run teacher-forced against its reference run (the top "
                         "rung of its model, scenario and mode): KLD, same top token, delta-p per hop "
                         "(docs/fidelity.md)")
    add_trust_argument(sp)
    db_arg(sp)
    sp.set_defaults(func=cmd_run)
