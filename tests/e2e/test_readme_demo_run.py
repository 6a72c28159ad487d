"""Slow tier: the README's demo table and verdicts are what a fresh ``agentsim demo`` prints on
the real model (the accuracy and error columns exactly: runs are deterministic; the timing and
energy columns vary from machine to machine and are not compared; nor are the verdicts, which
rest on them). This is the model-based half of the excerpt check
(tests/readme_excerpts.py holds the model-free excerpts in the default tier)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .test_readme_demo import _table_and_reading

DETERMINISTIC = ("acc", "task", "local", "prop", "parse")


def _rows(text: str) -> dict[tuple[str, str], dict[str, str]]:
    start = text.index("pooled over chain-linear, fanin-dag")
    rows: dict[tuple[str, str], dict[str, str]] = {}
    prec = None
    for line in text[start:].splitlines():
        if line.startswith("└"):
            break
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip("│").split("│")]
        prec = cells[0].rstrip("*") or prec
        rows[(prec, cells[1])] = dict(zip(["acc", "task", "local", "prop", "parse", "toks", "shop", "j"],
                                          cells[2:], strict=True))
    return rows


@pytest.mark.slow
@pytest.mark.llama
@pytest.mark.timeout(3600)
def test_the_readme_demo_is_what_the_demo_prints(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    env = {**os.environ, "COLUMNS": "100"}
    proc = subprocess.run([sys.executable, "-m", "agentsim.cli", "demo", "--db", str(tmp_path / "demo.db")],
                          capture_output=True, text=True, timeout=3500, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    fresh = _rows(proc.stdout)
    quoted, _ = _table_and_reading()
    assert set(fresh) == set(quoted)
    for key, row in quoted.items():
        assert {k: row[k] for k in DETERMINISTIC} == {k: fresh[key][k] for k in DETERMINISTIC}, key
