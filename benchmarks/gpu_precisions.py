"""The hf backend's precisions on the default model: accuracy, decode speed, seconds and energy
per correct task. Written for a CUDA GPU (issue 11's GPU list), runnable on a CPU as well.

On a GPU (the default, ``--device cuda``) it runs ``hf@bf16``, ``hf@fp8,native=true`` (FP8
tensor cores: compute capability >= 8.9), ``hf@nf4`` and ``hf@int8-bnb`` on the bundled demo
scenarios (chain-linear, fanin-dag) with NVML energy, through ``agentsim run`` (the path a
user takes), then a fixed 64-token greedy decode per precision for the decode rate. It prints
one table and writes it as JSON beside the database:

* hop acc    llm hops answered correctly / llm hops
* task       instances whose every hop is right / instances
* decode     tok/s of the fixed decode: tokens after the first / the time after the first token
* s/task     run wall time / correct tasks (loading excluded: the model is loaded before the run)
* J/task     the run's energy / correct tasks, with the meter's label (measured / estimated)

    .venv/bin/python benchmarks/gpu_precisions.py                          # CUDA, NVML energy
    .venv/bin/python benchmarks/gpu_precisions.py --device cpu --threads 1 \\
        --precisions bf16,int8,int8-wo,int8-bnb,fp8,int4,int4-wo,nf4,fp4-bnb --energy auto
    .venv/bin/python benchmarks/gpu_precisions.py --decode-only --device cpu --threads 1 --precisions bf16,nf4
    .venv/bin/python benchmarks/gpu_precisions.py --summarize /tmp/prec.db   # a database already run

A precision the machine cannot run (native fp8 below compute capability 8.9, bitsandbytes
without a CUDA build) is refused by agentsim with the reason, printed, and left out.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SCENARIOS = ["chain-linear", "fanin-dag"]
#: options joined with '+' so that the list stays comma-separated on the command line
GPU_PRECISIONS = ["bf16", "fp8+native=true", "nf4", "int8-bnb"]
DECODE_PROMPT = "Write a Python function that returns the square of x."


def _spec(precision: str, device: str, threads: int) -> str:
    opts = [f"device={device}"] + ([f"threads={threads}"] if threads else [])
    return f"hf@{precision}," + ",".join(opts)


def run_scenarios(specs: list[str], db: Path, instances: int, energy: str) -> None:
    """One ``agentsim run`` per spec (a refused spec is printed and skipped, the others go on)."""
    for spec in specs:
        cmd = [sys.executable, "-m", "agentsim.cli", "run", *SCENARIOS, "-b", spec, "-n", str(instances),
               "--energy", energy, "--db", str(db)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        print(f"{spec}: exit {proc.returncode} in {time.perf_counter() - t0:.0f} s | " + " | ".join(tail), flush=True)


def decode_rate(spec: str, tokens: int) -> dict[str, Any]:
    """A fixed greedy decode of ``tokens`` tokens: prefill seconds and decode tok/s."""
    from agentsim.backends.base import GenerationRequest, create_backend
    from agentsim.errors import AgentsimError

    try:
        b = create_backend(spec)
        t0 = time.perf_counter()
        b.load()
        load_s = time.perf_counter() - t0
        req = GenerationRequest(prompt=DECODE_PROMPT, system="You are a helpful assistant.", max_tokens=tokens)
        b.generate(GenerationRequest(prompt="Hi", max_tokens=2))  # warm-up
        c = b.generate(req)
    except AgentsimError as exc:
        return {"spec": spec, "error": exc.message}
    n = (c.completion_tokens or 0) - 1
    out = {"spec": spec, "load_s": round(load_s, 1), "prefill_s": c.prefill_s, "tokens": c.completion_tokens,
           "decode_tok_s": n / c.decode_s if c.decode_s and n > 0 else None, "kernel": b.info().kernel,
           "peak_mem_bytes": c.peak_mem_bytes}
    b.close()
    return out


def summarize(db: Path) -> list[dict[str, Any]]:
    """Per backend spec: hop accuracy, task success, wall time and energy per correct task."""
    con = sqlite3.connect(str(db))
    con.row_factory = sqlite3.Row
    rows: dict[str, dict[str, Any]] = {}
    for run in con.execute("select * from run order by id"):
        r = rows.setdefault(run["backend"], {"backend": run["backend"], "precision": run["precision"],
                                             "mode": run["precision_mode"], "kernel": run["kernel"],
                                             "runs": 0, "hops": 0, "hops_ok": 0, "tasks": 0, "tasks_ok": 0,
                                             "wall_s": 0.0, "energy_j": 0.0, "energy_kind": set(),
                                             "gen_tokens": 0, "decode_s": 0.0})
        r["runs"] += 1
        hops = con.execute("select correct, completion_tokens, decode_s from hop where run_id=? and kind='llm'",
                           (run["id"],)).fetchall()
        r["hops"] += len(hops)
        r["hops_ok"] += sum(1 for h in hops if h["correct"])
        r["gen_tokens"] += sum(max(0, (h["completion_tokens"] or 0) - 1) for h in hops if h["decode_s"])
        r["decode_s"] += sum(h["decode_s"] or 0.0 for h in hops)
        inst = con.execute("select success from instance where run_id=?", (run["id"],)).fetchall()
        r["tasks"] += len(inst)
        r["tasks_ok"] += sum(1 for i in inst if i["success"])
        if run["created_at"] and run["finished_at"]:
            fmt = "%Y-%m-%d %H:%M:%S.%f"
            from datetime import datetime

            r["wall_s"] += (datetime.strptime(run["finished_at"], fmt) - datetime.strptime(run["created_at"], fmt)).total_seconds()
        if run["run_energy_j"] is not None:
            r["energy_j"] += float(run["run_energy_j"])
            r["energy_kind"].add(run["run_energy_kind"])
    out = []
    for r in rows.values():
        ok = r["tasks_ok"]
        out.append({
            **{k: r[k] for k in ("backend", "precision", "mode", "kernel", "runs", "hops", "tasks")},
            "hop_accuracy": r["hops_ok"] / r["hops"] if r["hops"] else None,
            "task_success": ok / r["tasks"] if r["tasks"] else None,
            "wall_s": round(r["wall_s"], 1),
            "hop_decode_tok_s": r["gen_tokens"] / r["decode_s"] if r["decode_s"] else None,
            "s_per_correct_task": r["wall_s"] / ok if ok else None,
            "j_per_correct_task": r["energy_j"] / ok if ok and r["energy_kind"] else None,
            "energy_kind": ",".join(sorted(k for k in r["energy_kind"] if k)) or "unavailable",
        })
    return out


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def print_table(summary: list[dict[str, Any]], decode: dict[str, dict[str, Any]]) -> None:
    print(f"{'backend':38} {'mode':9} {'hop acc':>8} {'task':>6} {'decode tok/s':>12} {'s/task':>8} {'J/task':>8}")
    for s in summary:
        d = decode.get(s["backend"], {})
        # the fixed 64-token decode when it was measured, else the hops' own (short answers: marked *)
        rate = _fmt(d["decode_tok_s"]) if d.get("decode_tok_s") else _fmt(s["hop_decode_tok_s"]) + "*"
        print(f"{s['backend']:38} {s['mode']:9} {_fmt(s['hop_accuracy'])} ({s['hops']:>3}) "
              f"{_fmt(s['task_success']):>6} {rate:>12} {_fmt(s['s_per_correct_task'], '.1f'):>8} "
              f"{_fmt(s['j_per_correct_task'], '.1f'):>8} {s['energy_kind']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--precisions", default=",".join(GPU_PRECISIONS),
                    help="comma-separated; a precision's options joined with '+', e.g. fp8+native=true "
                         "(default: the GPU list)")
    ap.add_argument("--instances", "-n", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--energy", default="nvml", help="nvml (GPU), auto, estimate, off")
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--db", type=Path, default=Path("gpu_precisions.db"))
    ap.add_argument("--summarize", type=Path, default=None, help="only summarize this database")
    ap.add_argument("--no-decode", action="store_true", help="skip the fixed decode measurement")
    ap.add_argument("--decode-only", action="store_true", help="only the fixed decode measurement")
    args = ap.parse_args(argv)
    if args.summarize:
        print_table(summarize(args.summarize), {})
        return 0
    precisions = [p.strip().replace("+", ",") for p in args.precisions.split(",") if p.strip()]
    specs = [_spec(p, args.device, args.threads) for p in precisions]
    t0 = time.perf_counter()
    if args.decode_only:
        for s in specs:
            print(json.dumps(decode_rate(s, args.decode_tokens), default=str), flush=True)
        return 0
    run_scenarios(specs, args.db, args.instances, args.energy)
    decode = {} if args.no_decode else {s: decode_rate(s, args.decode_tokens) for s in specs}
    summary = summarize(args.db)
    print_table(summary, decode)
    out = args.db.with_suffix(".json")
    out.write_text(json.dumps({"summary": summary, "decode": decode, "wall_s": time.perf_counter() - t0,
                               "instances": args.instances, "scenarios": SCENARIOS}, indent=1, default=str))
    print(f"wall {time.perf_counter() - t0:.0f} s; written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
