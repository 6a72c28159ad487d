"""The GSM8K table of docs/gsm8k.md: whole-problem accuracy by step bucket per precision, the
relative loss of each rung against the baseline with a paired bootstrap by problem, and the
decomposed mode's per-step accuracy (oracle), task success (free) and share of propagated
failures.

Run it (it writes the runs to ``--db`` and prints the Markdown tables)::

    python benchmarks/gsm8k_table.py --db gsm8k.db --per-bucket 10 --decomposed 10

``--table-only`` prints the tables of a database written earlier.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

import numpy as np

__all__ = ["BUCKETS", "run", "whole_table", "truncation_table", "decomposed_table", "paired_relative_loss"]

BUCKETS = ("1-2", "3-4", "5+")
MODEL = "llama:qwen2.5-coder-0.5b"


def run(db: str, *, rungs: list[str], per_bucket: int, decomposed: int, steps: int, seed: int,
        threads: int, batch: int = 1, step_modes: tuple[str, ...] = ("decomposed", "worked"),
        buckets: tuple[str, ...] = BUCKETS, model: str = MODEL) -> dict[str, float]:
    """Execute the runs; returns the wall time of each group in seconds."""
    import agentsim

    walls: dict[str, float] = {}
    backends = [f"{model}@{r},n_threads={threads}" for r in rungs]
    if per_bucket:
        t0 = time.perf_counter()
        agentsim.simulate("gsm8k", backends, params={"steps": list(buckets), "form": "whole"},
                          instances=per_bucket, seed=seed, mode="free", db=db, batch=batch)
        walls["whole"] = time.perf_counter() - t0
    if decomposed:
        t0 = time.perf_counter()
        agentsim.simulate("gsm8k", backends, params={"steps": str(steps), "form": list(step_modes)},
                          instances=decomposed, seed=seed, mode="both", db=db, batch=batch)
        walls["decomposed"] = time.perf_counter() - t0
    return walls


def _runs(db: str) -> tuple[Any, list[Any]]:
    import agentsim

    res = agentsim.load_results(db)
    runs = [r for r in res.runs if r.scenario.startswith("gsm8k-")]
    unfinished = [r.id for r in runs if r.status != "complete"]
    if unfinished:  # resume them (agentsim run --resume ID) to count them
        print(f"(left out, not complete: runs {', '.join(map(str, unfinished))})")
    return res.store, [r for r in runs if r.status == "complete"]


def _precision(run: Any) -> str:
    return str(run.precision or run.backend)


def paired_relative_loss(base: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """``1 - acc(other) / acc(base)`` over the same problems, with agentsim's paired cluster
    bootstrap (one set of problem weights for both rungs, percentile interval; see
    docs/statistics.md) and the exact McNemar p-value of the discordant pairs. ``loss`` is None
    where the baseline has no correct answer."""
    from agentsim.analysis.bootstrap import percentile_ci, weights
    from agentsim.analysis.paired import mcnemar_exact

    b_only = int(np.sum((base == 1) & (other == 0)))
    o_only = int(np.sum((base == 0) & (other == 1)))
    out: dict[str, Any] = {"loss": None, "ci": None, "p": mcnemar_exact(b_only, o_only),
                           "base_only": b_only, "other_only": o_only}
    if len(base) == 0 or base.sum() == 0:
        return out
    out["loss"] = float(1.0 - other.sum() / base.sum())
    w = weights(len(base))
    bs, os_ = w @ base, w @ other
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = np.where(bs > 0, 1.0 - os_ / np.where(bs > 0, bs, 1.0), np.nan)
    out["ci"] = percentile_ci(reps, out["loss"])["ci"]
    return out


def _whole_outcomes(store: Any, runs: list[Any]) -> tuple[dict[tuple[str, str], dict[int, bool]],
                                                          dict[tuple[str, str], dict[int, bool]]]:
    """(bucket, precision) -> problem -> correct, and -> cut by the token budget (the hop's
    ``stop_reason`` is ``length``); a problem drawn twice counts once."""
    out: dict[tuple[str, str], dict[int, bool]] = defaultdict(dict)
    cut: dict[tuple[str, str], dict[int, bool]] = defaultdict(dict)
    for r in runs:
        if not r.scenario.startswith("gsm8k-whole-steps"):
            continue
        bucket = r.scenario.removeprefix("gsm8k-whole-steps")
        problem = {i.index: i.vars["problem"] for i in store.instances(r.id)}
        for h in store.hops(r.id):
            out[(bucket, _precision(r))][problem[h.instance_index]] = bool(h.correct)
            cut[(bucket, _precision(r))][problem[h.instance_index]] = h.stop_reason == "length"
    return out, cut


def truncation_table(db: str, baseline: str = "f16") -> str:
    """Per bucket and rung: the share of problems whose answer reached the token budget (a rung
    that rambles longer is a finding: length inflation under quantization)."""
    store, runs = _runs(db)
    _, cut = _whole_outcomes(store, runs)
    precisions = sorted({p for _, p in cut}, key=lambda p: (p != baseline, p))
    lines = ["| steps | " + " | ".join(f"{p}: cut by the budget" for p in precisions) + " |",
             "|---|" + "---|" * len(precisions)]
    for bucket in BUCKETS:
        cells = []
        for p in precisions:
            v = cut.get((bucket, p), {})
            cells.append(f"{sum(v.values()) / len(v):.0%} ({sum(v.values())}/{len(v)})" if v else "-")
        if any(c != "-" for c in cells):
            lines.append(f"| {bucket} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def whole_table(db: str, baseline: str = "f16", *, without_truncated: bool = False) -> str:
    """Accuracy per bucket and rung; ``without_truncated``: only the problems no rung's answer was
    cut on (the rest of the table's reading is the same)."""
    store, runs = _runs(db)
    outcomes, cut = _whole_outcomes(store, runs)
    precisions = sorted({p for _, p in outcomes}, key=lambda p: (p != baseline, p))
    lines = ["| steps | problems | " + " | ".join(f"{p} accuracy" for p in precisions)
             + " | " + " | ".join(f"{p} vs {baseline}: relative loss [95% CI]; discordant (only {baseline} right / only {p} right)"
                                  for p in precisions if p != baseline) + " |",
             "|---|---|" + "---|" * (2 * len(precisions) - 1)]
    for bucket in BUCKETS:
        base = outcomes.get((bucket, baseline), {})
        common = sorted(set.intersection(*(set(outcomes.get((bucket, p), {})) for p in precisions))) if precisions else []
        if without_truncated:
            common = [k for k in common if not any(cut[(bucket, p)].get(k) for p in precisions)]
        if not common:
            continue
        accs = []
        for p in precisions:
            v = np.array([outcomes[(bucket, p)][k] for k in common], dtype=float)
            accs.append(f"{v.mean():.0%} ({int(v.sum())}/{len(v)})")
        losses = []
        b = np.array([base[k] for k in common], dtype=float)
        for p in precisions:
            if p == baseline:
                continue
            o = np.array([outcomes[(bucket, p)][k] for k in common], dtype=float)
            r = paired_relative_loss(b, o)
            if r["loss"] is None:
                losses.append("n/a (no correct baseline answer)")
            else:
                ci = f"[{r['ci'][0]:+.1%}, {r['ci'][1]:+.1%}]" if r["ci"] else "[no interval]"
                losses.append(f"{r['loss']:+.1%} {ci}; discordant {r['base_only']}/{r['other_only']}, "
                              f"McNemar p={r['p']:.2g}")
        lines.append(f"| {bucket} | {len(common)} | " + " | ".join(accs) + " | " + " | ".join(losses) + " |")
    return "\n".join(lines)


def decomposed_table(db: str) -> str:
    store, runs = _runs(db)
    lines = ["| answers | precision | mode | problems | step accuracy | task success | failed steps: local / propagated / parse | propagated share |",
             "|---|---|---|---|---|---|---|---|"]
    step_runs = [r for r in runs if r.scenario.startswith(("gsm8k-decomposed", "gsm8k-worked"))]
    for r in sorted(step_runs, key=lambda r: (r.scenario, _precision(r) != "f16", _precision(r), r.mode)):
        hops = store.hops(r.id)
        inst = store.instances(r.id)
        kinds: dict[str, int] = defaultdict(int)
        for h in hops:
            kinds[h.error_kind] += 1
        failed = kinds["local"] + kinds["propagated"] + kinds["parse"] + kinds["truncated"] + kinds["backend"]
        acc = sum(h.correct for h in hops) / len(hops)
        success = sum(bool(i.success) for i in inst) / len(inst)
        share = f"{kinds['propagated'] / failed:.0%}" if failed else "-"
        answers = "worked, '#### N'" if r.scenario.startswith("gsm8k-worked") else "number only"
        lines.append(f"| {answers} | {_precision(r)} | {r.mode} | {len(inst)} | {acc:.0%} ({sum(h.correct for h in hops)}/{len(hops)}) "
                     f"| {success:.0%} | {kinds['local']} / {kinds['propagated']} / {kinds['parse']} | {share} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--rungs", default="f16,q4_0")
    ap.add_argument("--per-bucket", type=int, default=10)
    ap.add_argument("--decomposed", type=int, default=10, help="instances of the decomposed runs")
    ap.add_argument("--steps", type=int, default=3, help="steps of the decomposed problems")
    ap.add_argument("--step-modes", default="decomposed,worked",
                    help="the one-hop-per-step modes to run: decomposed (number only), worked")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1, help="instances decoded together (agentsim run --batch)")
    ap.add_argument("--buckets", default=",".join(BUCKETS), help="the whole-form step buckets to run")
    ap.add_argument("--model", default=MODEL, help="backend and model, without the rung")
    ap.add_argument("--table-only", action="store_true")
    a = ap.parse_args(argv)
    unknown = set(a.buckets.split(",")) - set(BUCKETS)
    if unknown:
        ap.error(f"unknown bucket {sorted(unknown)[0]!r}: choose from {', '.join(BUCKETS)}")
    if not a.table_only:
        walls = run(a.db, rungs=a.rungs.split(","), per_bucket=a.per_bucket, decomposed=a.decomposed,
                    steps=a.steps, seed=a.seed, threads=a.threads, batch=a.batch,
                    step_modes=tuple(a.step_modes.split(",")), buckets=tuple(a.buckets.split(",")),
                    model=a.model)
        print("wall time: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in walls.items()))
    print(whole_table(a.db))
    print()
    print("without the problems cut by the token budget at any rung:")
    print(whole_table(a.db, without_truncated=True))
    print()
    print(truncation_table(a.db))
    print()
    print(decomposed_table(a.db))


if __name__ == "__main__":
    main()
