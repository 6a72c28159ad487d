"""``agentsim runs``, ``show``, ``compare`` and ``export``: reading stored runs.

Every piece of stored text (scenario names, specs, params, errors) is escaped before rich prints
it; the default tables fit 80 columns (details are in ``show``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentsim.console import energy_text, esc, name_column, params_text, pct
from agentsim.errors import AgentsimError
from agentsim.models.catalog import twin_label_of

from .common import console, db_arg, fmt, fmt_ci, open_store, print_json

if TYPE_CHECKING:
    from agentsim.analysis.summary_results import RunSummary

_pct = pct


def _hops_cell(recorded: int, expected: int) -> str:
    return str(recorded) if recorded == expected or not expected else f"{recorded}/{expected}"


def cmd_runs(args: argparse.Namespace) -> int:
    from agentsim.store import batch_size_of, scenario_label_of

    store = open_store(args, readonly=True)
    runs = store.list_runs(limit=args.limit)
    counts = store.hop_counts()
    from agentsim.analysis.headline import run_figures

    figs = run_figures(store, runs)
    if args.json:
        print_json([
            {
                "run_id": r.id, "scenario_label": scenario_label_of(r), "scenario": r.scenario,
                "scenario_fingerprint": r.scenario_fingerprint, "params": r.params, "backend": r.backend,
                "precision": r.precision, "precision_mode": r.precision_mode, "mode": r.mode,
                "status": figs[r.id].status, "hop_accuracy": figs[r.id].hop_accuracy,
                "accuracy": figs[r.id].all_hop_accuracy, "task_success": figs[r.id].task_success, "instances": r.n_instances,
                "hops_expected": r.n_instances * r.hops_per_instance, "hops_recorded": counts.get(r.id, 0),
                "seed": r.seed, "batch_size": batch_size_of(r), "launch_id": r.launch_id,
                "created_at": r.created_at.isoformat(), "machine": r.machine,
            }
            for r in runs
        ])
        return 0
    from agentsim.console import compact_table

    t = compact_table(title=esc(f"runs in {store.db}"),
                      caption="scenario: the family with its non-default params, or the file's name "
                              "(#abc123: another scenario of that name). hops: recorded (of expected, "
                              "when short). B: batch size. acc%: hop accuracy (model hops); ok%: task success (every hop right). "
                              "Details: agentsim show RUN_ID.")
    t.add_column("id", justify="right", no_wrap=True)
    t.add_column("scenario", overflow="fold", min_width=12)
    name_column(t, "backend", [r.backend for r in runs])
    batched = any(batch_size_of(r) > 1 for r in runs)
    if batched:
        t.add_column("B", justify="right", no_wrap=True)
    for col in ("mode", "status"):
        t.add_column(col, no_wrap=True)
    for col in ("hops", "acc%", "ok%"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("created", no_wrap=True)
    for r in runs:
        b = batch_size_of(r)
        t.add_row(
            str(r.id), esc(scenario_label_of(r)), esc(r.backend) + (f"\n({twin_label_of(r.model)})" if twin_label_of(r.model) else ""),
            *([str(b)] if batched else []),
            esc(r.mode), esc(figs[r.id].status),
            _hops_cell(counts.get(r.id, 0), r.n_instances * r.hops_per_instance),
            _pct(figs[r.id].hop_accuracy, sign=False), _pct(figs[r.id].task_success, sign=False),
            r.created_at.strftime("%m-%d %H:%M"),
        )
    console().print(t, soft_wrap=False)
    return 0


def stop_text(s: RunSummary) -> str:
    """Why the LLM hops' generation stopped (eos / stop / grammar / length = the token budget),
    with the share cut by the budget; "-" when no hop says."""
    reasons = {k: v for k, v in (s.stop_reasons or {}).items() if k != "None"}
    if not reasons:
        return "-"
    text = ", ".join(f"{k} {v}" for k, v in reasons.items())
    rate = s.truncation_rate
    return text + (f" (cut by the token budget: {rate:.0%} of LLM hops)" if rate else "")


def cmd_show(args: argparse.Namespace) -> int:
    from agentsim.analysis import summarize_run
    from agentsim.store import batch_size_of

    store = open_store(args, readonly=True)
    run = store.get_run(args.run_id)
    from agentsim.fidelity import run_figures

    s = dataclasses.replace(summarize_run(store, run), batch_size=batch_size_of(run),
                            model_params=getattr(run, "model_params", None),
                            model_bytes=getattr(run, "model_bytes", None),
                            fidelity=run_figures(store, run))  # reference run, flips, fidelity, noise floor
    if args.json:
        print_json(s.to_json())
        return 0
    from rich.table import Table

    out = console()
    out.print(f"[bold]run {s.run_id}[/bold]: "
              + esc(f"{s.scenario_label} [{s.mode}] {s.backend} — {s.status}"))
    if twin_label_of(s.model):
        out.print(f"[yellow]{twin_label_of(s.model)}: this run measures cost only; its accuracy figures "
                  "mean nothing[/yellow]")
    if s.error:
        out.print(f"[red]{esc(s.error)}[/red]")
    t = Table(show_header=False)
    t.add_column("metric")
    t.add_column("value", overflow="fold")
    rel = s.reliability
    ref = run.scenario_ref or {}
    rows = [
        ("scenario", f"{s.scenario} (" + ({"generator": f"family {ref.get('name')}", "agent": "agent program"}
                                             .get(str(ref.get("kind")), "file"))
         + f", fingerprint {run.scenario_fingerprint or '-'})"),
        ("params", params_text(s.params) or "none"),
        ("precision", f"{s.precision or '-'} ({s.precision_mode}, {s.kernel or '-'})"
         + (f", from {s.source_precision}" if s.source_precision else "")),
        ("batch size", str(s.batch_size)),
        ("instances", f"{s.instances_finished}/{s.instances} (seed {s.seed})"),
        ("hops", f"{s.hops_recorded}/{s.hops_expected}" if s.hops_expected else
         f"{s.hops_recorded} (an agent's calls: no fixed count)"),
        ("hop accuracy (model hops)", fmt_ci(s.model_hop_accuracy, s.model_hop_accuracy_ci95)),
        ("all-hop accuracy", fmt_ci(s.accuracy, s.accuracy_ci95) + " (tool hops included)"),
        ("task success", fmt_ci(s.task_success, s.task_success_ci95)),
        ("errors", ", ".join(f"{k} {v}" for k, v in s.error_kinds.items() if v) or "none"),
        ("generation stopped", stop_text(s)),
        ("accuracy by depth", "  ".join(f"d{d}: {v.accuracy:.2f}" for d, v in s.accuracy_by_depth.items())),
        ("per-hop reliability r", f"{rel.r:.3f}" if rel.r is not None else f"- ({rel.reason or 'no fit'})"),
        ("model", model_size_text(s)),
        ("tokens (prompt/completion)", f"{count_text(s.prompt_tokens)} / {count_text(s.completion_tokens)}"),
        ("decode tokens/s", fmt(s.decode_tokens_per_s, 1)),
        ("time (prefill/decode/wall s)", f"{fmt(s.prefill_s)} / {fmt(s.decode_s)} / {fmt(s.wall_s)}"),
        ("energy", energy_text(s.energy, run.energy_meter)),
        ("launch", s.launch_id or "-"),
        *_sources_rows(store, run),
    ]
    from .fidelity import fidelity_lines

    rows += fidelity_lines(s.fidelity)
    for k, v in rows:
        t.add_row(k, esc(v))
    out.print(t, soft_wrap=False)
    return 0


def _sources_rows(store: Any, run: Any) -> list[tuple[str, str]]:
    """What the backend noted during the run, and where its hops' times and token counts came
    from (per hop, with how many hops each source served, when the backend said so per hop)."""
    rows: list[tuple[str, str]] = []
    info = run.backend_info or {}
    for note in info.get("notes") or []:
        rows.append(("backend note", str(note)))
    hops = store.hop_rows([run.id], ["timing_source", "tokens_source"])
    for col, label in (("timing_source", "timing source"), ("tokens_source", "tokens source")):
        counts: dict[str, int] = {}
        for h in hops:
            if h[col]:
                counts[h[col]] = counts.get(h[col], 0) + 1
        if counts:
            rows.extend((label, f"{src} ({n} hop{'s' if n != 1 else ''})") for src, n in sorted(counts.items()))
        elif info.get(col):
            rows.append((label, str(info[col])))
    return rows


def count_text(v: Any) -> str:
    """A count as a whole number (``2,912``): token sums arrive as floats."""
    return "-" if v is None else f"{round(float(v)):,}"


def model_size_text(s: RunSummary) -> str:
    """``qwen2.5-coder-0.5b: 494.0 M parameters, 1.0 GB file`` (what the store knows of it)."""
    parts = []
    if s.model_params:
        parts.append(f"{s.model_params / 1e6:,.1f} M parameters")
    if s.model_bytes:
        parts.append(f"{s.model_bytes / 1e9:,.2f} GB file")
    return f"{s.model or '-'}" + (f": {', '.join(parts)}" if parts else "")


# --------------------------------------------------------------------------------------------
# export


def export_format(output: str, fmt_arg: str | None) -> str:
    """``--format`` when given, else the output's extension (``.json``/``.jsonl``: json, ``.csv``
    or none: csv); ``-`` (standard output) is csv unless ``--format json``."""
    if fmt_arg:
        return fmt_arg
    suffix = Path(output).suffix.lower() if output != "-" else ""
    if suffix in (".json", ".jsonl"):
        return "json"
    if suffix in ("", ".csv"):
        return "csv"
    raise AgentsimError(f"cannot tell the export format from {output!r} (extension {suffix})",
                        hint="name the file .csv or .json, or give --format csv|json")


def export_runs(store: Any, run_ids: Sequence[int]) -> tuple[Any, dict[str, Any]]:
    """The hop rows (a DataFrame, by run, instance and topological order) and the JSON payload:
    ``{"format": "agentsim-export", "version": 1, "runs": [{"run", "summary", "instances", "hops"}]}``.

    ``run`` is the stored run record (backend spec, scenario reference, params, precision,
    source precision, machine, energy meter, ...); ``instances`` the instance records (vars,
    expected answers, system prompt, success, root causes).
    """
    from agentsim.analysis import summarize_run
    from agentsim.api import Results

    runs = [store.get_run(i) for i in run_ids]
    frames = Results(store=store, runs=runs).to_pandas(summaries=False)
    hops = frames.hops
    blocks = []
    for r in runs:
        part = hops[hops["run_id"] == r.id] if not hops.empty else hops
        blocks.append({
            "run": json.loads(r.model_dump_json()),
            "summary": summarize_run(store, r).to_json(),
            "instances": [json.loads(i.model_dump_json()) for i in store.instances(r.id)],
            "hops": json.loads(part.to_json(orient="records", date_format="iso")) if not part.empty else [],
        })
    return hops, {"format": "agentsim-export", "version": 1, "runs": blocks}


def cmd_export(args: argparse.Namespace) -> int:
    store = open_store(args, readonly=True)
    ids = list(dict.fromkeys(args.run_ids or []))
    if args.launch:
        launch_ids = [r.id for r in reversed(store.list_runs()) if r.launch_id == args.launch]
        if not launch_ids:
            raise AgentsimError(f"no runs of launch {args.launch!r} in {store.db}",
                                hint="agentsim runs --json lists each run's launch_id")
        ids += [i for i in launch_ids if i not in ids]
    if not ids:
        raise AgentsimError("nothing to export", hint="give run ids (agentsim export 3 4 -o out.csv) or --launch ID")
    fmt_name = export_format(args.output, args.format)
    to_stdout = args.output == "-"
    out = Path(args.output)
    if not to_stdout:
        if out.is_dir():
            raise AgentsimError(f"cannot write {out}: it is a folder", hint="give a file name, e.g. -o runs.csv")
        if not out.parent.exists():
            raise AgentsimError(f"cannot write {out}: folder {out.parent} does not exist",
                                hint=f"create it first (mkdir -p {out.parent}) or write elsewhere")
    hops, payload = export_runs(store, ids)
    text = hops.to_csv(index=False) if fmt_name == "csv" else json.dumps(payload, indent=2, default=str) + "\n"
    if to_stdout:
        sys.stdout.write(text)
    else:
        try:
            out.write_text(text)
        except OSError as exc:
            raise AgentsimError(f"cannot write {out}: {exc.strerror or exc}") from None
    which = ", ".join(str(i) for i in ids)
    console(stderr=True).print(esc(f"wrote {len(hops)} hops of run{'s' if len(ids) > 1 else ''} {which} "
                                   f"as {fmt_name} to {'standard output' if to_stdout else out}"))
    return 0


# --------------------------------------------------------------------------------------------
# compare


def compare_ids(store: Any, run_ids: Sequence[int], baseline: int | str | None) -> tuple[list[int], list[str]]:
    """The runs to compare (an explicit baseline run first when it was not among them) and notes.
    A precision name as ``baseline`` is checked by the analysis (within each group of runs).

    Every id must exist: a missing one is a :class:`StoreError` naming it.
    """
    from agentsim.errors import StoreError

    notes: list[str] = []
    ids = list(dict.fromkeys(int(i) for i in run_ids))
    for i in ids:
        store.get_run(i)
    if baseline is not None and str(baseline).strip().isdigit():
        baseline = int(baseline)
        try:
            store.get_run(baseline)
        except StoreError:
            raise StoreError(f"--baseline {baseline}: no run {baseline} in {store.db}",
                             hint="agentsim runs lists the runs; omit --baseline for the top rung of each group") from None
        if baseline not in ids:
            ids.insert(0, baseline)
            notes.append(f"baseline run {baseline} was not among the compared runs: it is included")
    return ids, notes


def cmd_compare(args: argparse.Namespace) -> int:
    from agentsim.analysis import compare_runs
    from agentsim.analysis.results import to_json
    from agentsim.report import comparison_table, failing_baseline_note, mixed_runs_warning

    store = open_store(args, readonly=True)
    ids, notes = compare_ids(store, args.run_ids, args.baseline)
    rows = compare_runs(store, ids, baseline=args.baseline)
    warning = mixed_runs_warning(rows)
    err = console(stderr=True)
    for n in notes:
        err.print(f"[yellow]note:[/yellow] {esc(n)}")
    if warning:
        err.print(f"[yellow]warning:[/yellow] {esc(warning)}")
    failing = failing_baseline_note(rows)
    if failing:
        err.print(f"[yellow]warning:[/yellow] {esc(failing)}")
    if args.json:
        print_json(to_json(rows))
        return 0
    console().print(comparison_table(rows), soft_wrap=False)
    from agentsim.report import fidelity_table

    ft = fidelity_table(rows)
    if ft is not None:
        console().print(ft, soft_wrap=False)
    return 0


# --------------------------------------------------------------------------------------------


def add_cli(sub: Any) -> None:
    sp = sub.add_parser("runs", help="list runs")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--limit", type=int, default=None)
    db_arg(sp)
    sp.set_defaults(func=cmd_runs)

    sp = sub.add_parser("show", help="one run's figures")
    sp.add_argument("run_id", type=int)
    sp.add_argument("--json", action="store_true")
    db_arg(sp)
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser("compare", help="compare runs against a baseline run")
    sp.add_argument("run_ids", type=int, nargs="+")
    sp.add_argument("--baseline", type=str, default=None,
                    help="run id or precision (default: top rung of the same model, scenario, params and mode)")
    sp.add_argument("--json", action="store_true")
    db_arg(sp)
    sp.set_defaults(func=cmd_compare)

    sp = sub.add_parser("export", help="export runs' hop traces (CSV) or runs, instances and hops (JSON)")
    sp.add_argument("run_ids", type=int, nargs="*", metavar="RUN_ID")
    sp.add_argument("--launch", metavar="LAUNCH_ID", help="also every run of this launch")
    sp.add_argument("--format", choices=("csv", "json"), default=None,
                    help="default: from the output's extension (.json or .jsonl: json; .csv, none or "
                         "- for standard output: csv; any other extension is refused)")
    sp.add_argument("-o", "--output", required=True, help="file to write, or - for standard output")
    db_arg(sp)
    sp.set_defaults(func=cmd_export)
