"""The verdict of each precision against its baseline, decided by tests at a multiplicity-adjusted level.

The rules (docs/statistics.md, "Decisions"), for a family of rungs compared in one analysis:

- the **primary figure** is task success (every hop right); model-hop accuracy is secondary
  (its clustered McNemar p is reported, it decides nothing);
- **accuracy loss**: task success lower and McNemar's exact test rejects at the Holm-adjusted
  level (Tango's score interval is shown beside it for the size of the loss: it excludes 0
  whenever the exact test rejects, and may exclude it where the exact test does not, e.g. 0 vs 4
  discordant of 30; docs/statistics.md, "Interval and test");
- **accuracy trap**: an accuracy loss that compounds with depth. Compounding is tested only once
  the loss is established (a gate: the four instances that carry a loss are not also evidence of
  its growth) at the level the loss was rejected at, by the one-sided paired bootstrap of the
  depth × precision interaction. Where an oracle pair of the same rung exists, it is free mode's
  interaction minus oracle mode's on the same instances and hops (propagation beyond the rung's
  own per-hop losses); a growth in oracle mode alone is "later hops harder for this rung", a
  note, never a trap;
- **efficiency trap**: the cost per correct task (energy where both runs have one kind, measured
  or estimated, else seconds) higher: one-sided test of the log ratio, Holm-adjusted;
- **no trap**: task success non-inferior within the margin (Tango's score test, one-sided) and
  the cost not above the baseline's by more than the cost margin (one-sided; with the other side,
  TOST equivalence), both at the Holm-adjusted level of their own family;
- **inconclusive** otherwise, with the instances that would decide it: for an observed loss, the n
  whose exact McNemar power is ≥ 0.8 at the level the adjustment asks for; for no observed loss,
  the n that would show non-inferiority. Never inconclusive for an established loss.

Holm families (all the rungs of one analysis): *harm* = {loss, costlier} per rung (a false
"loss" or "trap" anywhere is at most 5 %); *safety* = {non-inferior, not costlier} per rung.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .inference import (
    ALPHA,
    POWER,
    exact_mcnemar_n,
    holm,
    log_ratio_tests,
    noninferiority_n,
    paired_noninferiority,
)
from .power import se_scaling_n
from .results import (
    ABSENT,
    AccuracyTests,
    Compounding,
    CostSummary,
    DepthLoss,
    Discordant,
    EfficiencyTests,
    PairedComparison,
    PairedEstimate,
    SecondaryFigure,
    Verdict,
    VerdictSummary,
    present,
)

__all__ = ["decide", "decide_all", "Evidence", "Verdict", "evidence", "ACCURACY_MARGIN", "COST_MARGIN",
           "VERDICTS", "VERDICT_SHORT", "VERDICT_STYLE", "PRIMARY"]

ACCURACY_MARGIN = 0.05
COST_MARGIN = 0.05
PRIMARY = "task_success"
VERDICTS = ("baseline", "accuracy trap", "accuracy loss", "efficiency trap", "accuracy trap and efficiency trap",
            "accuracy loss and efficiency trap", "no trap", "inconclusive", "not compared")
#: the vocabulary's short forms (tables) and colours (rich style names): one home for every view
VERDICT_SHORT = {"accuracy trap": "acc trap", "accuracy loss": "acc loss", "efficiency trap": "eff trap",
                 "accuracy trap and efficiency trap": "acc+eff trap", "accuracy loss and efficiency trap": "loss+eff trap",
                 "no trap": "no trap", "inconclusive": "inconcl.", "baseline": "base", "not compared": "not comp."}
VERDICT_STYLE = {"accuracy trap": "red", "accuracy loss": "red", "efficiency trap": "red",
                 "accuracy trap and efficiency trap": "red", "accuracy loss and efficiency trap": "red",
                 "no trap": "green", "inconclusive": "yellow", "baseline": "dim", "not compared": "dim"}


@dataclass(frozen=True)
class Evidence:
    """What one rung's comparison with its baseline provides to the tests (unadjusted)."""

    label: str
    baseline_label: str
    mode: str
    n: int
    identity: bool = False
    note: str | None = None
    ts: PairedEstimate | None = None          # the paired task-success difference
    hop: PairedEstimate | None = None         # the paired model-hop accuracy difference (secondary)
    depth: DepthLoss | None = None            # relative loss by depth (this run's mode)
    growth: dict[str, Any] | None = None      # {"what", "value", "ci95", "p_value"}: the compounding test
    oracle_growth: dict[str, Any] | None = None  # the oracle run's own depth trend (hop difficulty)
    cost: PairedEstimate | None = None        # the cost ratio chosen (or None) and why
    cost_metric: str | None = None
    cost_kind: str | None = None
    cost_reason: str | None = None
    energy_note: str | None = None
    accuracy_margin: float = ACCURACY_MARGIN
    cost_margin: float = COST_MARGIN

    @property
    def discordant(self) -> tuple[int, int]:
        d = self.ts.discordant if self.ts else None
        return (int(d.run_only), int(d.baseline_only)) if d else (0, 0)

    @property
    def p_loss(self) -> float | None:
        return self.ts.p_value if self.ts and present(self.ts.p_value) else None

    @property
    def p_noninferior(self) -> float | None:
        if not self.ts:
            return None
        b, c = self.discordant
        return paired_noninferiority(b, c, self.n, self.accuracy_margin)

    @property
    def cost_tests(self) -> dict[str, float | None]:
        f = self.cost
        return log_ratio_tests(f.value if f else None, (f.se_log or None) if f else None, self.cost_margin,
                               df=self.n - 1 if self.n else None)


