"""Prefill and decode speed of every prepared rung of a model, from llama.cpp's own counters.

One fixed chat prompt (~100 tokens) and a fixed number of generated tokens per rung, greedy, no
grammar, KV cache off (every repetition evaluates the whole prompt). Prints tokens/s per rung,
each rung's size and sha256, and how it is realised (native / emulated).

    .venv/bin/python benchmarks/llama_ladder_speed.py [--model qwen2.5-coder-0.5b] [--tokens 64] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

PROMPT = (
    "A warehouse keeps a log of boxes. On Monday it received 14 boxes of apples and 9 boxes of pears. "
    "On Tuesday it shipped 6 boxes of apples and received 11 boxes of plums. Describe, step by step, "
    "how many boxes of each fruit the warehouse holds at the end of Tuesday."
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model name (default: the default model)")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from agentsim import models
    from agentsim.backends.base import GenerationRequest, create_backend

    name = args.model or models.DEFAULT_MODEL
    listed = {m["name"]: m for m in models.list_models()}
    if name not in listed or not listed[name]["rungs"]:
        print(f"SKIPPED: {name} has no prepared rungs (run: agentsim models prepare {name})")
        return 0
    rows: list[dict[str, Any]] = []
    for rung in listed[name]["rungs"]:
        spec = f"llama:{name}@{rung['precision']},prefix_cache=false"
        if args.threads:
            spec += f",n_threads={args.threads}"
        b = create_backend(spec)
        with b:
            b.generate(GenerationRequest(prompt="Hi", max_tokens=2))  # warm-up
            pre, dec = [], []
            for _ in range(args.reps):
                c = b.generate(GenerationRequest(prompt=PROMPT, max_tokens=args.tokens))
                evals = c.extra["decode_evals"]
                pre.append(c.extra["prompt_evaluated"] / c.prefill_s)
                if c.decode_s and evals:
                    dec.append(evals / c.decode_s)
            info = b.info()
        rows.append({
            "precision": rung["precision"], "bytes": rung["bytes"], "sha256": rung["sha256"],
            "precision_mode": info.precision_mode, "prompt_tokens": c.prompt_tokens,
            "prefill_tok_s": statistics.median(pre), "decode_tok_s": statistics.median(dec) if dec else None,
            "kernel": info.kernel,
        })
        r = rows[-1]
        if not args.json:
            print(f"{r['precision']:>7}  {r['bytes'] / 1e6:8.1f} MB  prefill {r['prefill_tok_s']:7.1f} tok/s  "
                  f"decode {r['decode_tok_s'] or float('nan'):6.1f} tok/s  {r['precision_mode']:>8}  {r['sha256'][:16]}",
                  flush=True)
    if args.json:
        print(json.dumps({"model": name, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
