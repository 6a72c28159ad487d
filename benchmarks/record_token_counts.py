"""Record the token counts the cost twins replay: every LLM hop's prompt and completion tokens
from a real CPU run of the demo scenarios (chain-linear, fanin-dag) on the default model.

    .venv/bin/python benchmarks/record_token_counts.py        # -> benchmarks/data/demo_token_counts.json

The file is data for ``benchmarks/device_check.py`` and :func:`agentsim.lab.twins.replay`: the
twins (random weights of real shapes) then cost what these hops would have cost on those shapes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default="llama:qwen2.5-coder-0.5b@f16,n_threads=1")
    ap.add_argument("--instances", type=int, default=6)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "data" / "demo_token_counts.json")
    args = ap.parse_args(argv)
    from agentsim.launch import RunControl, execute
    from agentsim.measure import make_meter
    from agentsim.store import Store

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "rec.db")
        runs, failures = execute(["chain-linear", "fanin-dag"], [args.spec], store=store, instances=args.instances,
                                 seed=0, modes=("free",), control=RunControl(meter=make_meter("off")))
        if failures:
            raise SystemExit(f"record: {failures[0][1].message}")
        hops = []
        for r in runs:
            for h in store.hops(r.id):
                if h.kind == "llm" and h.prompt_tokens:
                    hops.append([h.prompt_tokens, h.completion_tokens or 0])
        store.close()
    data = {"source": f"{args.spec}, scenarios chain-linear + fanin-dag, {args.instances} instances each, seed 0, "
                      "free mode, batch 1, this project's 2-core CPU VM",
            "recorded": time.strftime("%Y-%m-%d"), "fields": ["prompt_tokens", "completion_tokens"], "hops": hops}
    args.out.write_text(json.dumps(data, indent=None) + "\n")
    print(f"recorded {len(hops)} hops in {time.perf_counter() - t0:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
