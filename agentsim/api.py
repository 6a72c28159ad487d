"""The Python API: batch simulations from a script or a notebook.

>>> import agentsim
>>> res = agentsim.simulate(["chain-linear"], ["oracle", "noisy,p=0.2"], instances=20, seed=1,
...                         mode="both", db="runs.db")
>>> frames = res.to_pandas()
>>> frames.runs[["backend", "mode", "accuracy", "task_success"]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .errors import AgentsimError
from .store import RunRead, Store

__all__ = ["simulate", "Results", "Frames", "load_results"]


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

    def summaries(self) -> list[dict[str, Any]]:
        from .analysis import summarize_run

        return [summarize_run(self.store, r.id) for r in self.runs]

    def to_pandas(self) -> Frames:
        """Run-level and hop-level pandas DataFrames."""
        import pandas as pd

        summaries = self.summaries()
        run_rows = []
        for s in summaries:
            row = {k: v for k, v in s.items() if not isinstance(v, (dict, list))}
            for kind, n in s["error_kinds"].items():
                row[f"errors_{kind}"] = n
            row["energy_j"] = s["energy"]["joules"]
            row["energy_kind"] = s["energy"]["kind"]
            row["energy_source"] = s["energy"]["source"]
            row["reliability_r"] = s["reliability"]["r"]
            run_rows.append(row)
        runs = pd.DataFrame(run_rows)
        hop_rows = self.store.hop_rows(self.run_ids)
        hops = pd.DataFrame(hop_rows)
        if not hops.empty:
            meta = {r.id: r for r in self.runs}
            hops.insert(1, "scenario", hops["run_id"].map(lambda i: meta[i].scenario))
            hops.insert(2, "backend", hops["run_id"].map(lambda i: meta[i].backend))
            hops.insert(3, "precision", hops["run_id"].map(lambda i: meta[i].precision))
            hops.insert(4, "mode", hops["run_id"].map(lambda i: meta[i].mode))
        return Frames(runs=runs, hops=hops)

    def raise_for_failures(self) -> None:
        if self.failures:
            spec, exc = self.failures[0]
            raise AgentsimError(f"backend {spec} failed: {exc}")


def simulate(
    scenarios: str | Path | Sequence[Any],
    backends: str | Sequence[str],
    *,
    instances: int = 10,
    seed: int = 0,
    mode: str = "free",
    db: str | Path | Store | None = None,
    params: dict[str, Any] | None = None,
    energy: str = "auto",
    progress: Any = None,
    raise_on_failure: bool = True,
    batch: int | str | Sequence[int] = 1,
) -> Results:
    """Run scenarios against backends and store every hop.

    ``scenarios``: scenario file paths, bundled names, family names or :class:`Scenario` objects.
    ``backends``: spec strings (``"noisy,p=0.2"``, ``"llama:qwen2.5-coder-0.5b@q4_k_m"``).
    ``mode``: ``"free"``, ``"oracle"`` or ``"both"``. ``params``: generator parameters
    (values may be lists to sweep: ``{"depth": [1, 2, 3]}``). ``batch``: instances advanced
    together, their ready hops sent to the backend as one call; a list (or ``"1,4,16"``) sweeps.
    ``db``: a path or SQLAlchemy URL (default ``$AGENTSIM_DB`` or ``./agentsim.db``).
    """
    from .launch import Launch, run_launch
    from .scenario import Scenario

    if isinstance(scenarios, (str, Path, Scenario)):
        scenarios = [scenarios]
    if isinstance(backends, str):
        backends = [backends]
    launch = Launch(scenarios=list(scenarios), backends=list(backends), params=params, modes=mode,
                    instances=instances, seed=seed, energy=energy, batch_sizes=batch)
    store = db if isinstance(db, Store) else Store(db)
    result = run_launch(launch, store=store, progress=progress)
    runs, failures = result.runs, result.failures
    results = Results(store=store, runs=runs, failures=failures)
    if raise_on_failure:
        results.raise_for_failures()
    return results


def load_results(db: str | Path | None = None, run_ids: Sequence[int] | None = None) -> Results:
    """Results for runs already in a database (all runs when ``run_ids`` is None)."""
    store = Store(db, readonly=False)
    runs = [store.get_run(i) for i in run_ids] if run_ids else list(reversed(store.list_runs()))
    return Results(store=store, runs=runs)
