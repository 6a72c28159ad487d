"""Smoke test: the installed ``agentsim tui`` in a real terminal (tmux, 80x24), driven by keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import SCENARIO_DIR

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    """One private tmux server (its own socket), so the test never touches the user's sessions."""

    def __init__(self, name: str) -> None:
        self.socket = name
        self.session = name

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=check, capture_output=True, text=True)

    def capture(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session, check=False).stdout

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        end = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < end:
            screen = self.capture()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not on screen after {timeout}s:\n{screen}")

    def wait_gone(self, text: str, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text not in self.capture():
                return
            time.sleep(0.2)
        raise AssertionError(f"{text!r} still on screen after {timeout}s")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def alive(self) -> bool:
        return self.run("has-session", "-t", self.session, check=False).returncode == 0


def test_installed_tui_in_tmux(fixed_db, tmp_path):
    exe = Path(sys.executable).parent / "agentsim"
    if not exe.exists():
        pytest.skip("the agentsim console script is not installed next to this Python")
    tmux = Tmux(f"agentsim-test-{os.getpid()}")
    command = f"{exe} tui --db {fixed_db} --scenarios {SCENARIO_DIR}"
    tmux.run("new-session", "-d", "-s", tmux.session, "-x", "80", "-y", "24", command)
    tmux.run("set-option", "-g", "escape-time", "10", check=False)
    try:
        screen = tmux.wait_for("tiny-chain")  # opens on Runs: the database has runs
        assert "3 Runs" in screen and "noisy,p=0.3" in screen and "complete" in screen
        tmux.keys("4")
        screen = tmux.wait_for("outcome:")
        assert "run 8 tiny-dag [oracle]" in screen
        tmux.keys("1")
        tmux.wait_for("tiny-chain file")  # nine families above: the last file is below the fold at 24 rows
        tmux.keys("End", "Up", "Up")  # the --scenarios files come last: broken, tiny-chain, tiny-dag
        screen = tmux.wait_for("broken.yaml:9")
        assert "not in depends_on" in screen
        tmux.keys("?")
        tmux.wait_for("Hop marks")
        tmux.keys("Escape")
        tmux.wait_gone("Hop marks")  # a lone Escape needs a moment to be told from Alt+key
        tmux.keys("3")
        tmux.wait_for("space marks, c compares")
        tmux.keys("q")
        end = time.monotonic() + 15
        while tmux.alive() and time.monotonic() < end:
            time.sleep(0.2)
        assert not tmux.alive(), "q did not quit the app"
    finally:
        tmux.run("kill-server", check=False)
