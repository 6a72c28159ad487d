"""The typed results of ``agentsim show`` and ``agentsim compare``: one run's summary and a compare row.

Built on the mechanism of :mod:`.results` (frozen dataclasses, one :func:`.results.to_json`): their
JSON is what ``show --json`` and ``compare --json`` print, held with its key order by
``tests/unit/test_show_compare_golden.py``. The CLI, the report tables and the TUI's compare
screen read their attributes.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar

from .results import ABSENT, DepthLoss, PairedComparison, Result, Verdict

if TYPE_CHECKING:
    from agentsim.fidelity import RunFidelity

__all__ = ["RunSummary", "CompareRow"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunSummary(Result):
    """The figures of one run (:func:`.summary.summarize_run`; ``agentsim show --json`` prints its
    JSON, with ``batch_size``, ``model_params``, ``model_bytes`` and ``fidelity`` filled in).

    Accuracy and task success with their 95 % intervals (hop accuracy clustered by instance), the
    sums of the hops' tokens and times, the energy summary (:func:`.energy.energy_summary`),
    accuracy by depth and the cluster-bootstrap reliability fit (its headline keys)."""

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
    energy: dict[str, Any]
    energy_per_correct_task_j: float | None
    accuracy_by_depth: dict[str, dict[str, Any]]
    model_hop_accuracy_by_depth: dict[str, dict[str, Any]]
    machine: dict[str, Any] | None
    created_at: str | None
    finished_at: str | None
    reliability: dict[str, Any]
    # what `show` adds (absent from summarize_run's own result and from compare's rows)
    batch_size: int = ABSENT
    model_params: int | None = ABSENT
    model_bytes: int | None = ABSENT
    #: the reference run, flips, fidelity and noise floor (:func:`agentsim.fidelity.run_figures`)
    fidelity: RunFidelity | None = ABSENT

    @property
    def energy_kind(self) -> str | None:
        return self.energy.get("kind")  # type: ignore[no-any-return]


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
