"""Batched execution on a real model: throughput per rung and batch size, against the CPU's ceiling.

For each rung of the default model and each batch size B, the engine runs (a) the bundled demo
scenarios and (b) a decode-heavy scenario (one hop, ~48-token answers) in free mode, through
``agentsim.launch.execute(..., batch_sizes=B)`` -- the path ``agentsim run --batch B`` takes.
From the stored hops it prints:

* gen tok/s   tokens decoded after the first, summed over sequences, / the decode seconds
* prompt tok/s  prompt tokens evaluated (the KV-cached prefix excluded) / the prefill seconds
* hops/s      hops / the run's wall time (engine, parsing, SQLite commits included)
* agree       hops whose completion equals batch 1's, same instance (free mode: one divergent
              answer changes its children's prompts, so this is a lower bound)
* s/task, J/task  run wall time and estimated energy per correct task (all hops right)

Beside each rung: its prefill rate (a 128-token prompt evaluated in one llama_decode, best of
three: logits for the last token only) and, per B, the rate of a decode step's own shape with
nothing else (B tokens in B sequences, logits for all of them, one llama_decode): the ceiling a
batched decode step can reach with llama.cpp's kernels on this CPU. gen tok/s is printed as a
share of both.

    .venv/bin/python benchmarks/batch_throughput.py                       # f16,q8_0,q4_0,mxfp4
    .venv/bin/python benchmarks/batch_throughput.py --rungs f16,q4_0 --instances 16
    .venv/bin/python benchmarks/batch_throughput.py --tiny                # tiny test model (seconds)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DECODE_HEAVY = """
name: decode-heavy
description: One hop whose answer is ~48 tokens (a counting list); decode dominates the hop.
system: You are a helpful assistant.
vars:
  start: {randint: [1, 60]}
hops:
  - id: count
    prompt: "Count upwards from {{ start }}: write the next forty numbers, separated by commas, starting with {{ start }}."
    parse: integer
    expect: start
    max_tokens: 48
