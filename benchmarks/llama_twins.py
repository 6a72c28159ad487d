"""The llama backend's cost twins: what each ladder rung costs on Qwen2.5-0.5B/1.5B's shapes, on this CPU.

    .venv/bin/python benchmarks/llama_twins.py                  # both twins, every rung, the 36 recorded hops
    .venv/bin/python benchmarks/llama_twins.py --twins twin-qwen2.5-0.5b --rungs f16,q4_0 --hops 12
    .venv/bin/python benchmarks/llama_twins.py --tiny           # a 1-layer, 1024-token twin: the path, no figure

Each twin (``agentsim models list``: "cost twin (random weights of the same shapes)") is written
here on first use (seeded random weights in the real model's published shapes, F16, pinned by
sha256), its ladder is built by llama.cpp's own quantizer (``agentsim models prepare``), and every
rung replays the token counts of a recorded CPU run of the demo scenarios
(``benchmarks/data/demo_token_counts.json``: each hop's prompt and completion tokens on
qwen2.5-coder-0.5b@f16) through llama.cpp at batch 1 on ``--threads`` threads
(:func:`agentsim.lab.twins.replay_llama`: every prompt token evaluated, then greedy decode steps to
the recorded completion length). It prints seconds per hop and per token and each rung's ratio to
f16, by parameter count (the cost side of the scale axis), and writes them as JSON (``--json``).
Energy is the labelled CPU-time estimate unless the machine has RAPL. A twin answers nothing: no
accuracy figure is ever formed from it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOKEN_COUNTS = ROOT / "benchmarks" / "data" / "demo_token_counts.json"
RUNGS = ("f16", "q8_0", "q4_k_m", "q4_0", "mxfp4", "nvfp4")


def _tiny_twin(home: Path, log: Any) -> str:
    """A 1-layer, 1024-token twin of the 0.5B shape added as a user model (the --tiny path)."""
    from agentsim import models
    from agentsim.lab.twin_gguf import write_twin_gguf
    from agentsim.lab.twins import SHAPES

    path = write_twin_gguf(SHAPES["qwen2.5-0.5b"], home / "twin-tiny.gguf", layers=1, vocab=1024)
    return models.add(path, name="twin-tiny", license="Apache-2.0 (random weights)", log=log)


def measure(twins: list[str], rungs: list[str], hops: list[tuple[int, int]], threads: int, log: Any,
            meter: Any, reps: int = 2) -> list[dict[str, Any]]:
    """Every rung of every twin, ``reps`` times in alternating order (f16 first, then last, ...):
    a row keeps its least disturbed repetition (the lowest seconds) and lists them all."""
    from agentsim import models
    from agentsim.lab.twins import TWIN_LABEL, replay_llama
    from agentsim.models.catalog import CATALOG

    rows: list[dict[str, Any]] = []
    for name in twins:
        t0 = time.perf_counter()
        built = models.prepare(name, rungs, log=log)
        log(f"{name}: ladder {', '.join(rungs)} ready in {time.perf_counter() - t0:.0f} s")
        cm = CATALOG.get(name)
        best: dict[str, dict[str, Any]] = {}
        seen: dict[str, list[float]] = {r: [] for r in rungs}
        for rep in range(reps):
            for rung in (rungs if rep % 2 == 0 else rungs[::-1]):
                r = replay_llama(str(models.resolve(name, rung).path), hops, n_threads=threads, meter=meter)
                seen[rung].append(round(r["seconds"], 3))
                if rung not in best or r["seconds"] < best[rung]["seconds"]:
                    best[rung] = r
                log(f"{TWIN_LABEL} {name}@{rung} (rep {rep + 1}): {r['s_per_hop'] * 1e3:.0f} ms per hop "
                    f"({r['prefill_s']:.2f} s prefill, {r['decode_s']:.2f} s decode over {r['hops']} hops; "
                    f"load {os.getloadavg()[0]:.1f})")
        for rung in rungs:
            rows.append({"twin": name, "label": TWIN_LABEL, "params": cm.params if cm else None, "rung": rung,
                         "file_bytes": (built.get(rung) or {}).get("bytes"), "threads": threads,
                         "reps_seconds": seen[rung], **best[rung]})
    base = {r["twin"]: r for r in rows if r["rung"] == "f16"}
    for r in rows:
        b = base.get(r["twin"])
        for f in ("s_per_hop", "s_per_token", "j_per_token"):
            r[f"{f}_x_f16"] = r[f] / b[f] if b and r.get(f) is not None and b.get(f) else None
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--twins", default="twin-qwen2.5-0.5b,twin-qwen2.5-1.5b", help="comma-separated twin names")
    ap.add_argument("--rungs", default=",".join(RUNGS))
    ap.add_argument("--hops", type=int, default=36, help="the first N recorded hops (36 recorded)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=2, help="repetitions per rung, alternating order (the lowest kept)")
    ap.add_argument("--json", type=Path, help="write the rows here")
    ap.add_argument("--tiny", action="store_true", help="a 1-layer, 1024-token twin in a temporary home, 4 hops")
    args = ap.parse_args(argv)
    from agentsim.errors import AgentsimError
    from agentsim.measure import make_meter

    recorded = json.loads(TOKEN_COUNTS.read_text())
    hops = [tuple(h) for h in recorded["hops"]][: (4 if args.tiny else args.hops)]
    rungs = [r.strip() for r in args.rungs.split(",") if r.strip()]
    bad = [r for r in rungs if r not in RUNGS]
    if bad or "f16" not in rungs:
        print(f"llama_twins: rungs must include f16 (the baseline) and be among {', '.join(RUNGS)}", file=sys.stderr)
        return 2

    def log(m: str) -> None:
        print(m, flush=True)

    meter = make_meter("auto")
    old_home = os.environ.get("AGENTSIM_HOME")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if args.tiny:
                os.environ["AGENTSIM_HOME"] = tmp  # the tiny twin and its rungs never touch the real cache
                twins = [_tiny_twin(Path(tmp), log)]
                rungs = [r for r in rungs if r in ("f16", "q8_0", "q4_0")] or ["f16"]
            else:
                twins = [t.strip() for t in args.twins.split(",") if t.strip()]
            args.reps = 1 if args.tiny else args.reps
            rows = measure(twins, rungs, hops, args.threads, log, meter, reps=args.reps)
        except AgentsimError as exc:
            print(f"llama_twins: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
            return 2
        finally:
            if args.tiny:
                if old_home is None:
                    os.environ.pop("AGENTSIM_HOME", None)
                else:
                    os.environ["AGENTSIM_HOME"] = old_home
    meter_desc = meter.describe()
    meter.close()
    print(f"\n{'twin':<22}{'params':>8}  {'rung':<7}{'ms/hop':>8}{'x f16':>7}{'ms/token':>10}")
    for r in rows:
        size = f"{r['params'] / 1e9:.2f}B" if r["params"] else "-"
        print(f"{r['twin']:<22}{size:>8}  {r['rung']:<7}{r['s_per_hop'] * 1e3:>8.0f}"
              f"{r['s_per_hop_x_f16']:>7.2f}{r['s_per_token'] * 1e3:>10.0f}")
    print(f"({recorded['source']}; {len(hops)} hops, {sum(p for p, _ in hops)} prompt and "
          f"{sum(c for _, c in hops)} completion tokens; batch 1, {args.threads} thread(s), best of {args.reps}; "
          f"energy: {meter_desc['name']})")
    if args.json:
        args.json.write_text(json.dumps({"token_counts": recorded["source"], "hops": len(hops), "energy_meter": meter_desc,
                                         "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows},
                                        indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