def _pp(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:+.1f} pp"


def _ci_pp(ci: list[float] | None) -> str:
    return "" if not ci else f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def _p(p: float | None) -> str:
    return "-" if p is None else f"{p:.2g}"


def _x(f: PairedEstimate | None) -> str:
    if not f or f.value is None:
        return "-"
    s = f"×{f.value:.2f}"
    if f.ci95:
        s += f" [{f.ci95[0]:.2f}, {f.ci95[1]:.2f}]"
    return s


def _span(ds: list[int]) -> str:
    return f"{ds[0]}–{ds[-1]}" if len(ds) > 1 else str(ds[0])


def evidence(paired: PairedComparison, depth: DepthLoss | None, *, n: int, label: str = "run",
             baseline_label: str = "baseline", mode: str = "free", simulated: bool = False,
             assess_simulated: bool = False, growth: dict[str, Any] | None = None,
             oracle_growth: dict[str, Any] | None = None, accuracy_margin: float = ACCURACY_MARGIN,
             cost_margin: float = COST_MARGIN) -> Evidence:
    """The evidence of one paired block (and its depth block and growth tests)."""
    common = {"label": label, "baseline_label": baseline_label, "mode": mode, "n": n,
              "accuracy_margin": accuracy_margin, "cost_margin": cost_margin}
    if paired.identity:
        return Evidence(identity=True, **common)
    diffs = paired.differences
    if not diffs:
        return Evidence(note=f"not paired ({paired.note or ''})", **common)
    ratios = paired.ratios
    i = depth.interaction if depth else None
    tested = i is not None and present(i.one_sided_p) and i.one_sided_p is not None
    if growth is None and mode == "free" and tested:
        growth = {"what": "free-mode depth × precision interaction (no oracle pair of this rung)",
                  "value": i.value, "ci95": i.ci95, "p_value": i.one_sided_p}  # type: ignore[union-attr]
    if mode != "free" and oracle_growth is None and tested:
        oracle_growth = {"value": i.value, "ci95": i.ci95, "p_value": i.one_sided_p}  # type: ignore[union-attr]
    cost = metric = kind = reason = note = None
    if simulated and not assess_simulated:
        reason = "simulation backend: its seconds and joules are not a model's"
    else:
        energy, seconds = ratios.get("energy_per_correct_task_j"), ratios.get("seconds_per_correct_task")
        if energy and energy.ci95 and energy.kind in ("measured", "estimated"):
            cost, metric, kind = energy, "energy_per_correct_task_j", energy.kind
        elif seconds and seconds.ci95:
            cost, metric, kind = seconds, "seconds_per_correct_task", "time"
            if energy and energy.reason:
                note = energy.reason
        else:
            reason = (energy.reason if energy else None) or (seconds.reason if seconds else None) \
                or "no cost per correct task"
        if cost is not None and not cost.se_log:
            reason, cost = "the cost ratio has no spread to test (identical costs on every resample)", None
    return Evidence(ts=diffs.get(PRIMARY), hop=diffs.get("model_hop_accuracy"), depth=depth, growth=growth,
                    oracle_growth=oracle_growth, cost=cost, cost_metric=metric, cost_kind=kind, cost_reason=reason,
                    energy_note=note, **common)


