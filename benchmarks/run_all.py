"""Run every benchmark in this folder (``make bench``) and print their figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: measurements that are not run by ``make bench``, and why (each says how to run it)
NOT_IN_BENCH = {
    "gsm8k_table.py": "the paper's GSM8K table: hours of CPU at n >= 100 per bucket; see docs/gsm8k.md",
}
#: benchmarks run only where NVML sees a GPU (elsewhere they refuse: exit 2), and what they need
GPU_ONLY = {
    "gpu_batching.py": "issue 16's GPU check: a CUDA GPU with NVML; see docs/batching.md, GPU",
}


def _gpu_seen() -> bool:
    from agentsim.hardware import probe_nvml

    return bool(probe_nvml().gpus)


def main() -> int:
    failed = []
    for script in sorted(HERE.glob("*.py")):
        if script.name in ("run_all.py", "__init__.py") or script.name.startswith("_"):
            continue
        if script.name in NOT_IN_BENCH:
            print(f"\n=== {script.name}: not run here ({NOT_IN_BENCH[script.name]})", flush=True)
            continue
        if script.name in GPU_ONLY and not _gpu_seen():
            print(f"\n=== {script.name}: not run here (no GPU: {GPU_ONLY[script.name]})", flush=True)
            continue
        print(f"\n=== {script.name}", flush=True)
        rc = subprocess.call([sys.executable, str(script)])
        if rc != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
