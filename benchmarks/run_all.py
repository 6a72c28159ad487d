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


def main() -> int:
    failed = []
    for script in sorted(HERE.glob("*.py")):
        if script.name in ("run_all.py", "__init__.py") or script.name.startswith("_"):
            continue
        if script.name in NOT_IN_BENCH:
            print(f"\n=== {script.name}: not run here ({NOT_IN_BENCH[script.name]})", flush=True)
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
