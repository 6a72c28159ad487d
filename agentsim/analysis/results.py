"""The typed results of the analysis.

Every result is a frozen dataclass deriving from :class:`agentsim.result.Result` (re-exported
here with :data:`ABSENT`, :func:`present` and :func:`to_json`: the one way a result becomes JSON,
described in :mod:`agentsim.result`).

The JSON of these types is the schema of ``evaluate()`` (docs/statistics.md, held byte for byte by
``tests/unit/test_analysis_golden.py``); readers in render/, cli/ and tui/ read the attributes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from agentsim.result import ABSENT, Result, present, to_json

__all__ = ["ABSENT", "Result", "to_json", "present", "Estimate", "PairedEstimate", "ClusteredEstimate", "Discordant",
           "Pairing", "PairedComparison", "DepthAccuracy", "ShareOf", "SingleRun", "Verdict", "RunEvaluation",
           "RunVerdict", "Evaluation", "Candidate", "Recommendation", "NStar", "ScalePoint", "ScaleCurve",
           "ScaleAnalysis", "Compounding", "SecondaryFigure", "AccuracyTests", "EfficiencyTests", "CostSummary",
           "VerdictSummary", "DepthLossPoint", "BucketLoss", "Interaction", "DepthLoss", "Reliability", "ReliabilityHeadline",
           "RootCauses",
           "Propagation", "SweepPoint", "Sweep",
           "IdentityDifference", "ScaleRatio"]


@dataclasses.dataclass(frozen=True)
class Estimate(Result):
    """One figure with its 95 % interval: a value of one run (``single``), a paired difference or
    ratio (:class:`PairedEstimate`), or one that could not be formed (``value`` None, ``reason``)."""

    value: float | None
    ci95: list[float] | None = None
    se: float | None = ABSENT
    method: str = ABSENT
    undefined_resamples: float = ABSENT   # share of resamples with an undefined figure (when any)
    extended_to_point: bool = ABSENT      # the percentile interval was widened to hold the point
    kind: str | None = ABSENT             # energy figures: measured / estimated
    reason: str = ABSENT                  # why there is no value

    @property
    def defined(self) -> bool:
        return self.value is not None


@dataclasses.dataclass(frozen=True)
class Discordant(Result):
    """Instances right in one run only: the run (``run_only``) or the baseline (``baseline_only``)."""

    run_only: int
    baseline_only: int


@dataclasses.dataclass(frozen=True)
class PairedEstimate(Estimate):
    """A paired difference (run − baseline) or ratio (run / baseline) with the two runs' own figures,
    its test where it has one, and (cost ratios) the bootstrap SE of its log."""

    run: float | None = ABSENT
    baseline: float | None = ABSENT
    unpaired_ci95: list[float] | None = ABSENT   # what independent resampling would give
    p_value: float = ABSENT
    test: str = ABSENT
    discordant: Discordant = ABSENT
    se_log: float | None = ABSENT
    simulated: bool = ABSENT

    _json_order: ClassVar[tuple[str, ...]] = (
        "value", "ci95", "se", "method", "undefined_resamples", "extended_to_point", "reason", "run", "baseline",
        "unpaired_ci95", "p_value", "test", "discordant", "se_log", "kind", "simulated")


@dataclasses.dataclass(frozen=True)
class IdentityDifference(PairedEstimate):
    """The baseline against itself: a difference of exactly 0 (its keys in their own order)."""

    _json_order: ClassVar[tuple[str, ...]] = ("value", "ci95", "p_value", "method", "run", "baseline")


@dataclasses.dataclass(frozen=True)
class ScaleRatio(PairedEstimate):
    """A pooled ratio of the scale axis (low rung / its model's top rung) at one model size."""

    _json_order: ClassVar[tuple[str, ...]] = ("value", "ci95", "run", "baseline", "undefined_resamples", "reason")


@dataclasses.dataclass(frozen=True)
class Pairing(Result):
    """What two runs have in common (the units of a paired comparison)."""

    paired: bool
    instances_paired: int
    hops_paired: int
    model_hops_paired: int
    instances_only_in_run: int
    instances_only_in_baseline: int
    hop_ids_differ: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class PairedComparison(Result):
    """A run against its baseline on the instances and hops both have (:func:`.paired.compare_pair`).

    ``differences``: accuracy figures, run − baseline; ``ratios``: accuracy and cost figures, run /
    baseline (None where a figure is undefined on a side). ``identity``: the baseline itself."""

    pairing: Pairing | None = dataclasses.field(default=None, metadata={"flatten": True})
    identity: bool
    differences: dict[str, PairedEstimate | None]
    ratios: dict[str, PairedEstimate | None]
    note: str = ABSENT
    zero_discordance_bound: float = ABSENT

    def difference(self, name: str) -> PairedEstimate | None:
        return self.differences.get(name)

    def ratio(self, name: str) -> PairedEstimate | None:
        return self.ratios.get(name)


@dataclasses.dataclass(frozen=True)
class ClusteredEstimate(Result):
    """A share over hops with a Wilson interval clustered by instance (its effective sample size);
    read like an :class:`Estimate` (``value``, ``ci95``, ``method``), its fields in the JSON's order."""

    value: float | None
    ci95: list[float] | None
    n_eff: float
    design_effect: float
    method: str


@dataclasses.dataclass(frozen=True)
class DepthAccuracy(Result):
    """Hops right at one depth: with the clustered Wilson interval in ``evaluate()``'s single-run
    figures, without it (``ci95`` absent) in a run summary's ``accuracy_by_depth``."""

    correct: int
    n: int
    accuracy: float
    ci95: list[float] | None = ABSENT


@dataclasses.dataclass(frozen=True)
class ShareOf(Result):
    """A share of ``n`` instances with its Wilson interval (task success through a depth)."""

    value: float
    ci95: list[float]
    n: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class SingleRun(Result):
    """One run's own figures: accuracy with Wilson intervals, costs (by :data:`.figures.FIGURES`
    name) with cluster-bootstrap intervals."""

    instances: int
    task_success_by_depth: dict[str, ShareOf]
    model_hops: int
    hops: int
    model_hop_accuracy: ClusteredEstimate | None
    task_success: Estimate | None
    accuracy_by_depth: dict[str, DepthAccuracy]
    costs: dict[str, Estimate | None] = dataclasses.field(default_factory=dict, metadata={"flatten": True})

    def cost(self, name: str) -> Estimate | None:
        return self.costs.get(name)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Compounding(Result):
    """The test that a loss grows with depth (free-mode interaction, or free minus oracle)."""

    what: str = ABSENT
    value: float | None = None
    ci95: list[float] | None = None
    p_value: float | None = None
    instances: int = ABSENT
    free: float = ABSENT
    oracle: float = ABSENT
    oracle_p_value: float | None = ABSENT
    established: bool = False
    level: float | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class SecondaryFigure(Result):
    """Model-hop accuracy beside the verdict: reported, decides nothing."""

    difference: float | None
    ci95: list[float] | None
    p_value: float | None
    test: str | None
    role: str = "secondary: reported, decides nothing"


@dataclasses.dataclass(frozen=True, kw_only=True)
class AccuracyTests(Result):
    """The accuracy side of a verdict: loss (exact McNemar), non-inferiority (Tango), compounding."""

    primary: str
    difference: float | None
    ci95: list[float] | None
    discordant: Discordant
    test: str
    p_value: float | None
    p_adjusted: float | None
    loss: bool
    margin: float
    p_noninferiority: float | None
    p_noninferiority_adjusted: float | None
    non_inferior: bool
    noninferiority_test: str
    compounding: Compounding | None
    later_hops_harder: bool
    secondary: dict[str, SecondaryFigure | None]
    trap: bool              # kept for readers of schema 1: the loss compounds
    grows_with_depth: bool  # the same
    excluded: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class EfficiencyTests(Result):
    """The cost side of a verdict: costlier, not costlier than the margin, equivalence (TOST)."""

    assessed: bool
    metric: str | None
    kind: str | None
    margin: float
    trap: bool = False
    not_costlier: bool = False
    equivalent: bool = False
    reason: str = ABSENT
    energy_note: str = ABSENT
    value: float | None = ABSENT
    ci95: list[float] | None = ABSENT
    p_costlier: float | None = ABSENT
    p_costlier_adjusted: float | None = ABSENT
    p_not_costlier: float | None = ABSENT
    p_not_costlier_adjusted: float | None = ABSENT
    p_equivalent: float | None = ABSENT
    test: str = ABSENT
    excluded: bool = ABSENT


@dataclasses.dataclass(frozen=True)
class CostSummary(Result):
    metric: str | None
    kind: str | None
    value: float | None
    ci95: list[float] | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class VerdictSummary(Result):
    """The one-screen summary of a verdict (its primary figure and cost)."""

    verdict: str
    mode: str = ABSENT
    primary: str = ABSENT
    difference: float | None = ABSENT
    ci95: list[float] | None = ABSENT
    p_adjusted: float | None = ABSENT
    p_noninferiority_adjusted: float | None = ABSENT
    cost: CostSummary | None = ABSENT
    instances_needed: int | None = ABSENT


@dataclasses.dataclass(frozen=True)
class Verdict(Result):
    """The verdict of one rung with its evidence (:func:`.verdict.decide_all`).

    ``accuracy`` / ``efficiency``: the tests behind it (docs/statistics.md, "Decisions"). A run
    not compared (refused, or no baseline) has only ``verdict``, ``line`` and ``instances_needed``."""

    verdict: str
    line: str
    accuracy: AccuracyTests | None = None
    efficiency: EfficiencyTests | None = None
    instances_needed: int | None = None
    needed_for: str | None = None
    summary: VerdictSummary | None = None

    @classmethod
    def short(cls, verdict: str, line: str) -> Verdict:
        """A verdict with no tests behind it (not compared, or no baseline)."""
        return cls(verdict, line, accuracy=ABSENT, efficiency=ABSENT, needed_for=ABSENT, summary=ABSENT)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunEvaluation(Result):
    """One run in ``evaluate()``: what it is, its own figures, and against its baseline the paired
    comparison, loss by depth and the verdict."""

    run_id: int
    scenario_label: str | None
    scenario: str
    scenario_fingerprint: str | None
    params: dict[str, Any] | None
    backend: str
    model: str | None
    precision: str | None
    precision_bits: float | None
    precision_mode: str | None
    kernel: str | None
    source_precision: str | None
    model_sha256: str | None
    mode: str
    batch_size: int
    seed: int | None
    launch_id: str | None
    status: str
    n: int
    instances_finished: int
    machine: dict[str, Any] | None
    energy_kind: str | None
    energy_kinds: list[str]
    simulation: bool
    agentsim_version: str | None
    label: str
    single: SingleRun
    reliability: Reliability
    propagation: Propagation
    baseline_run_id: int | None = None
    is_baseline: bool = False
    paired: PairedComparison | None = None
    depth: DepthLoss | None = None
    refused: str = ABSENT
    energy_note: str = ABSENT
    compounding: dict[str, Any] = ABSENT
    verdict: Verdict | None = None

    @property
    def verdict_name(self) -> str | None:
        return self.verdict.verdict if self.verdict else None


@dataclasses.dataclass(frozen=True)
class RunVerdict(Result):
    """One line of ``evaluate()``'s ``verdicts`` list."""

    run_id: int
    baseline_run_id: int | None
    precision: str | None
    verdict: str
    line: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Evaluation(Result):
    """What ``evaluate()`` returns as JSON (:func:`.trap.analyse` returns this)."""

    schema_version: int
    agentsim_version: str | None
    settings: dict[str, Any]
    multiplicity: str
    runs: list[RunEvaluation]
    verdicts: list[RunVerdict]
    sweeps: list[Sweep]

    def run(self, run_id: int) -> RunEvaluation | None:
        return next((b for b in self.runs if b.run_id == run_id), None)


@dataclasses.dataclass(frozen=True)
class Candidate(Result):
    """A run named by a recommendation: recommended, pending (inconclusive) or excluded."""

    run_id: int
    what: str
    precision: str | None = ABSENT
    batch_size: int = ABSENT
    cost: float = ABSENT
    verdict: str = ABSENT
    instances_needed: int | None = ABSENT
    needed_for: str | None = ABSENT
    reason: str = ABSENT


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recommendation(Result):
    """Which precision x batch to deploy for one scenario and model (:func:`.recommend.recommend`)."""

    scenario: str
    model: str | None
    mode: str
    margin: float
    cost: str
    unit: str
    baseline_run_ids: list[int]
    recommended: Candidate | None
    shown: bool
    pending: list[Candidate]
    excluded: list[Candidate]
    evidence: str = ABSENT
    line: str
    what_would_decide: list[str] = ABSENT


@dataclasses.dataclass(frozen=True, kw_only=True)
class NStar(Result):
    """Where a ratio curve crosses its threshold (:func:`.scale.crossing`), with its interval."""

    threshold: float
    measured_range: list[float] | None
    crossed: bool
    value: float | None
    between: list[float] | None = ABSENT
    direction: str | None = ABSENT
    ci95: list[float] | None
    crossing_share: float | None
    text: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScalePoint(Result):
    """One model size of a curve: its pooled ratios (low rung / top rung) with intervals."""

    model: str
    params: int
    baseline_precision: str | None
    run_ids: list[int]
    baseline_run_ids: list[int]
    cells: int
    instances: int
    energy_kind: str | None
    energy_per_correct_task_ratio: ScaleRatio
    seconds_per_correct_task_ratio: ScaleRatio
    task_success_ratio: ScaleRatio

    def ratio(self, metric: str) -> ScaleRatio:
        """The ratio of ``metric`` (a scale name: ``energy_per_correct_task``, ...)."""
        return getattr(self, f"{metric}_ratio")  # type: ignore[no-any-return]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScaleCurve(Result):
    """One low rung of a model family (in one mode and batch size) over model sizes, with N*."""

    family: str
    precision: str
    mode: str
    batch_size: int
    baseline: str
    sizes: int
    cells: list[str]
    cells_dropped: list[str]
    points: list[ScalePoint]
    n_star: dict[str, NStar]
    #: "cost twin (random weights of the same shapes)" for the catalog's twin family (its accuracy and
    #: per-correct-task figures mean nothing); absent from the JSON for every other family
    label: Any = ABSENT


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScaleAnalysis(Result):
    """The model-scale axis (:func:`.scale.scale_axis`; ``scale_analysis`` is its JSON)."""

    schema: int
    tolerance: float
    resamples: int
    seed: int
    method: str
    thresholds: dict[str, float]
    runs: int
    skipped: list[dict[str, Any]]
    curves: list[ScaleCurve]


@dataclasses.dataclass(frozen=True)
class DepthLossPoint(Result):
    """Relative loss 1 − acc(d) / acc_baseline(d) at one depth (None where the baseline has none right)."""

    relative_loss: float | None
    ci95: list[float] | None
    accuracy: float | None
    baseline_accuracy: float | None
    n: int = ABSENT


@dataclasses.dataclass(frozen=True)
class BucketLoss(Estimate):
    """Relative loss over a bucket of depths (shallow or deep), with both runs' accuracies there."""

    accuracy: float | None = ABSENT
    baseline_accuracy: float | None = ABSENT


@dataclasses.dataclass(frozen=True)
class Interaction(Estimate):
    """The depth × precision interaction Δ = RL(deep) − RL(shallow) and its bootstrap p-values."""

    p_value: float | None = ABSENT
    one_sided_p: float | None = ABSENT


@dataclasses.dataclass(frozen=True, kw_only=True)
class DepthLoss(Result):
    """Relative loss by depth against the baseline (:func:`.depth.relative_loss_by_depth`)."""

    by_depth: dict[str, DepthLossPoint]
    buckets: dict[str, list[int]] | None = None
    shallow: BucketLoss | None = None
    deep: BucketLoss | None = None
    interaction: Interaction | None = None
    reason: str = ABSENT


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reliability(Result):
    """Per-hop reliability r of accuracy(depth) = r^depth of one run (:func:`.reliability.fit_run`);
    ``r`` None in oracle mode or without model hops (``reason`` says which)."""

    r: float | None
    ci95: list[float] | None
    method: str = ABSENT
    half_life_hops: float | None
    half_life_ci95: list[float | None] | None
    half_life_unbounded: bool = ABSENT
    profile_ci95: list[float] | None = ABSENT
    depths: dict[str, dict[str, int]] = ABSENT   # a run's model hops (correct, n) by depth
    single_depth: bool = ABSENT
    reason: str = ABSENT
    points: list[SweepPoint] = ABSENT            # a depth sweep's runs, one per depth

    def headline(self) -> ReliabilityHeadline:
        """The figures a run summary carries (``show``): r, its interval, the half-life, method and
        reason, as plain numbers (their JSON values: numpy scalars as floats, non-finite as None)."""
        plain = self.to_json()
        return ReliabilityHeadline(**{k: plain[k] for k in ReliabilityHeadline._json_order if k in plain})


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReliabilityHeadline(Reliability):
    """The headline of a run's reliability fit (:meth:`Reliability.headline`): a run summary's
    ``reliability``, its keys in ``show --json``'s order (the per-depth counts and the profile
    interval are ``evaluate()``'s)."""

    _json_order: ClassVar[tuple[str, ...]] = ("r", "ci95", "half_life_hops", "half_life_ci95", "method", "reason")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepPoint(Result):
    """One run of a depth sweep: its depth and task success."""

    depth: int
    successes: int
    n: int
    run_id: int
    task_success: float | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Sweep(Result):
    """Free-mode task success against scenario depth over the runs of one generator's depth sweep."""

    family: str | None
    backend: str
    model: str | None
    precision: str | None
    mode: str
    fit: Reliability
    what: str


@dataclasses.dataclass(frozen=True)
class RootCauses(Result):
    """Where the failure chains of a run's failed instances start, by hop id and hop kind."""

    instances_failed: int
    by_hop: dict[str, int]
    by_kind: dict[str, int]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Propagation(Result):
    """Error propagation of a free-mode run (:func:`.propagation.propagation`): P(child wrong) with a
    wrong parent against with right parents, their difference and factor."""

    root_causes: RootCauses
    applicable: bool
    children: str = ABSENT
    hops_parent_wrong: int = ABSENT
    hops_parents_right: int = ABSENT
    p_wrong_given_parent_wrong: ClusteredEstimate | None = ABSENT
    p_wrong_given_parents_right: ClusteredEstimate | None = ABSENT
    factor: Estimate | None = ABSENT
    difference: Estimate | None = ABSENT
    reason: str = ABSENT
    factor_reason: str = ABSENT