def _holm_levels(pvalues: list[float | None], alpha: float) -> list[float | None]:
    """The level each hypothesis is compared with in Holm's step-down (α / (m − rank))."""
    idx = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])  # type: ignore[arg-type, return-value]
    out: list[float | None] = [None] * len(pvalues)
    for rank, i in enumerate(idx):
        out[i] = alpha / (len(idx) - rank)
    return out


def decide_all(evs: list[Evidence], *, alpha: float = ALPHA, power: float = POWER) -> list[Verdict]:
    """Verdicts of a family of comparisons, adjusted together (Holm within the harm and safety families)."""
    live = [i for i, e in enumerate(evs) if not e.identity and e.ts is not None]
    harm: list[float | None] = []
    safety: list[float | None] = []
    where: list[tuple[int, str, int]] = []  # (run position, test, index in its family)
    for i in live:
        e = evs[i]
        harm.append(e.p_loss)
        where.append((i, "loss", len(harm) - 1))
        safety.append(e.p_noninferior)
        where.append((i, "ni", len(safety) - 1))
        ct = e.cost_tests if e.cost is not None else {}
        if ct.get("costlier") is not None:
            harm.append(ct["costlier"])
            where.append((i, "costlier", len(harm) - 1))
            safety.append(ct["not_costlier"])
            where.append((i, "not_costlier", len(safety) - 1))
    harm_adj, safety_adj = holm(harm), holm(safety)
    harm_lvl = _holm_levels(harm, alpha)
    k_harm, k_safety = sum(p is not None for p in harm), sum(p is not None for p in safety)
    adj: dict[int, dict[str, Any]] = {i: {} for i in live}
    for i, test, j in where:
        fam_adj, fam_lvl = (harm_adj, harm_lvl) if test in ("loss", "costlier") else (safety_adj, None)
        adj[i][test] = fam_adj[j]
        if fam_lvl is not None:
            adj[i][test + "_level"] = fam_lvl[j]
    ctx = {"alpha": alpha, "power": power, "k_harm": max(k_harm, 1), "k_safety": max(k_safety, 1)}
    return [_decide_one(e, adj.get(i), ctx) for i, e in enumerate(evs)]


def _decide_one(e: Evidence, adj: dict[str, Any] | None, ctx: dict[str, Any]) -> Verdict:
    if e.identity:
        return Verdict("baseline", f"{e.label}: the baseline", summary=VerdictSummary(verdict="baseline"))
    if e.ts is None or adj is None:
        return Verdict("inconclusive", f"{e.label} vs {e.baseline_label}: {e.note or 'no paired task success'}",
                       summary=VerdictSummary(verdict="inconclusive"))
    acc = _accuracy_tests(e, adj, ctx["alpha"])
    eff = _efficiency_tests(e, adj, ctx)
    acc_word = "accuracy trap" if acc.trap else ("accuracy loss" if acc.loss else None)
    words = [w for w in (acc_word, "efficiency trap" if eff.trap else None) if w]
    if words:
        verdict = " and ".join(words)
    elif acc.non_inferior and (eff.not_costlier or not eff.assessed):
        verdict = "no trap"
    else:
        verdict = "inconclusive"
    needed = needed_for = None
    if verdict == "inconclusive":
        needed, needed_for = _needed(e, eff, acc.non_inferior, ctx)
    line = _line(e, verdict, words, acc, eff, needed, needed_for)
    summary = VerdictSummary(
        verdict=verdict, mode=e.mode, primary=PRIMARY, difference=acc.difference, ci95=acc.ci95,
        p_adjusted=acc.p_adjusted, p_noninferiority_adjusted=acc.p_noninferiority_adjusted,
        cost=None if e.cost is None else CostSummary(e.cost_metric, e.cost_kind, e.cost.value, e.cost.ci95),
        instances_needed=needed)
    return Verdict(verdict, line, acc, eff, needed, needed_for, summary)


