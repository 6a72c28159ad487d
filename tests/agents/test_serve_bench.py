"""benchmarks/serve_overhead.py in its tiny mode: it runs, and its figures are what it says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("openai")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_serve_overhead_tiny_json() -> None:
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve_overhead.py"), "--tiny", "--calls", "5",
                        "--json"], capture_output=True, text=True, cwd=ROOT, timeout=500)
    assert p.returncode == 0, p.stderr
    fig = json.loads(p.stdout.strip().splitlines()[-1])
    assert fig["calls"] == 5 and fig["budget_ms"] == 5.0 and isinstance(fig["within_budget"], bool)
    assert fig["backend_ms_median"] > 0 and fig["server_cpu_ms_per_call"] > 0
    for kind in ("http", "openai"):
        assert fig[kind]["rtt_median"] >= fig[kind]["median"]  # the round trip holds the backend's time
    assert fig["within_budget"] == (fig["overhead_ms_median"] <= 5.0)


def test_serve_overhead_refuses_too_few_calls() -> None:
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve_overhead.py"), "--tiny", "--calls", "1"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2 and "at least 3" in p.stderr
