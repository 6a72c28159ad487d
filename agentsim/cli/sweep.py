"""``agentsim sweep NAME|FILE`` runs a sweep definition; ``agentsim scale`` reads N* from the runs.

``agentsim scale RUN_IDS|--all [--json] [--svg FILE]`` prints, for each low-precision rung
against its model's top rung, the ratio curves over model size and the crossing N*
(:func:`agentsim.analysis.scale.scale_analysis`).

A sweep file is YAML (``scenarios/sweeps/*.yaml`` are bundled; ``agentsim sweep --list`` names
them)::

    name: scale
    scenarios: [chain-arith, var-track]      # families, bundled names or files
    params: {depth: 1..6}                    # a..b ranges and lists sweep, as --param does
    backend: llama                           # the backend every model runs on
    models: all                              # 'all' (every catalog model) or a list of names
    precisions: [f16, q8_0, q4_k_m, q4_0, nvfp4]
    options: {n_threads: 2}                  # backend options, appended to every spec
    modes: [free, oracle]
    instances: 30
    seed: 0
    batch: [1]
    energy: auto

It becomes one :class:`agentsim.launch.Launch` (one launch id: every model and precision sees the
same instances), run by :func:`agentsim.launch.run_launch`, the one run path. ``--dry-run`` prints
the plan and the rungs still to build; ``--prepare`` builds them first.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentsim.console import name_column
from agentsim.errors import AgentsimError

from .common import console, db_arg, failures_exit_code, open_store, run_mode

if TYPE_CHECKING:
    from agentsim.analysis.results import Estimate

__all__ = ["SweepDef", "load_sweep", "bundled_sweeps", "sweep_launch", "cmd_scale", "add_cli"]

_KEYS = {"name", "description", "scenarios", "params", "backend", "models", "precisions", "options", "modes",
         "instances", "seed", "batch", "energy"}


@dataclass
class SweepDef:
    """A sweep as its file states it (checked), before it is expanded into runs."""

    name: str
    scenarios: list[str]
    models: list[str]
    precisions: list[str]
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    backend: str = "llama"
    options: dict[str, Any] = field(default_factory=dict)
    modes: list[str] = field(default_factory=lambda: ["free"])
    instances: int = 30
    seed: int = 0
    batch: list[int] = field(default_factory=lambda: [1])
    energy: str = "auto"
    path: str | None = None

    def backend_specs(self) -> list[str]:
        opts = "".join(f",{k}={_opt(v)}" for k, v in self.options.items())
        return [f"{self.backend}:{m}@{p}{opts}" for m in self.models for p in self.precisions]

    def param_strings(self) -> list[str]:
        out = []
        for k, v in self.params.items():
            if isinstance(v, (list, tuple)):
                out.append(f"{k}={'|'.join(str(x) for x in v)}")
            else:
                out.append(f"{k}={v}")
        return out


def _opt(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _sweeps_dir() -> Path:
    from agentsim.scenario.bundled import bundled_dir

    return bundled_dir() / "sweeps"


def bundled_sweeps() -> dict[str, Path]:
    """Bundled sweep files by name (``scenarios/sweeps/*.yaml``)."""
    d = _sweeps_dir()
    return {f.stem: f for f in sorted(d.glob("*.y*ml"))} if d.is_dir() else {}


def _str_list(data: dict[str, Any], key: str, where: str, default: list[str] | None = None) -> list[str]:
    v = data.get(key, default)
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, (str, int)) for x in v):
        raise AgentsimError(f"{where}: '{key}' must be a name or a non-empty list of names")
    return [str(x) for x in v]


def load_sweep(ref: str | Path) -> SweepDef:
    """A bundled sweep name or a YAML file -> the checked :class:`SweepDef`."""
    import yaml

    from agentsim.models import CATALOG

    path = bundled_sweeps().get(str(ref)) or Path(ref)
    if not path.is_file():
        names = ", ".join(bundled_sweeps()) or "none"
        raise AgentsimError(f"no sweep {str(ref)!r}: neither a bundled sweep nor a file", hint=f"bundled: {names}")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AgentsimError(f"sweep file {path}: cannot read it: {exc}") from None
    where = f"sweep file {path}"
    if not isinstance(data, dict):
        raise AgentsimError(f"{where}: expected a mapping of keys ({', '.join(sorted(_KEYS))})")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise AgentsimError(f"{where}: unknown key(s) {', '.join(unknown)}", hint=f"keys: {', '.join(sorted(_KEYS))}")
    models = data.get("models", "all")
    # "all": every catalog model but the cost twins (random weights: they answer nothing)
    model_list = [n for n, m in CATALOG.items() if not m.twin] if models == "all" else _str_list(data, "models", where)
    for key in ("params", "options"):
        if not isinstance(data.get(key) or {}, dict):
            raise AgentsimError(f"{where}: '{key}' must be a mapping")
    batch = data.get("batch", [1])
    batch = [batch] if isinstance(batch, int) else batch
    instances = data.get("instances", 30)
    if not isinstance(instances, int) or isinstance(instances, bool) or instances < 1:
        raise AgentsimError(f"{where}: 'instances' must be a whole number >= 1")
    return SweepDef(
        name=str(data.get("name") or path.stem), description=str(data.get("description") or ""),
        scenarios=_str_list(data, "scenarios", where), params=dict(data.get("params") or {}),
        backend=str(data.get("backend", "llama")), models=model_list,
        precisions=_str_list(data, "precisions", where, ["f16"]), options=dict(data.get("options") or {}),
        modes=_str_list(data, "modes", where, ["free"]), instances=instances, seed=int(data.get("seed", 0)),
        batch=list(batch), energy=_energy(data.get("energy", "auto")), path=str(path),
    )


def _energy(v: Any) -> str:
    """YAML reads a bare ``off`` as False (and ``on`` as True)."""
    if v is False:
        return "off"
    if v is True:
        return "auto"
    return str(v)


def sweep_launch(sweep: SweepDef) -> Any:
    """The :class:`agentsim.launch.Launch` that runs ``sweep`` (checked, not run)."""
    from agentsim.launch import Launch

    launch = Launch(scenarios=list(sweep.scenarios), backends=sweep.backend_specs(), params=sweep.param_strings() or None,
                    modes=list(sweep.modes), instances=sweep.instances, seed=sweep.seed, batch_sizes=list(sweep.batch),
                    energy=sweep.energy)
    launch.check()
    return launch


def _missing_rungs(sweep: SweepDef) -> dict[str, list[str]]:
    """Model -> precisions that do not resolve yet (llama backend only)."""
    from agentsim.models import resolve

    missing: dict[str, list[str]] = {}
    if sweep.backend != "llama":
        return missing
    for m in sweep.models:
        for p in sweep.precisions:
            try:
                resolve(m, p)
            except AgentsimError:
                missing.setdefault(m, []).append(p)
    return missing


def _apply_overrides(sweep: SweepDef, args: argparse.Namespace) -> SweepDef:
    if args.models:
        sweep.models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.precisions:
        sweep.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if args.scenarios:
        sweep.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise AgentsimError(f"--param {item!r}: expected KEY=VALUE (e.g. depth=1..4)")
        sweep.params[key.strip()] = value.strip()
    for item in args.option or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise AgentsimError(f"--option {item!r}: expected KEY=VALUE (e.g. n_threads=1)")
        sweep.options[key.strip()] = value.strip()
    if args.instances is not None:
        sweep.instances = args.instances
    if args.mode:
        sweep.modes = ["free", "oracle"] if args.mode == "both" else [args.mode]
    if args.energy:
        sweep.energy = args.energy
    return sweep


def cmd_sweep(args: argparse.Namespace) -> int:
    out = console()
    if args.list or not args.sweep:
        from rich.table import Table

        t = Table(title="bundled sweeps (agentsim sweep NAME)")
        name_column(t, "name", list(bundled_sweeps()))
        t.add_column("description")
        for name in bundled_sweeps():
            t.add_row(name, load_sweep(name).description)
        out.print(t)
        return 0 if args.list else 2
    sweep = _apply_overrides(load_sweep(args.sweep), args)
    launch = sweep_launch(sweep)
    scenarios = launch.resolved_scenarios()
    specs = launch.backend_specs()
    plans = launch.plans(scenarios)
    hops = sum(len(p.scenario.order) * p.instances for p in plans)
    out.print(f"sweep {sweep.name}: {len(scenarios)} scenario points x {len(specs)} backends x "
              f"{len(launch.plans(scenarios)) // max(1, len(scenarios))} mode/batch = {len(plans) * len(specs)} runs, "
              f"{hops * len(specs):,} hops ({sweep.instances} instances each)", highlight=False)
    missing = _missing_rungs(sweep)
    for m, precs in missing.items():
        out.print(f"  to build: {m} @ {', '.join(precs)}  (agentsim models prepare {m} "
                  f"{' '.join('-p ' + p for p in precs)})", highlight=False)
    if args.dry_run:
        for s in specs:
            out.print(f"  {s}", highlight=False)
        return 0
    if missing:
        if not args.prepare:
            raise AgentsimError(f"{sum(len(v) for v in missing.values())} rung(s) are not built yet (listed above)",
                                hint="build them with the commands above, or rerun with --prepare")
        from agentsim.models import prepare

        for m, precs in missing.items():
            prepare(m, precs, log=out.print)
    from agentsim.console import esc, progress_printer
    from agentsim.launch import RunControl, run_launch
    from agentsim.store import scenario_label_of

    store = open_store(args)
    err = console(stderr=True)
    bar, on_progress = progress_printer(err)
    with bar:
        result = run_launch(launch, store=store, control=RunControl(progress=on_progress))
    for run in result.runs:
        out.print(esc(f"run {run.id}: {scenario_label_of(run)} [{run.mode}] {run.backend} — {run.status}"),
                  highlight=False)
    for spec, exc in result.failures:
        err.print(f"error: backend {spec}: {exc}", highlight=False, markup=False)
    ids = ",".join(str(r.id) for r in result.runs)
    if result.runs:
        out.print(f"launch {result.launch_id}: {len(result.runs)} runs. N*: agentsim scale {ids}", highlight=False)
    return failures_exit_code(result.failures)


def _fmt_ratio(fig: Estimate | None) -> str:
    if not fig or fig.value is None:
        return "-"
    ci = fig.ci95
    return f"{fig.value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def cmd_scale(args: argparse.Namespace) -> int:
    from agentsim.analysis.scale import scale_axis, scale_figure

    if not args.runs and not args.all:
        raise AgentsimError("give RUN_IDS or --all", hint="agentsim runs lists the runs; agentsim scale --all")
    if args.runs and args.all:
        raise AgentsimError("give RUN_IDS or --all, not both")
    ids: list[int] | None = None
    if args.runs:
        ids = []
        for item in args.runs:
            for part in str(item).split(","):
                if part.strip():
                    if not part.strip().isdigit():
                        raise AgentsimError(f"run id {part!r} is not a number", hint="agentsim runs lists the runs")
                    ids.append(int(part))
    store = open_store(args, readonly=True)
    result = scale_axis(store, ids, tolerance=args.tolerance, resamples=args.resamples)
    if args.svg:
        Path(args.svg).write_text(scale_figure(result))
    if args.json:
        from agentsim.console import print_json

        print_json(result.to_json())
        return 0
    from rich.table import Table

    out = console()
    if not result.curves:
        out.print("no curve: N* needs runs of at least one model at its top rung and a lower rung "
                  "(llama runs that record model_params)", highlight=False)
    for cv in result.curves:
        t = Table(title=f"{cv.precision} vs top rung — {cv.family}, {cv.mode}, batch {cv.batch_size} "
                        f"({len(cv.cells)} workload cells)" + (f"\n{cv.label}: accuracy means nothing" if isinstance(cv.label, str) else ""))
        for col in ("model", "params", "instances", "energy/correct ratio", "seconds/correct ratio", "task success ratio"):
            t.add_column(col)
        for p in cv.points:
            t.add_row(p.model, f"{p.params:,}", str(p.instances), _fmt_ratio(p.energy_per_correct_task_ratio)
                      + f" ({p.energy_kind})", _fmt_ratio(p.seconds_per_correct_task_ratio),
                      _fmt_ratio(p.task_success_ratio))
        out.print(t)
        for metric, label in (("energy_per_correct_task", "energy per correct task"),
                              ("seconds_per_correct_task", "seconds per correct task"),
                              ("task_success", f"task success (tolerance {result.tolerance:g})")):
            ns = cv.n_star[metric]
            ci = ns.ci95
            extra = f", 95% interval [{ci[0]:,.0f}, {ci[1]:,.0f}]" if ci else ""
            out.print(f"  N* {label}: {ns.text}{extra}", highlight=False)
        if cv.cells_dropped:
            out.print(f"  ({len(cv.cells_dropped)} cells measured at only some sizes were left out)", highlight=False)
    for s in result.skipped:
        out.print(f"skipped run {s['run_id']}: {s['reason']}", highlight=False)
    if args.svg:
        out.print(f"plot: {args.svg}", highlight=False)
    return 0


def add_cli(sub: Any) -> None:
    sp = sub.add_parser("sweep", help="run a sweep definition (bundled: scale, scale-cpu; or a YAML file)")
    sp.add_argument("sweep", nargs="?", metavar="NAME|FILE", help="a bundled sweep name or a sweep YAML file")
    sp.add_argument("--list", action="store_true", help="list the bundled sweeps")
    sp.add_argument("--dry-run", action="store_true", help="print the plan and the rungs to build; run nothing")
    sp.add_argument("--prepare", action="store_true", help="build missing ladder rungs before running")
    sp.add_argument("--models", metavar="A,B", help="override the sweep's models")
    sp.add_argument("--precisions", metavar="P,Q", help="override the sweep's precisions")
    sp.add_argument("--scenarios", metavar="S,T", help="override the sweep's scenarios")
    sp.add_argument("--param", "-p", action="append", metavar="KEY=VALUE", help="override a parameter (a..b, x|y sweep)")
    sp.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                    help="a backend option for every spec (e.g. n_threads=1)")
    sp.add_argument("--instances", "-n", type=int, help="override the number of instances")
    sp.add_argument("--mode", type=run_mode, metavar="{free,oracle,both}", help="override the modes")
    sp.add_argument("--energy", help="auto | nvml | rapl | estimate | off")
    db_arg(sp)
    sp.set_defaults(func=cmd_sweep)

    sp = sub.add_parser("scale", help="N*: low-precision rung vs top rung by model size (runs spanning sizes)")
    sp.add_argument("runs", nargs="*", metavar="RUN_IDS", help="run ids (space or comma separated)")
    sp.add_argument("--all", action="store_true", help="every run in the database")
    sp.add_argument("--json", action="store_true", help="the full result as JSON")
    sp.add_argument("--svg", metavar="FILE", help="also write the plot (SVG) to FILE")
    sp.add_argument("--tolerance", type=float, default=0.05,
                    help="task-success loss that counts for the accuracy N* (default 0.05)")
    sp.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    db_arg(sp)
    sp.set_defaults(func=cmd_scale)
