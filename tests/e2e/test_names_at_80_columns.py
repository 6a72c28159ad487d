"""Piped at 80 columns, the names a user types back (scenarios, models, backends, tools, sweeps)
are printed whole on one line; the descriptions wrap instead. Was: ``agent-workfl…``,
``relation-com…``, two model rows that both read ``qwen2.5-co…``, ``batch`` / ``8`` on two lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest


def _run(*args: str, json_out: bool = False) -> str:
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run([sys.executable, "-m", "agentsim.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _whole(out: str, names: list[str]) -> None:
    lines = out.splitlines()
    assert max(len(line) for line in lines if any(n in line for n in names)) <= 80  # the table fits
    for name in names:
        assert any(name in line for line in lines), f"{name!r} is cut or wrapped:\n{out}"


@pytest.mark.parametrize("command", [("scenarios", "list"), ("models", "list"), ("tools", "list")])
def test_listed_names_are_whole(command: tuple[str, ...]) -> None:
    items = json.loads(_run(*command, "--json"))
    names = [it["name"] for it in (items if isinstance(items, list) else items.get("tools", items))]
    assert len(names) >= 3
    _whole(_run(*command), names)


def test_runs_keeps_the_backend_and_the_batch_size_whole(tmp_path) -> None:
    db = str(tmp_path / "r.db")
    _run("run", "chain-linear", "-b", "noisy,p=0.15,seed=1", "-n", "2", "--batch", "8", "--db", db)
    out = _run("runs", "--db", db)
    _whole(out, ["noisy,p=0.15,seed=1"])
    header = next(line for line in out.splitlines() if line.split()[:1] == ["id"])
    row = next(line for line in out.splitlines() if "noisy,p=0.15,seed=1" in line)
    assert re.search(r"\d\d-\d\d \d\d:\d\d$", row.rstrip()), out  # the last column is whole too
    assert " B " in header and row.split("noisy,p=0.15,seed=1")[1].split()[0] == "8", out