"""
DEMO = ["chain-linear", "fanin-dag"]


def prefill_rate(backend: Any, n: int = 128) -> float:
    """Prompt tokens per second of one ``n``-token llama_decode from an empty cache (best of 3)."""
    llm = backend._llm
    text = ("the answer is the number of the item and the value of the sum. " * 40).encode()
    toks = llm.tokenize(text, add_bos=False)[:n]
    best = float("inf")
    for _ in range(3):
        llm.reset()
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        t0 = time.perf_counter()
        llm.eval(toks)
        best = min(best, time.perf_counter() - t0)
    llm.reset()
    return len(toks) / best


def step_ceiling(backend: Any, b: int) -> float:
    """Tokens per second of one decode step's shape with nothing else: ``b`` tokens, one in each
    of ``b`` sequences, logits for every token, in one llama_decode (best of 3). A decode step
    must compute the output layer (vocabulary x hidden) for every sequence, where a prefill
    computes it for the last token only; this is the rate the batched decode loop is held to
    once its own work (sampling, stops, Python) is taken out."""
    import llama_cpp

    from agentsim.backends.llama_batch import BatchDecoder

    llm = backend._llm
    toks = llm.tokenize(b"the answer is the number of the item and the value of the sum. " * 4, add_bos=False)
    bd = BatchDecoder(llm)
    try:
        ctx = bd._context(b, 64)
        mem = llama_cpp.llama_get_memory(ctx.ctx)
        best = float("inf")
        for _ in range(3):
            llama_cpp.llama_memory_clear(mem, True)
            bd._fill(bd._batch, [(toks[i % len(toks)], 0, i, True) for i in range(b)])
            t0 = time.perf_counter()
            ctx.decode(bd._batch)
            best = min(best, time.perf_counter() - t0)
    finally:
        bd.close()
    return b / best


def figures(store: Any, run: Any, ref: dict | None) -> dict[str, Any]:
    hops = store.hops(run.id)
    llm = [h for h in hops if h.kind == "llm" and h.error_kind != "backend"]
    decoded = sum(max((h.completion_tokens or 0) - 1, 0) for h in llm)
    dec_s = sum(h.decode_s or 0.0 for h in llm)
    evaluated = sum((h.prompt_tokens or 0) - (h.cached_tokens or 0) for h in llm)
    pre_s = sum(h.prefill_s or 0.0 for h in llm)
    wall = (run.finished_at - run.created_at).total_seconds()
    inst = store.instances(run.id)
    ok = sum(1 for i in inst if i.success)
    out = {
        "B": run.batch_size, "hops": len(hops), "wall_s": wall, "hops_per_s": len(hops) / wall,
        "gen_tok_s": decoded / dec_s if dec_s else None, "prompt_tok_s": evaluated / pre_s if pre_s else None,
        "tasks_ok": ok, "tasks": len(inst), "s_per_task": wall / ok if ok else None,
        "j_per_task": (run.run_energy_j / ok) if ok and run.run_energy_j else None,
        "decoded": decoded, "decode_s": dec_s, "evaluated": evaluated, "prefill_s": pre_s,
        "energy_j": run.run_energy_j,
        "energy_kind": run.run_energy_kind,
        "completions": {(h.instance_index, h.hop_id): h.completion for h in hops},
    }
    if ref is not None:
        same = sum(1 for k, v in out["completions"].items() if ref.get(k) == v)
        out["agree"] = same / len(out["completions"])
    return out


def bench_rung(spec: str, scenarios: list[Any], batches: list[int], instances: int, db: Path) -> dict[str, Any]:
    from agentsim.backends.base import create_backend
    from agentsim.launch import RunControl, execute
    from agentsim.measure import make_meter
    from agentsim.store import Store

    probe = create_backend(spec)
    probe.load()
    ceiling = prefill_rate(probe)
    steps = {b: step_ceiling(probe, b) for b in batches if b > 1}
    probe.close()
    store = Store(db)
    meter = make_meter("estimate")
    out: dict[str, Any] = {"spec": spec, "prefill_ceiling_tok_s": ceiling, "step_ceiling_tok_s": steps, "sets": {}}
    try:
        for label, scs in scenarios:
            runs, failures = execute(scs, [spec], store=store, instances=instances, seed=0, modes=("free",),
                                     control=RunControl(meter=meter), batch_sizes=tuple(batches))
            if failures:
                raise SystemExit(f"{spec}: {failures[0][1]}")
            rows: dict[int, list[dict[str, Any]]] = {}
            for run in runs:  # one run per scenario x batch size
                rows.setdefault(run.batch_size, []).append(run)
            ref_by_scenario = {}
            table = []
            for b in batches:
                per = []
                for run in rows[b]:
                    f = figures(store, run, ref_by_scenario.get(run.scenario))
                    if b == batches[0]:
                        ref_by_scenario[run.scenario] = f["completions"]
                    per.append(f)
                table.append(_merge(b, per))
            out["sets"][label] = table
    finally:
        meter.close()
    return out


def _merge(b: int, per: list[dict[str, Any]]) -> dict[str, Any]:
    """One row for batch size b over the scenarios of a set (sums, then rates)."""
    hops = sum(p["hops"] for p in per)
    wall = sum(p["wall_s"] for p in per)
    ok = sum(p["tasks_ok"] for p in per)
    def rate(tokens: str, seconds: str) -> float | None:  # pooled: all tokens / all seconds
        sec = sum(p[seconds] for p in per)
        return sum(p[tokens] for p in per) / sec if sec else None
    agree = [p["agree"] * p["hops"] for p in per if "agree" in p]
    energies = [p["energy_j"] for p in per]
    # every run's energy counts, including a run with no correct task (its joules are still spent)
    joules = None if any(e is None for e in energies) else sum(energies)
    return {
        "B": b, "hops": hops, "wall_s": wall, "hops_per_s": hops / wall, "gen_tok_s": rate("decoded", "decode_s"),
        "prompt_tok_s": rate("evaluated", "prefill_s"), "tasks_ok": ok, "tasks": sum(p["tasks"] for p in per),
        "s_per_task": wall / ok if ok else None, "j_per_task": joules / ok if ok and joules is not None else None,
        "agree": sum(agree) / hops if agree else None,
    }


def _fmt(v: Any, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rungs", default="f16,q8_0,q4_0,mxfp4")
    ap.add_argument("--batches", default="1,4,8,16")
    ap.add_argument("--instances", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads (n_threads)")
    ap.add_argument("--tiny", action="store_true", help="the tiny test model instead (a smoke run)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    from agentsim import models
    from agentsim.scenario import load_scenario, resolve_scenario

    batches = [int(b) for b in args.batches.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="agentsim-batch-bench-"))
    (tmp / "decode-heavy.yaml").write_text(DECODE_HEAVY)
    sets = [("demo", [resolve_scenario(s) for s in DEMO]), ("decode-heavy", [load_scenario(tmp / "decode-heavy.yaml")])]
    if args.tiny:
        from tests.tiny_models import write_tiny_gguf

        path = write_tiny_gguf(tmp / "tiny.gguf", seed=0, dtype="f32")
        specs = [f"llama:{path},n_threads={args.threads}"]
    else:
        rungs = args.rungs.split(",")
        models.fetch(models.DEFAULT_MODEL, log=lambda m: print(m, flush=True))
        models.prepare(models.DEFAULT_MODEL, rungs, log=lambda m: print(m, flush=True))
        specs = [f"llama:{models.DEFAULT_MODEL}@{r},n_threads={args.threads}" for r in rungs]
    print(f"threads={args.threads}, instances={args.instances} per scenario, free mode, energy estimated "
          "(CPU time x watts per core: no RAPL/NVML here)", flush=True)
    results = []
    for i, spec in enumerate(specs):
        r = bench_rung(spec, sets, batches, args.instances, tmp / f"r{i}.db")
        results.append(r)
        steps = r["step_ceiling_tok_s"]
        print(f"\n{spec}: prefill ceiling {r['prefill_ceiling_tok_s']:.1f} tok/s; decode-step shape alone "
              + ", ".join(f"B={b} {v:.1f} tok/s ({100 * v / r['prefill_ceiling_tok_s']:.0f} % of prefill)"
                          for b, v in steps.items()), flush=True)
        for label, rows in r["sets"].items():
            base = rows[0]
            print(f"  {label:12s}   B  gen tok/s  (of prefill, of step)  prompt tok/s   hops/s  (x B=1)   agree   s/task   J/task")
            for row in rows:
                frac = row["gen_tok_s"] / r["prefill_ceiling_tok_s"] if row["gen_tok_s"] else None
                step = steps.get(row["B"])
                sfrac = row["gen_tok_s"] / step if row["gen_tok_s"] and step else None
                print(f"  {'':12s} {row['B']:3d}  {_fmt(row['gen_tok_s']):>9s}  ({_fmt(frac and 100 * frac, '.0f'):>3s} %, "
                      f"{_fmt(sfrac and 100 * sfrac, '.0f'):>3s} %)"
                      f"      {_fmt(row['prompt_tok_s']):>9s}  {_fmt(row['hops_per_s'], '.2f'):>7s}  "
                      f"({row['hops_per_s'] / base['hops_per_s']:.2f}x)  {_fmt(row['agree'] and 100 * row['agree'], '.1f'):>5s}%"
                      f"  {_fmt(row['s_per_task'], '.2f'):>7s}  {_fmt(row['j_per_task'], '.2f'):>7s}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
