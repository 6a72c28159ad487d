"""Issue 16's GPU part: the hf backend at bf16 and emulated int4/nvfp4 at B = 1, 8, 32, with NVML energy.

For each precision and each batch size B, the engine runs (a) the bundled demo scenarios
(chain-linear, fanin-dag) and (b) batch_throughput.py's decode-heavy scenario (one hop, 48-token
answers) in free mode, through ``agentsim.launch.execute(..., batch_sizes=...)`` -- the path
``agentsim run --batch 1,8,32`` takes -- all on the same instances (seed 0). One model load per
precision; the load is not in any figure. From the stored hops it prints, per precision:

* gen tok/s     tokens decoded after the first, summed over sequences, / the decode seconds
* prompt tok/s  prompt tokens evaluated / the prefill seconds (hf shares no prompt prefix)
* hops/s        hops / the runs' wall time (engine, parsing, SQLite commits included), and x B=1
* agree         hops whose completion equals B=1's, same instance (free mode: a lower bound)
* s/task        the runs' wall time / correct tasks (every hop right)
* J/task        the runs' energy / correct tasks, headed with the meter's kind (measured or
                estimated; a row whose runs disagree on the kind has no figure, never a mix)

and then the trap's reading: each precision's s/task and J/task over the baseline's (the first
precision, bf16) at the same B, per correct task (the trap's measure: cost and accuracy) and per
instance (the cost alone); > 1: it costs more than bf16. Emulated int4/nvfp4 round the weights as
the format stores them and multiply in bf16, so their ratios show what the rounding does to
accuracy and answer length at each B, not the cost of dequantization; real 4-bit kernels are
``int4-wo`` (torchao's tinygemm on CUDA) and ``nf4`` (bitsandbytes), e.g.
``--precisions bf16,int4,int4-wo`` (the ``quant`` extra).

The model comes from the local cache (``agentsim models fetch`` beforehand); nothing here reaches
the network. The wall time is estimated up front (an upper bound: every answer to its
max_tokens, at ``--step-ms`` per forward step). A precision the machine cannot run is refused with the reason and left out;
no CUDA GPU (``--device cuda``) or no NVML (``--energy nvml``) stops the run up front (exit 2).

    .venv/bin/python benchmarks/gpu_batching.py --json gpu_batching.json     # CUDA, NVML: at most ~6.5 min on an H200
    .venv/bin/python benchmarks/gpu_batching.py --precisions bf16,int4,int4-wo --instances 16
    .venv/bin/python benchmarks/gpu_batching.py --device cpu --tiny          # smoke run, tiny model (~10 s)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.batch_throughput import DECODE_HEAVY, DEMO, _fmt, figures  # noqa: E402

PRECISIONS = ["bf16", "int4", "nvfp4"]
BATCHES = [1, 8, 32]
#: 32 instances: B = 32 is one full batch, and the defaults stay within ~6 minutes on an H200
INSTANCES = 32
#: assumed seconds per forward step for the estimate: eager transformers, a 0.5B model, one
#: H100/H200 (launch-bound up to B = 64); a 0.5B model on one CPU thread; the tiny test model
STEP_S = {"cuda": 0.025, "cpu": 0.4, "tiny": 0.004}
#: assumed seconds per model load (the first converts the GGUF to cached safetensors)
LOAD_S = {"cuda": 25.0, "cpu": 30.0, "tiny": 3.0}


def backend_specs(precisions: list[str], *, model: str | None, device: str, threads: int) -> list[str]:
    opts = [f"device={device}"] + ([f"threads={threads}"] if threads else [])
    head = f"hf:{model}" if model else "hf"
    return [f"{head}@{p}," + ",".join(opts) for p in precisions]


def check_machine(device: str, energy: str, model: str | None) -> tuple[str, Any]:
    """The device, the energy meter and the model, refused up front with the reason (an
    :class:`~agentsim.errors.AgentsimError`): no CUDA GPU, no NVML, a model not fetched."""
    from agentsim.hardware import detect
    from agentsim.measure import make_meter
    from agentsim.models.hf_source import resolve_hf_model

    acc = detect(device)  # device=cuda without a usable GPU: HardwareError naming what NVML/torch see
    resolve_hf_model(model)  # a catalog model not fetched: ModelError with the fetch command
    meter = make_meter(energy)  # an explicit nvml without a GPU: MeterUnavailable
    return acc.describe(), meter


def estimate_s(scenarios: list[Any], n_specs: int, batches: list[int], instances: int,
               step_s: float, load_s: float) -> float:
    """An upper bound on the wall time: every answer runs to its max_tokens, one forward step
    per token (the prefill counted as one), each step ``step_s`` whatever the batch."""
    steps = 0
    for sc in scenarios:
        llm = [h for h in sc.spec.hops if h.kind == "llm"]
        waves: dict[int, int] = {}
        for h in llm:  # at B > 1 the ready LLM hops of one depth go out as one call
            waves[sc.depth[h.id]] = max(waves.get(sc.depth[h.id], 0), h.max_tokens + 1)
        for b in batches:
            if b == 1:
                steps += instances * sum(h.max_tokens + 1 for h in llm)
            else:
                steps += math.ceil(instances / b) * sum(waves.values())
    return n_specs * (load_s + steps * step_s)


def warm_up(spec: str, scenario: Any, store: Any) -> float:
    """The process's one-off costs (torch's first calls, the CUDA context, cuBLAS) paid before the
    first measured run, which would otherwise be the baseline's B = 1: two instances of one
    scenario at B = 1 and 2 (one more model load), in a store of their own."""
    from agentsim.launch import RunControl, execute
    from agentsim.measure import make_meter

    t0 = time.perf_counter()
    _, failures = execute([scenario], [spec], store=store, instances=2, seed=1, modes=("free",),
                          control=RunControl(meter=make_meter("off")), batch_sizes=(1, 2))
    if failures:
        raise failures[0][1]
    return time.perf_counter() - t0


def run_figures(store: Any, run: Any, ref: dict | None) -> dict[str, Any]:
    """batch_throughput's per-run figures plus the sums a set's row is built from."""
    f = figures(store, run, ref)
    llm = [h for h in store.hops(run.id) if h.kind == "llm" and h.error_kind != "backend"]
    f.update(decoded=sum(max((h.completion_tokens or 0) - 1, 0) for h in llm),
             decode_s=sum(h.decode_s or 0.0 for h in llm),
             evaluated=sum((h.prompt_tokens or 0) - (h.cached_tokens or 0) for h in llm),
             prefill_s=sum(h.prefill_s or 0.0 for h in llm),
             energy_j=run.run_energy_j, energy_source=run.run_energy_source)
    return f


def merge(b: int, per: list[dict[str, Any]]) -> dict[str, Any]:
    """One row for batch size ``b`` over a set's runs: token-weighted rates, summed energy. J/task
    is given only when every run has a reading and all of one kind (measured or estimated)."""
    hops = sum(p["hops"] for p in per)
    wall = sum(p["wall_s"] for p in per)
    ok = sum(p["tasks_ok"] for p in per)
    len_tasks = sum(p["tasks"] for p in per)
    dec_s, pre_s = sum(p["decode_s"] for p in per), sum(p["prefill_s"] for p in per)
    kinds = {p["energy_kind"] or "unavailable" for p in per}
    kind = kinds.pop() if len(kinds) == 1 else "mixed"
    joules = sum(p["energy_j"] for p in per) if all(p["energy_j"] is not None for p in per) else None
    measurable = kind in ("measured", "estimated") and joules is not None
    agree = [p["agree"] * p["hops"] for p in per if "agree" in p]
    return {
        "B": b, "hops": hops, "wall_s": wall, "hops_per_s": hops / wall if wall else None,
        "gen_tok_s": sum(p["decoded"] for p in per) / dec_s if dec_s else None,
        "prompt_tok_s": sum(p["evaluated"] for p in per) / pre_s if pre_s else None,
        "tasks_ok": ok, "tasks": len_tasks,
        "s_per_task": wall / ok if ok else None, "s_per_instance": wall / len_tasks if len_tasks else None,
        "energy_j": joules if measurable else None, "energy_kind": kind,
        "energy_source": ",".join(sorted({p["energy_source"] or "-" for p in per})),
        "j_per_task": joules / ok if measurable and ok and joules is not None else None,
        "j_per_instance": joules / len_tasks if measurable and len_tasks and joules is not None else None,
        "agree": sum(agree) / hops if agree and hops else None,
    }


def bench(specs: list[str], sets: list[tuple[str, list[Any]]], batches: list[int], instances: int,
          store: Any, meter: Any) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """One ``execute`` per precision (one load, every scenario and batch size), grouped into sets."""
    from agentsim.launch import RunControl, execute

    scenarios = [sc for _, scs in sets for sc in scs]
    results, refused = [], []
    for spec in specs:
        t0 = time.perf_counter()
        runs, failures = execute(scenarios, [spec], store=store, instances=instances, seed=0, modes=("free",),
                                 control=RunControl(meter=meter), batch_sizes=tuple(batches))
        refused += [(s, str(e)) for s, e in failures]
        runs = [store.get_run(r.id) for r in runs if r.status == "complete"]
        if not runs:
            print(f"{spec}: no complete run" + (f" ({failures[0][1].message})" if failures else ""), flush=True)
            continue
        by = {(r.scenario, r.batch_size): r for r in runs}
        out: dict[str, Any] = {"spec": spec, "precision": runs[0].precision, "mode": runs[0].precision_mode,
                               "kernel": runs[0].kernel, "wall_s": time.perf_counter() - t0, "sets": {}}
        for label, scs in sets:
            if not all((sc.name, b) in by for sc in scs for b in batches):
                continue
            refs = {sc.name: run_figures(store, by[(sc.name, 1)], None) for sc in scs}
            rows = []
            for b in batches:
                per = [refs[sc.name] if b == 1 else
                       run_figures(store, by[(sc.name, b)], refs[sc.name]["completions"]) for sc in scs]
                rows.append(merge(b, per))
            out["sets"][label] = rows
        print(f"{spec}: {len(runs)} runs in {out['wall_s']:.0f} s (load included)", flush=True)
        results.append(out)
    return results, refused


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def trap(results: list[dict[str, Any]], base_spec: str | None = None) -> list[dict[str, Any]]:
    """Each precision's cost over the baseline's at the same set and B: per correct task (the
    trap's measure: cost and accuracy together) and per instance (cost alone). An energy ratio
    only when both rows have one kind, the same (measured/measured or estimated/estimated). The
    baseline is the result of ``base_spec`` (None: the first result)."""
    ref = next((r for r in results if base_spec is None or r["spec"] == base_spec), None)
    out: list[dict[str, Any]] = []
    if ref is None:
        return out
    for r in results:
        if r is ref:
            continue
        for label, rows in r["sets"].items():
            for row, brow in zip(rows, ref["sets"].get(label, []), strict=False):
                same = row["energy_kind"] == brow["energy_kind"] and row["energy_kind"] in ("measured", "estimated")
                out.append({
                    "precision": r["precision"], "spec": r["spec"], "baseline": ref["spec"],
                    "baseline_precision": ref["precision"], "set": label, "B": row["B"],
                    "s_ratio": _ratio(row["s_per_task"], brow["s_per_task"]),
                    "j_ratio": _ratio(row["j_per_task"], brow["j_per_task"]) if same else None,
                    "s_instance_ratio": _ratio(row["s_per_instance"], brow["s_per_instance"]),
                    "j_instance_ratio": _ratio(row["j_per_instance"], brow["j_per_instance"]) if same else None,
                    "energy_kind": row["energy_kind"] if same else "unavailable",
                })
    return out


def print_tables(results: list[dict[str, Any]], ratios: list[dict[str, Any]]) -> None:
    for r in results:
        print(f"\n{r['spec']}  ({r['precision']}, {r['mode']}; kernel: {r['kernel']})")
        for label, rows in r["sets"].items():
            kinds = {row["energy_kind"] for row in rows}
            one_kind = len(kinds) == 1
            head = f"J/task ({next(iter(kinds))})" if one_kind else "J/task (kind per row)"
            print(f"  {label:12s}   B  gen tok/s  prompt tok/s   hops/s  (x B=1)   agree  tasks ok  s/task  {head}")
            base = rows[0]["hops_per_s"]
            for row in rows:
                x = row["hops_per_s"] / base if row["hops_per_s"] and base else None
                agree = "ref" if row["B"] == 1 else _fmt(row["agree"] and 100 * row["agree"], ".1f") + "%"
                j = _fmt(row["j_per_task"], ".2f") + ("" if one_kind else f" {row['energy_kind']}")
                print(f"  {'':12s} {row['B']:3d}  {_fmt(row['gen_tok_s']):>9s}  {_fmt(row['prompt_tok_s']):>12s}  "
                      f"{_fmt(row['hops_per_s'], '.2f'):>7s}  ({_fmt(x, '.2f')}x)  {agree:>6s}  "
                      f"{row['tasks_ok']:>4d}/{row['tasks']:<4d}{_fmt(row['s_per_task'], '.3f'):>7s}  {j:>8s}")
    if ratios:
        kinds = {t["energy_kind"] for t in ratios}
        ref = ratios[0]["baseline_precision"]
        print(f"\ntrap reading ({next(iter(kinds)) if len(kinds) == 1 else 'energy kind per row'} energy): "
              f"each precision / {ref} at the same B (> 1: costs more than {ref})")
        print("  per correct task: the trap's measure (cost and accuracy); per instance: the cost alone")
        print(f"  {'precision':10s} {'set':12s}   B  s/task ratio  J/task ratio  s/inst ratio  J/inst ratio")
        for t in ratios:
            print(f"  {t['precision']:10s} {t['set']:12s} {t['B']:3d}  {_fmt(t['s_ratio'], '.3f'):>12s}  "
                  f"{_fmt(t['j_ratio'], '.3f'):>12s}  {_fmt(t['s_instance_ratio'], '.3f'):>12s}  "
                  f"{_fmt(t['j_instance_ratio'], '.3f'):>12s}" + ("" if len(kinds) == 1 else f"  {t['energy_kind']}"))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--precisions", default=",".join(PRECISIONS), help="hf precisions, comma-separated, a precision's options joined with '+' "
                    "(e.g. int4+group=64); the first is the baseline of the ratios")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)), help="batch sizes, comma-separated; must include 1")
    ap.add_argument("--instances", "-n", type=int, default=None, help=f"instances per scenario (default {INSTANCES}; --tiny: 4)")
    ap.add_argument("--energy", default=None, help="energy meter (default: nvml on cuda, auto on cpu)")
    ap.add_argument("--model", default=None, help="a catalog name, a .gguf or an HF folder (default: the catalog's default model)")
    ap.add_argument("--tiny", action="store_true", help="the tiny test model (a smoke run)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 1 on cpu)")
    ap.add_argument("--step-ms", type=float, default=None, help="assumed ms per forward step, for the estimate")
    ap.add_argument("--db", type=Path, default=None, help="SQLite database for the runs (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from agentsim.errors import AgentsimError

    args = _parse(argv)
    try:
        return _main(args)
    except AgentsimError as exc:
        print(f"gpu_batching: {exc}", file=sys.stderr)
        return exc.exit_code


def _main(args: argparse.Namespace) -> int:
    from agentsim.errors import AgentsimError

    try:
        batches = sorted({int(b) for b in args.batches.split(",") if b.strip()})
    except ValueError:
        raise AgentsimError(f"--batches {args.batches!r}: give batch sizes as integers, e.g. 1,8,32") from None
    if not batches or batches[0] != 1:
        raise AgentsimError(f"--batches {args.batches}: must include 1 (the reference of agree and x B=1)")
    if args.instances is not None and args.instances < 1:
        raise AgentsimError(f"--instances {args.instances}: must be at least 1")
    if args.tiny and args.model:
        raise AgentsimError("--tiny and --model: give one (--tiny is the tiny test model)")
    precisions = [p.strip().replace("+", ",") for p in args.precisions.split(",") if p.strip()]
    if not precisions:
        raise AgentsimError("--precisions: give at least one hf precision, e.g. bf16,int4,nvfp4")
    saved_home = os.environ.get("AGENTSIM_HOME")
    with tempfile.TemporaryDirectory(prefix="agentsim-gpu-batching-") as tmpdir:
        try:
            return _run(args, batches, precisions, Path(tmpdir))
        finally:  # a --tiny run's model cache lived in the temporary folder
            if saved_home is None:
                os.environ.pop("AGENTSIM_HOME", None)
            else:
                os.environ["AGENTSIM_HOME"] = saved_home


def _run(args: argparse.Namespace, batches: list[int], precisions: list[str], tmp: Path) -> int:
    instances = args.instances or (4 if args.tiny else INSTANCES)
    energy = args.energy or ("nvml" if args.device == "cuda" else "auto")
    threads = args.threads if args.threads is not None else (1 if args.device == "cpu" else 0)
    model = args.model
    if args.tiny:
        from tests.tiny_models import write_tiny_gguf

        os.environ.setdefault("AGENTSIM_HOME", str(tmp / "home"))  # the smoke run leaves the user's cache alone
        model = str(write_tiny_gguf(tmp / "tiny.gguf", seed=0, dtype="f32"))
    machine, meter = check_machine(args.device, energy, model)
    try:
        return _measure(args, batches, instances, backend_specs(precisions, model=model, device=args.device,
                                                                threads=threads), tmp, machine, meter)
    finally:
        meter.close()


def _measure(args: argparse.Namespace, batches: list[int], instances: int, wanted: list[str], tmp: Path,
             machine: str, meter: Any) -> int:
    from agentsim.backends.base import create_backend
    from agentsim.errors import AgentsimError
    from agentsim.scenario import load_scenario, resolve_scenario
    from agentsim.store import Store

    specs, refused_first = [], []
    for spec in wanted:
        try:  # options, libraries and hardware (e.g. native nvfp4 below Blackwell), before any load
            create_backend(spec)
            specs.append(spec)
        except AgentsimError as exc:
            print(f"refused: {spec}: {exc}", flush=True)
            refused_first.append((spec, str(exc)))
    if not specs:
        raise AgentsimError(f"every precision was refused: {refused_first[0][1]}")
    (tmp / "decode-heavy.yaml").write_text(DECODE_HEAVY)
    sets = [("demo", [resolve_scenario(s) for s in DEMO]), ("decode-heavy", [load_scenario(tmp / "decode-heavy.yaml")])]
    where = "tiny" if args.tiny else args.device
    step_s = args.step_ms / 1000 if args.step_ms else STEP_S[where]
    est = estimate_s([sc for _, s in sets for sc in s], len(specs), batches, instances, step_s, LOAD_S[where])
    est += LOAD_S[where] + 4 * 25 * step_s  # the warm-up: one more load, a few short calls
    described = meter.describe()
    print(f"{machine}; energy: {described.get('name')} ({described.get('kind', '?')}); "
          f"{instances} instances per scenario, B = {', '.join(map(str, batches))}, free mode, seed 0", flush=True)
    print(f"estimated wall time: at most ~{est / 60:.1f} min ({len(specs) + 1} loads of ~{LOAD_S[where]:.0f} s, "
          f"every answer to max_tokens at {1000 * step_s:.0f} ms per step)", flush=True)
    t0 = time.perf_counter()
    warm_store = Store(tmp / "warm-up.db")
    try:
        print(f"warm-up ({specs[0]}, {DEMO[0]}, 2 instances at B = 1, 2): "
              f"{warm_up(specs[0], sets[0][1][0], warm_store):.0f} s", flush=True)
    finally:
        warm_store.close()
    db = args.db or tmp / "runs.db"
    store = Store(db)
    try:
        results, refused = bench(specs, sets, batches, instances, store, meter)
    finally:
        store.close()
    refused = refused_first + refused
    for spec, msg in refused[len(refused_first):]:
        print(f"refused: {spec}: {msg}", flush=True)
    ratios = trap(results, wanted[0])  # the first precision asked for is the baseline, never a stand-in
    if not any(r["spec"] == wanted[0] for r in results):
        print(f"no ratios: the baseline {wanted[0]} did not run", flush=True)
    print_tables(results, ratios)
    wall = time.perf_counter() - t0
    print(f"\nwall {wall:.0f} s (estimated at most {est:.0f} s)" + (f"; runs in {args.db}" if args.db else ""))
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine, "energy_meter": described, "instances": instances, "batches": batches,
            "scenarios": {label: [sc.name for sc in scs] for label, scs in sets}, "results": results,
            "trap": ratios, "refused": refused, "wall_s": wall, "estimate_s": est}, indent=1, default=str))
        print(f"written {args.json}")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