def _accuracy_tests(e: Evidence, adj: dict[str, Any], alpha: float) -> AccuracyTests:
    """Loss, non-inferiority and compounding of task success at the adjusted levels."""
    assert e.ts is not None
    b, c = e.discordant
    d = e.ts.value
    p_loss_adj = adj.get("loss")
    loss = bool(d is not None and d < 0 and p_loss_adj is not None and p_loss_adj <= alpha)
    p_ni_adj = adj.get("ni")
    non_inferior = bool(p_ni_adj is not None and p_ni_adj <= alpha)
    # compounding: gated by the loss, at the level the loss was rejected at
    level = adj.get("loss_level") or alpha
    g = e.growth
    compounding = bool(loss and g and g.get("p_value") is not None and g["p_value"] <= level and (g.get("value") or 0) > 0)
    og = e.oracle_growth
    harder = bool(og and og.get("p_value") is not None and og["p_value"] <= level and (og.get("value") or 0) > 0
                  and loss)
    hop = None if not e.hop else SecondaryFigure(
        difference=e.hop.value, ci95=e.hop.ci95, p_value=e.hop.p_value if present(e.hop.p_value) else None,
        test=e.hop.test if present(e.hop.test) else None)
    return AccuracyTests(
        primary=PRIMARY, difference=d, ci95=e.ts.ci95, discordant=Discordant(b, c),
        test="McNemar exact (instances), two-sided", p_value=e.p_loss, p_adjusted=p_loss_adj,
        loss=loss, margin=e.accuracy_margin, p_noninferiority=e.p_noninferior,
        p_noninferiority_adjusted=p_ni_adj, non_inferior=non_inferior,
        noninferiority_test="Tango score test (paired), one-sided",
        compounding=None if g is None else Compounding(**g, established=compounding, level=level if loss else None),
        later_hops_harder=harder, secondary={"model_hop_accuracy": hop},
        trap=compounding, grows_with_depth=compounding, excluded=non_inferior)


def _efficiency_tests(e: Evidence, adj: dict[str, Any], ctx: dict[str, Any]) -> EfficiencyTests:
    """Costlier, not costlier than the margin and equivalence of the cost per correct task."""
    base = EfficiencyTests(assessed=e.cost is not None, metric=e.cost_metric, kind=e.cost_kind, margin=e.cost_margin,
                           reason=e.cost_reason or ABSENT, energy_note=e.energy_note or ABSENT)
    if e.cost is None:
        return base
    alpha = ctx["alpha"]
    ct = e.cost_tests
    p_c, p_nc = adj.get("costlier"), adj.get("not_costlier")
    not_costlier = bool(p_nc is not None and p_nc <= alpha)
    return dataclasses.replace(
        base, value=e.cost.value, ci95=e.cost.ci95, p_costlier=ct["costlier"], p_costlier_adjusted=p_c,
        p_not_costlier=ct["not_costlier"], p_not_costlier_adjusted=p_nc, p_equivalent=ct["equivalent"],
        test="one-sided t (paired instances - 1 df) on the log ratio with the SE of its interval",
        # a cost shown higher but also shown within the stated margin is no trap: the margin is
        # what the user called "as cheap" (a +3 % [+2, +3] estimate is not a reason to keep f16)
        trap=bool(p_c is not None and p_c <= alpha and not not_costlier), not_costlier=not_costlier,
        equivalent=bool(not_costlier and ct["equivalent"] is not None and ct["equivalent"] * ctx["k_safety"] <= alpha),
        excluded=not_costlier)


