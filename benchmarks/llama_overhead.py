"""What agentsim costs on top of raw llama-cpp-python, and how much prompt the KV cache saves.

The same requests (the bundled scenarios' hops in oracle mode, so every prompt is fixed) go
through two paths, alternated in one process so that load, thermal and neighbour noise hit both:

* raw:      ``Llama.create_chat_completion`` (temperature 0, the hop's stop sequences and GBNF
            grammar), one call per hop -- what a user would write by hand;
* agentsim: the engine (``RunExecutor``, batch 1) with the ``llama`` backend: chat template, generation,
            parsing, judging, error attribution, one SQLite commit per hop.

Each path has its own loaded model (load time is excluded from both). Printed: wall time of
each repetition, the median ratio agentsim/raw (target <= 1.03) and the prefix-reuse fraction
(prompt tokens served from the KV cache / all prompt tokens, from llama.cpp's own counters).

    .venv/bin/python benchmarks/llama_overhead.py                  # default model, q4_0 rung
    .venv/bin/python benchmarks/llama_overhead.py --backend llama:qwen2.5-coder-0.5b@f16 --reps 3
    .venv/bin/python benchmarks/llama_overhead.py --tiny           # the tiny test model (seconds)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _build(spec: str) -> Any:
    from agentsim.backends.base import parse_spec
    from agentsim.backends.llama_cpp import LlamaBackend

    class KeptLoaded(LlamaBackend):
        """The engine closes a backend after its runs; here the model stays loaded between reps."""

        def close(self) -> None:
            pass

        def really_close(self) -> None:
            super().close()

    return KeptLoaded(parse_spec(spec))


def _engine_pass(store: Any, backend: Any, plans: list[Any]) -> list[Any]:
    """Every plan through the engine at batch 1, on the already loaded backend (the run path of
    ``agentsim run`` without its loading and closing, which the benchmark keeps out of the timing)."""
    from agentsim.engine import RunExecutor
    from agentsim.hardware import machine_info
    from agentsim.launch import _new_run
    from agentsim.measure import make_meter

    meter = backend.meter_for(make_meter("off"))
    machine = machine_info()
    return [RunExecutor(store, backend, meter, None, None).run(_new_run(store, p, backend, meter, machine), p.scenario)
            for p in plans]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="llama:qwen2.5-coder-0.5b@q4_0")
    ap.add_argument("--scenarios", nargs="+", default=["chain-linear", "fanin-dag"])
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tiny", action="store_true", help="use the tiny self-written test model")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import llama_cpp

    from agentsim.engine import RunPlan
    from agentsim.errors import AgentsimError
    from agentsim.grammar import resolve_grammar
    from agentsim.scenario import resolve_scenario
    from agentsim.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="llama-overhead-"))
    spec = args.backend
    if args.tiny:
        sys.path.insert(0, str(ROOT))
        from tests.tiny_models import write_tiny_gguf

        spec = f"llama:{write_tiny_gguf(tmp / 'tiny.gguf')}"
    backend = _build(spec)
    try:
        backend.load()
    except AgentsimError as exc:
        print(f"SKIPPED: cannot load {spec}: {exc}")
        return 0
    info = backend.info()
    # record what the engine asks, to replay it through raw llama-cpp-python
    requests: list[Any] = []
    inner = backend.generate

    def recording(req: Any) -> Any:
        requests.append(req)
        return inner(req)

    scenarios = [resolve_scenario(s) for s in args.scenarios]
    plans = [RunPlan(scenario=sc, mode="oracle", instances=args.instances, seed=0, params={}, launch_id="bench") for sc in scenarios]
    store = Store(str(tmp / "bench.db"))
    backend.generate = recording  # type: ignore[method-assign]
    run_backend = _engine_pass
    run_backend(store, backend, plans)  # warm-up rep: fills caches, records the requests
    backend.generate = inner  # type: ignore[method-assign]

    opts = backend.options
    raw = llama_cpp.Llama(model_path=info.model_path, n_ctx=backend._llm.n_ctx(), n_batch=int(opts["n_batch"]),
                          n_threads=backend._llm.n_threads, n_threads_batch=backend._llm.n_threads,
                          n_gpu_layers=backend._n_gpu_layers, seed=int(opts["seed"]), verbose=False)
    grammars: dict[str, Any] = {}

    raw_texts: list[str] = []
    raw_tokens = [0]

    def raw_pass() -> float:
        raw_texts.clear()
        raw_tokens[0] = 0
        t0 = time.perf_counter()
        for req in requests:
            messages = ([{"role": "system", "content": req.system}] if req.system else []) + [{"role": "user", "content": req.prompt}]
            g = resolve_grammar(req.grammar)
            if g and g not in grammars:
                grammars[g] = llama_cpp.LlamaGrammar.from_string(g, verbose=False)
            out = raw.create_chat_completion(messages, temperature=0.0, max_tokens=req.max_tokens, stop=req.stop or None,
                                             grammar=grammars.get(g) if g else None, seed=int(opts["seed"]))
            raw_texts.append(out["choices"][0]["message"]["content"] or "")
            raw_tokens[0] += out["usage"]["completion_tokens"]
        return time.perf_counter() - t0

    raw_pass()  # warm-up
    # time spent inside the backend during agentsim passes: the rest is the engine's own cost
    inside = [0.0]

    def timed(req: Any) -> Any:
        t = time.perf_counter()
        try:
            return inner(req)
        finally:
            inside[0] += time.perf_counter() - t

    backend.generate = timed  # type: ignore[method-assign]
    rows = []
    for rep in range(args.reps):
        order = ("raw", "agentsim") if rep % 2 == 0 else ("agentsim", "raw")
        times: dict[str, float] = {}
        runs: list[Any] = []
        for which in order:
            if which == "raw":
                times["raw"] = raw_pass()
            else:
                inside[0] = 0.0
                t0 = time.perf_counter()
                runs = run_backend(store, backend, plans)
                times["agentsim"] = time.perf_counter() - t0
                times["in_backend"] = inside[0]
        hops = store.hop_rows([r.id for r in runs], columns=["id", "kind", "prompt_tokens", "cached_tokens", "completion", "completion_tokens"])
        llm_hops = [h for h in sorted(hops, key=lambda h: h["id"]) if h["kind"] != "tool"]
        same = sum(h["completion"] == t for h, t in zip(llm_hops, raw_texts, strict=False))
        rows.append({"rep": rep, **times, "ratio": times["agentsim"] / times["raw"], "hops": len(requests),
                     "prompt_tokens": sum(h.get("prompt_tokens") or 0 for h in hops),
                     "cached_tokens": sum(h.get("cached_tokens") or 0 for h in hops),
                     "same_outputs": same, "agentsim_completion_tokens": sum(h["completion_tokens"] or 0 for h in llm_hops),
                     "raw_completion_tokens": raw_tokens[0]})
        r = rows[-1]
        if not args.json:
            print(f"rep {rep}: raw {r['raw']:.2f} s  agentsim {r['agentsim']:.2f} s  ratio {r['ratio']:.3f}  "
                  f"(in backend {r['in_backend']:.2f} s)", flush=True)
    backend.really_close()
    raw.close()
    ratios = [r["ratio"] for r in rows]
    prompt = sum(r["prompt_tokens"] for r in rows)
    cached = sum(r["cached_tokens"] for r in rows)
    summary = {
        "backend": str(backend.spec), "model_sha256": info.model_sha256, "hops_per_rep": len(requests),
        "reps": args.reps, "median_ratio": statistics.median(ratios), "min_ratio": min(ratios), "max_ratio": max(ratios),
        "raw_s_per_hop": statistics.median(r["raw"] for r in rows) / len(requests),
        "agentsim_s_per_hop": statistics.median(r["agentsim"] for r in rows) / len(requests),
        "engine_ms_per_hop": statistics.median((r["agentsim"] - r["in_backend"]) for r in rows) / len(requests) * 1000,
        "prefix_reuse_fraction": cached / prompt if prompt else None,
        "target_ratio": 1.03, "rows": rows,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{len(requests)} hops per rep, {args.reps} reps, backend {summary['backend']}")
        print(f"agentsim/raw wall-time ratio: median {summary['median_ratio']:.3f} "
              f"(min {summary['min_ratio']:.3f}, max {summary['max_ratio']:.3f}; target <= 1.03)")
        last = rows[-1]
        print(f"same outputs (last rep): {last['same_outputs']}/{len(requests)}; generated tokens raw "
              f"{last['raw_completion_tokens']}, agentsim {last['agentsim_completion_tokens']}")
        print(f"per hop: raw {summary['raw_s_per_hop'] * 1000:.1f} ms, agentsim {summary['agentsim_s_per_hop'] * 1000:.1f} ms")
        print(f"agentsim's own cost outside the backend: {summary['engine_ms_per_hop']:.1f} ms per hop "
              f"({summary['engine_ms_per_hop'] / 1000 / summary['raw_s_per_hop']:.1%} of a raw hop)")
        if summary["prefix_reuse_fraction"] is not None:
            print(f"prefix reuse: {cached}/{prompt} prompt tokens served from the KV cache "
                  f"({summary['prefix_reuse_fraction']:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
