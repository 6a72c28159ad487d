"""Shared helpers for tests: writing scenario files, a scripted test backend."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any, ClassVar

from agentsim.backends.base import (
    Backend,
    BackendInfo,
    Completion,
    GenerationRequest,
    create_backend,
    register_backend,
)


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


class ScriptedBackend(Backend):
    """A test backend: answers from a script keyed by hop id, else the expected value.

    ``SCRIPT[hop_id]`` is a callable ``(request) -> str | Completion`` or a string (or a
    Completion, to script why generation stopped); raising inside it
    simulates a backend crash. This is a test/simulation backend (DESIGN.md), not a fake of a
    real model: it never pretends to be one.
    """

    NAME: ClassVar[str] = "scripted"
    SIMULATED: ClassVar[bool] = True
    SCRIPT: ClassVar[dict[str, Any]] = {}
    CALLS: ClassVar[list[str]] = []

    def generate(self, request: GenerationRequest) -> Completion:
        ScriptedBackend.CALLS.append(request.hop_id)
        action = self.SCRIPT.get(request.hop_id)
        if action is None:
            return Completion(text=str(request.expected))
        out = action(request) if callable(action) else action
        # a Completion as it is (to script a finish_reason), anything else as its text
        return out if isinstance(out, Completion) else Completion(text=str(out))

    def info(self) -> BackendInfo:
        return BackendInfo(name="scripted", kernel="test")


register_backend("scripted", "tests.helpers:ScriptedBackend", description="test backend")


def loaded_backend(spec: str) -> Any:
    """A backend for ``spec``, created and loaded (the caller closes it)."""
    b = create_backend(spec)
    b.load()
    return b


def run_cli(*args: Any, db: Any = None, check: bool = True, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """``agentsim ARGS [--db DB]`` in this process, through :func:`agentsim.cli.main` (what the
    installed script calls), under ``env`` (default: this one's): a CompletedProcess with its exit
    status and captured output. Tests of process behaviour (signals, pipes) start a process."""
    from agentsim.cli import main

    argv = [str(a) for a in args] + (["--db", str(db)] if db is not None else [])
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as exc:  # argparse: --help, a usage error
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    proc = subprocess.CompletedProcess(["agentsim", *argv], rc, out.getvalue(), err.getvalue())
    if check and proc.returncode != 0:
        raise AssertionError(f"{proc.args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc
