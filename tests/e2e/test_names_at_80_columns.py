"""Printed to a pipe (not a terminal) at 80 columns, the names a user types back (scenarios, models, backends, tools, sweeps)
are printed whole on one line; the descriptions wrap instead. Was: ``agent-workfl…``,
``relation-com…``, two model rows that both read ``qwen2.5-co…``, ``batch`` / ``8`` on two lines."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from agentsim.cli import main


@pytest.fixture
def run80(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """``agentsim ARGS`` through ``cli.main`` with its output captured (not a terminal, as in a
    pipe) at ``COLUMNS=80``: its stdout."""
    monkeypatch.setenv("COLUMNS", "80")

    def run(*args: str) -> str:
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        assert code == 0, out.err
        return out.out

    return run


def _whole(out: str, names: list[str]) -> None:
    lines = out.splitlines()
    assert max(len(line) for line in lines if any(n in line for n in names)) <= 80  # the table fits
    for name in names:
        assert any(name in line for line in lines), f"{name!r} is cut or wrapped:\n{out}"


@pytest.mark.parametrize("command", [("scenarios", "list"), ("models", "list"), ("tools", "list")])
def test_listed_names_are_whole(command: tuple[str, ...], run80: Callable[..., str]) -> None:
    items = json.loads(run80(*command, "--json"))
    names = [it["name"] for it in (items if isinstance(items, list) else items.get("tools", items))]
    assert len(names) >= 3
    _whole(run80(*command), names)


def test_runs_keeps_the_backend_and_the_batch_size_whole(tmp_path, run80: Callable[..., str]) -> None:
    db = str(tmp_path / "r.db")
    run80("run", "chain-linear", "-b", "noisy,p=0.15,seed=1", "-n", "2", "--batch", "8", "--db", db)
    out = run80("runs", "--db", db)
    _whole(out, ["noisy,p=0.15,seed=1"])
    header = next(line for line in out.splitlines() if line.split()[:1] == ["id"])
    row = next(line for line in out.splitlines() if "noisy,p=0.15,seed=1" in line)
    assert re.search(r"\d\d-\d\d \d\d:\d\d$", row.rstrip()), out  # the last column is whole too
    assert " B " in header and row.split("noisy,p=0.15,seed=1")[1].split()[0] == "8", out