def _needed(e: Evidence, eff: EfficiencyTests, non_inferior: bool, ctx: dict[str, Any]) -> tuple[int | None, str | None]:
    """The instances that would decide an inconclusive verdict, and what they would decide."""
    n, alpha, power = e.n, ctx["alpha"], ctx["power"]
    b, c = e.discordant
    p10, p01 = b / n, c / n
    # an observed loss: the exact test at the level its family asks for (Bonferroni's bound of Holm)
    if c > b:
        return exact_mcnemar_n(p10, p01, alpha / ctx["k_harm"], power), "the observed loss (exact McNemar, power 0.8)"
    if eff.assessed and (eff.value or 0) > 1 and not eff.trap and not eff.not_costlier:
        f = e.cost
        assert f is not None and f.value is not None
        x = se_scaling_n(n, f.se_log or None, math.log(f.value), level=1 - 2 * alpha / ctx["k_harm"], power=power)
        return (max(x, n) if x else None), "the observed cost increase"
    paths = []
    if not non_inferior:
        paths.append(noninferiority_n(p10, p01, e.accuracy_margin, alpha / ctx["k_safety"], power))
    if eff.assessed and not eff.not_costlier:
        f = e.cost
        v = f.value if f else None
        if f and v and v < 1 + e.cost_margin:
            x = se_scaling_n(n, f.se_log or None, math.log(v), math.log1p(e.cost_margin),
                             level=1 - 2 * alpha / ctx["k_safety"], power=power)
            paths.append(max(x, n) if x else None)
        else:
            paths.append(None)
    if not paths or any(p is None for p in paths):
        return None, None
    what = f"no trap: non-inferior within {100 * e.accuracy_margin:.0f} pp" + (
        f" and cost within +{100 * e.cost_margin:.0f} %" if eff.assessed else "")
    return max(max(paths), n + 1), what  # type: ignore[type-var]


def _line(e: Evidence, verdict: str, words: list[str], acc: AccuracyTests, eff: EfficiencyTests, needed: int | None,
          needed_for: str | None) -> str:
    b, c = e.discordant
    parts = [f"task success {_pp(acc.difference)}{_ci_pp(acc.ci95)} (exact McNemar p = {_p(acc.p_value)}, "
             f"adjusted {_p(acc.p_adjusted)}; {b} vs {c} discordant; non-inferior within "
             f"{100 * e.accuracy_margin:.0f} pp: adjusted p = {_p(acc.p_noninferiority_adjusted)})"]
    g = acc.compounding
    if g and acc.loss:
        parts.append(f"compounding ({g.what}) {_pp(g.value)}{_ci_pp(g.ci95)} "
                     f"(one-sided p = {_p(g.p_value)}, level {_p(g.level)}"
                     + ("" if g.established else ": not established") + ")")
    dl = e.depth
    if dl and dl.interaction and dl.buckets and dl.shallow and dl.deep:
        parts.append(f"relative loss {100 * dl.shallow.value:.1f}% at depth {_span(dl.buckets['shallow'])} vs "  # type: ignore[operator]
                     f"{100 * dl.deep.value:.1f}% at {_span(dl.buckets['deep'])}")  # type: ignore[operator]
    if acc.later_hops_harder:
        parts.append("later hops harder for this rung (oracle mode: a hop difficulty, not a trap)")
    sec = acc.secondary.get("model_hop_accuracy")
    if sec:
        parts.append(f"model-hop accuracy (secondary) {_pp(sec.difference)}{_ci_pp(sec.ci95)} (p = {_p(sec.p_value)})")
    if eff.assessed:
        name = "energy per correct task" if eff.metric == "energy_per_correct_task_j" else "seconds per correct task"
        kind = f" ({eff.kind})" if eff.kind != "time" else ""
        parts.append(f"{name}{kind} {_x(e.cost)} (costlier: adjusted p = {_p(eff.p_costlier_adjusted)}; "
                     f"within +{100 * e.cost_margin:.0f} %: adjusted p = {_p(eff.p_not_costlier_adjusted)})")
    else:
        parts.append(f"efficiency not assessed ({eff.reason or ''})")
    what = "time" if eff.kind == "time" else f"{eff.kind} energy"
    # the verdict's words, the efficiency trap saying what it was measured in
    head = " and ".join(f"efficiency trap ({what})" if w == "efficiency trap" else w for w in words) or verdict
    if verdict == "inconclusive":
        if needed and needed_for and needed_for.startswith("the observed"):
            head += f" (≈{needed:,} instances would decide {needed_for})"
        elif needed:
            head += f" (no loss observed; ≈{needed:,} instances would show {needed_for})"
        elif b == c and not (eff.value or 0) > 1:
            head += " (no effect observed)"
    return f"{e.label} vs {e.baseline_label}: {head} — " + "; ".join(parts)


