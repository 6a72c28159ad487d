"""The Python API: batch simulations from a script or a notebook.

>>> import agentsim
>>> res = agentsim.simulate(["chain-linear"], ["oracle", "noisy,p=0.2"], instances=20, seed=1,
...                         mode="both", db="runs.db")
>>> frames = res.to_pandas()
>>> frames.runs[["backend", "mode", "accuracy", "task_success"]]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict

from .errors import AgentsimError
from .store import RunRead, Store, batch_size_of, scenario_label_of

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .analysis.summary_results import RunSummary

__all__ = ["simulate", "LaunchKeywords", "Results", "Frames", "load_results"]


class Frames(NamedTuple):
    """``runs``: one row per run (summary figures); ``hops``: one row per hop trace."""

    runs: Any
    hops: Any


@dataclass
class Results:
    """The runs of a simulation, backed by the store they were written to."""

    store: Store
    runs: list[RunRead]
    failures: list[tuple[str, AgentsimError]] = field(default_factory=list)

    @property
    def run_ids(self) -> list[int]:
        return [r.id for r in self.runs]

    def summaries(self) -> list[RunSummary]:
        from .analysis import summarize_run

        return [summarize_run(self.store, r.id) for r in self.runs]

    def __repr__(self) -> str:
        ids = self.run_ids
        shown = ", ".join(str(i) for i in ids[:8]) + (", …" if len(ids) > 8 else "")
        scen = sorted({scenario_label_of(r) for r in self.runs})
        back = sorted({r.backend for r in self.runs})
        fail = f", {len(self.failures)} failed backend(s)" if self.failures else ""
        return (f"<Results {len(ids)} run(s) [{shown}] in {self.store.db}: "
                f"{len(scen)} scenario(s) {', '.join(scen[:3])}{'…' if len(scen) > 3 else ''}; "
                f"{len(back)} backend(s) {', '.join(back[:3])}{'…' if len(back) > 3 else ''}{fail}>")

    __str__ = __repr__

    def to_pandas(self, *, summaries: bool = True) -> Frames:
        """Run-level and hop-level pandas DataFrames.

        ``runs``: one row per run with its summary figures (``scenario_label`` tells two
        scenarios of one name apart: ``pointer-chase(depth=4 distractors=8)``) and one
        ``param_<name>`` column per launch parameter (e.g. ``param_depth`` for a depth sweep;
        missing where a run lacks it). ``hops``: one row per hop, ordered by run, instance and
        topological order, with the run's scenario, scenario label, backend, precision, mode and
        ``param_<name>`` columns.
        ``summaries=False`` skips the run figures (the runs frame then holds the run records).
        """
        import pandas as pd

        from .analysis import summarize_run
        from .analysis.results import Result, present

        param_names = sorted({k for r in self.runs for k in (r.params or {})})
        run_rows = []
        by_id = {r.id: r for r in self.runs}
        for r in self.runs:
            rid = r.id
            if not summaries:
                row = {k: v for k, v in r.model_dump().items() if not isinstance(v, (dict, list))}
            else:
                s = summarize_run(self.store, r.id)
                # the summary's scalar figures, in its fields' order (its nested results, dicts and lists
                # have their own columns below)
                row = {f.name: v for f in dataclasses.fields(s)
                       if present(v := getattr(s, f.name)) and not isinstance(v, (dict, list, Result))}
                for kind, n in s.error_kinds.items():
                    row[f"errors_{kind}"] = n
                row["energy_j"] = s.energy.joules
                row["energy_kind"] = s.energy.kind
                row["energy_source"] = s.energy.source
                row["reliability_r"] = s.reliability.r
                # flips against the reference run, fidelity (KLD, same top) and the noise floor
                from agentsim.fidelity import flat_figures, run_figures

                row.update(flat_figures(run_figures(self.store, by_id[rid])))
            row["batch_size"] = batch_size_of(by_id[rid])
            for name in param_names:
                row[f"param_{name}"] = (by_id[rid].params or {}).get(name)
            run_rows.append(row)
        runs = pd.DataFrame(run_rows)
        hop_rows = self.store.hop_rows(self.run_ids)
        hops = pd.DataFrame(hop_rows)
        if not hops.empty:
            order = {rid: i for i, rid in enumerate(self.run_ids)}
            hops = (hops.assign(_run_order=hops["run_id"].map(order))
                    .sort_values(["_run_order", "instance_index", "topo_index"], kind="stable")
                    .drop(columns="_run_order").reset_index(drop=True))
            meta = by_id
            hops.insert(1, "scenario", hops["run_id"].map(lambda i: meta[i].scenario))
            hops.insert(2, "scenario_label", hops["run_id"].map(lambda i: scenario_label_of(meta[i])))
            hops.insert(3, "backend", hops["run_id"].map(lambda i: meta[i].backend))
            hops.insert(4, "precision", hops["run_id"].map(lambda i: meta[i].precision))
            hops.insert(5, "mode", hops["run_id"].map(lambda i: meta[i].mode))
            for j, name in enumerate(param_names):
                hops.insert(6 + j, f"param_{name}", hops["run_id"].map(lambda i, n=name: (meta[i].params or {}).get(n)))
        return Frames(runs=runs, hops=hops)

    def raise_for_failures(self) -> None:
        if self.failures:
            spec, exc = self.failures[0]
            raise AgentsimError(f"backend {spec} failed: {exc}")


class LaunchKeywords(TypedDict, total=False):
    """The keywords of :func:`simulate` that say what to run; each is a :class:`~agentsim.launch.Launch`
    field (``mode`` is ``modes``, ``batch`` is ``batch_sizes``), whose defaults apply."""

    instances: int
    seed: int
    mode: str | Sequence[str]
    params: dict[str, Any] | None
    energy: str
    batch: int | str | Sequence[int]
    executor: str | None


#: simulate's keywords named otherwise in Launch
_LAUNCH_FIELD = {"mode": "modes", "batch": "batch_sizes"}


def simulate(
    scenarios: str | Path | Sequence[Any],
    backends: str | Sequence[str],
    *,
    db: str | Path | Store | None = None,
    progress: Any = None,
    raise_on_failure: bool = True,
    **launch: Unpack[LaunchKeywords],
) -> Results:
    """Run scenarios against backends and store every hop.

    ``scenarios``: scenario file paths, bundled names, family names or :class:`Scenario` objects.
    ``backends``: spec strings (``"noisy,p=0.2"``, ``"llama:qwen2.5-coder-0.5b@q4_k_m"``).
    ``db``: a path or SQLAlchemy URL (default ``$AGENTSIM_DB`` or ``./agentsim.db``).
    ``progress``: called after every hop with a :class:`~agentsim.engine.Progress`.
    What to run (:class:`LaunchKeywords`, defaults in brackets): ``instances`` (10), ``seed`` (0),
    ``mode``: ``"free"`` (default), ``"oracle"`` or ``"both"``. ``params``: generator parameters
    (values may be lists to sweep: ``{"depth": [1, 2, 3]}``). ``energy`` (``"auto"``).
    ``batch`` (1): instances advanced together, their ready hops sent to the backend as one call;
    a list (or ``"1,4,16"``) sweeps.
    ``executor``: ``None``/``"in-process"``, or ``"ray[,address=auto][,num_gpus=N]..."`` (the runs
    are spread over long-lived Ray workers, one per CPU/GPU slot; docs/distributed.md).
    """
    from .launch import Launch, RunControl, run_launch
    from .scenario import Scenario

    unknown = sorted(set(launch) - set(LaunchKeywords.__annotations__))
    if unknown:
        raise TypeError(f"simulate() got an unexpected keyword argument {unknown[0]!r}")
    if isinstance(scenarios, (str, Path, Scenario)):
        scenarios = [scenarios]
    if isinstance(backends, str):
        backends = [backends]
    fields = {_LAUNCH_FIELD.get(k, k): v for k, v in launch.items()}
    request = Launch(scenarios=list(scenarios), backends=list(backends), **fields)
    store = db if isinstance(db, Store) else Store(db)
    result = run_launch(request, store=store, control=RunControl(progress=progress))
    results = Results(store=store, runs=result.runs, failures=result.failures)
    if raise_on_failure:
        results.raise_for_failures()
    return results


def load_results(db: str | Path | Store | None = None, run_ids: Sequence[int] | None = None) -> Results:
    """Results for runs already in a database (all runs when ``run_ids`` is None).

    ``db``: a path, SQLAlchemy URL or :class:`Store` (default ``$AGENTSIM_DB`` or
    ``./agentsim.db``). A database file that does not exist is a :class:`StoreError`: reading
    never creates one. An unknown run id is a :class:`StoreError` naming it.
    """
    if isinstance(db, Store):
        store = db
    else:
        from .store import default_db

        path = str(db) if db is not None else default_db()
        if "://" not in path and not Path(path).exists():
            from .errors import StoreError

            raise StoreError(f"database {path} does not exist",
                             hint="give the path of a database written by agentsim run or agentsim.simulate")
        store = Store(path, readonly=False)
    runs = [store.get_run(i) for i in run_ids] if run_ids else list(reversed(store.list_runs()))
    return Results(store=store, runs=runs)
