"""The typed results of ``agentsim show`` and ``agentsim compare``: one run's summary and a compare row.

Built on the mechanism of :mod:`.results` (frozen dataclasses, one :func:`.results.to_json`): their
JSON is what ``show --json`` and ``compare --json`` print, held with its key order by
``tests/unit/test_show_compare_golden.py``. The CLI, the report tables and the TUI's compare
screen read their attributes.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar

from .results import (
    ABSENT,
    DepthAccuracy,
    DepthLoss,
    PairedComparison,
    ReliabilityHeadline,
    Result,
    Verdict,
)

if TYPE_CHECKING:
    from agentsim.fidelity import RunFidelity

__all__ = ["RunSummary", "CompareRow", "EnergySummary", "EnergyOfKind", "RunEnergyCounter"]


@dataclasses.dataclass(frozen=True)
class EnergyOfKind(Result):
    """The metered hops of one energy kind in a run (``measured``, ``estimated``, ``unavailable``):
    their joules (None when none has a figure), count, sources, and how many read below the
    meter's resolution (with the summed resolution)."""

    joules: float | None
    hops: int
    source: str | None
    hops_below_resolution: int
    resolution_j: float | None


@dataclasses.dataclass(frozen=True)
class RunEnergyCounter(Result):
    """The meter read once around the whole run (the run's ``run_energy_*`` columns; ``hops_covered``
    None: every hop)."""

    joules: float | None
    kind: str
    source: str | None
    resolution_j: float | None
    note: str | None
    hops_covered: int | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnergySummary(Result):
    """A run's energy (:func:`.energy.energy_summary`), never adding measured and estimated joules.

    ``joules`` / ``kind`` / ``source`` describe the run when every metered hop has one kind; else
    ``kind`` is ``mixed`` and ``joules`` None (the totals per kind are in ``by_kind``), and
    ``unavailable`` with no figure when nothing was metered. ``run_counter`` and
    ``hop_share_of_run`` (the hops' joules over the run-level reading, where comparable) are there
    only when the summary was made with the run."""

    joules: float | None
    kind: str
    source: str | None
    by_kind: dict[str, EnergyOfKind]
    hops_metered: int
    hops_not_metered: int
    hops_below_resolution: int
    run_counter: RunEnergyCounter = ABSENT
    hop_share_of_run: float | None = ABSENT

    @property
    def summable(self) -> bool:
        """Whether ``joules`` is one kind's figure that may be added to another run's of the same kind."""
        return self.kind in ("measured", "estimated")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunSummary(Result):
    """The figures of one run (:func:`.summary.summarize_run`; ``agentsim show --json`` prints its
    JSON, with ``batch_size``, ``model_params``, ``model_bytes`` and ``fidelity`` filled in).

    Accuracy and task success with their 95 % intervals (hop accuracy clustered by instance), the
    sums of the hops' tokens and times, the energy summary (:class:`EnergySummary`), accuracy by
    depth (:class:`.results.DepthAccuracy`, all hops and model hops) and the headline of the
    cluster-bootstrap reliability fit (:class:`.results.ReliabilityHeadline`).

    Plain mappings on purpose: ``params`` (the user's launch parameters), ``error_kinds`` and
    ``stop_reasons`` (counts by an open set of names), and ``machine``, the fingerprint stored with
    the run as :func:`agentsim.hardware.machine_info` wrote it (its keys vary with the version and
    the machine; :func:`agentsim.render.facts.machine_text` reads it)."""

    run_id: int
    scenario_label: str
    scenario: str
    scenario_fingerprint: str | None
    params: dict[str, Any] | None
    backend: str
    model: str | None
    precision: str | None
    precision_mode: str | None
    kernel: str | None
    source_precision: str | None
    model_sha256: str | None
    mode: str
    seed: int | None
    launch_id: str | None
    status: str
    error: str | None
    instances: int
    instances_finished: int
    hops_expected: int
    hops_recorded: int
    accuracy: float | None
    accuracy_ci95: list[float] | None
    model_hops: int
    model_hop_accuracy: float | None
    model_hop_accuracy_ci95: list[float] | None
    task_success: float | None
    task_success_ci95: list[float] | None
    final_correct: float | None
    error_kinds: dict[str, int]
    #: why generation stopped, over the LLM hops (eos / stop / grammar / length; "None": not told)
    stop_reasons: dict[str, int]
    truncation_rate: float | None
    prompt_tokens: float | None
    completion_tokens: float | None
    cached_tokens: float | None
    prefill_s: float | None
    decode_s: float | None
    wall_s: float | None
    ttft_s_mean: float | None
    wall_s_per_hop: float | None
    decode_tokens_per_s: float | None
    energy: EnergySummary
    energy_per_correct_task_j: float | None
    accuracy_by_depth: dict[str, DepthAccuracy]
    model_hop_accuracy_by_depth: dict[str, DepthAccuracy]
    machine: dict[str, Any] | None
    created_at: str | None
    finished_at: str | None
    reliability: ReliabilityHeadline
    # what `show` adds (absent from summarize_run's own result and from compare's rows)
    batch_size: int = ABSENT
    model_params: int | None = ABSENT
    model_bytes: int | None = ABSENT
    #: the reference run, flips, fidelity and noise floor (:func:`agentsim.fidelity.run_figures`)
    fidelity: RunFidelity | None = ABSENT

    @property
    def energy_kind(self) -> str:
        return self.energy.kind


@dataclasses.dataclass(frozen=True, kw_only=True)
class CompareRow(RunSummary):
    """One run of :func:`.summary.compare_runs` (``agentsim compare --json``): its summary with,
    against its baseline, the paired ratios (``relative``, ``relative_ci95``: by summary name), the
    paired comparison, loss by depth and the verdict of ``evaluate()``, and its fidelity figures."""

    baseline_run_id: int | None
    relative: dict[str, float | None]
    relative_ci95: dict[str, list[float] | None]
    paired: PairedComparison | None
    depth: DepthLoss | None
    verdict: Verdict | None
    fidelity: RunFidelity | None = None

    _json_order: ClassVar[tuple[str, ...]] = (
        *(f.name for f in dataclasses.fields(RunSummary) if f.name != "fidelity"),
        "baseline_run_id", "relative", "relative_ci95", "paired", "depth", "verdict", "fidelity")

    @property
    def is_baseline(self) -> bool:
        return self.run_id == self.baseline_run_id