def decide(paired: PairedComparison, depth: DepthLoss | None, *, n: int, label: str = "run",
           baseline_label: str = "baseline", simulated: bool = False, assess_simulated: bool = False,
           accuracy_margin: float = ACCURACY_MARGIN, mode: str = "free", alpha: float = ALPHA) -> dict[str, Any]:
    """The verdict of one comparison on its own (a family of one), as JSON."""
    ev = evidence(paired, depth, n=n, label=label, baseline_label=baseline_label, mode=mode, simulated=simulated,
                  assess_simulated=assess_simulated, accuracy_margin=accuracy_margin)
    return decide_all([ev], alpha=alpha)[0].to_json()


def growth_vs_oracle(free_ctx: dict[str, Any], oracle_ctx: dict[str, Any], split: tuple[list[int], list[int]],
                     resamples: int, seed: int) -> dict[str, Any] | None:
    """Compounding beyond the rung's own per-hop losses: Δ_free − Δ_oracle on the instances of all four runs.

    ``*_ctx``: the ``ta``/``tb`` tables of the rung against its baseline in each mode.
    """
    from .bootstrap import percentile_ci, weights
    from .data import subset_table
    from .depth import bucket_columns, interaction_reps, one_sided_p
    from .intervals import interaction_ci_delta

    keys = sorted(set(free_ctx["ta"].keys) & set(oracle_ctx["ta"].keys))
    if not keys or free_ctx["ta"].depths != oracle_ctx["ta"].depths:
        return None
    w = weights(len(keys), resamples, seed + 7)
    tf = [subset_table(free_ctx[k], keys) for k in ("ta", "tb")]
    to = [subset_table(oracle_ctx[k], keys) for k in ("ta", "tb")]
    pf, rf = interaction_reps(tf[0], tf[1], w, split)
    po, ro = interaction_reps(to[0], to[1], w, split)
    if pf is None or po is None or rf is None or ro is None:
        return None
    reps = rf - ro
    ci = percentile_ci(reps, pf - po)
    cs, cd = ([j for j, d in enumerate(tf[0].depths) if d in half] for half in split)
    dl = interaction_ci_delta(*(bucket_columns(a, b, cols) for a, b in (tf, to) for cols in (cs, cd)))
    if dl["ci"] is not None:  # the interval shown: delta method (the bootstrap covers 0.90-0.93 at n = 30)
        ci["ci"] = [min(dl["ci"][0], pf - po), max(dl["ci"][1], pf - po)]
    return {"what": "free minus oracle depth interaction, same instances and hops", "value": pf - po,
            "ci95": ci["ci"], "p_value": one_sided_p(reps), "instances": len(keys),
            "free": pf, "oracle": po, "oracle_p_value": one_sided_p(ro)}
