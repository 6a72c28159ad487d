"""Helpers of the TUI tests: a database built with fixed clocks and energy, and screen text."""

from __future__ import annotations

import asyncio
import functools
import io
import itertools
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCENARIO_DIR = HERE / "scenarios"
FIXED_NOW = datetime(2026, 1, 15, 9, 30, 0, tzinfo=timezone.utc)


def run_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run an async Pilot test on a fresh asyncio loop (no pytest async plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def fixed_clock() -> datetime:
    return FIXED_NOW


def counting_clock(step: float) -> Callable[[], float]:
    """A clock that advances ``step`` seconds per call: deterministic timings and energy."""
    counter = itertools.count()
    return lambda: next(counter) * step


def fixed_meter() -> Any:
    """The real CPU-time *estimate* meter with injected clocks: every hop costs the same joules.

    This is the energy boundary the app takes (``meter_factory``); readings stay labelled
    ``estimated`` exactly as the real meter labels them.
    """
    from agentsim.measure import CPUTimeEstimateMeter

    return CPUTimeEstimateMeter(watts_per_core=10.0, cpu_clock=counting_clock(0.002),
                                clock=counting_clock(0.004))


@contextmanager
def fixed_perf_counter(step: float = 0.001) -> Iterator[None]:
    """Engine timings (wall_s, decode_s) come from ``time.perf_counter``: make it a counter."""
    real = time.perf_counter
    time.perf_counter = counting_clock(step)  # type: ignore[assignment]
    try:
        yield
    finally:
        time.perf_counter = real  # type: ignore[assignment]


def build_fixed_db(path: Path, *, instances: int = 12) -> Path:
    """Runs of the test scenarios (oracle and noisy p=0.3, free and oracle mode), deterministic.

    Everything that varies between builds is fixed: the noisy draws are seeded, timings come
    from a counting clock, energy from the estimate meter on counting clocks, and the stored
    timestamps are set to :data:`FIXED_NOW` (``created_at`` is filled by the store's own clock) and
    the per-hop peak memory (the test process's real RSS) to 64 MiB.
    """
    from agentsim.launch import RunControl, execute
    from agentsim.scenario import load_scenario
    from agentsim.store import Store

    store = Store(path)
    scenarios = [load_scenario(SCENARIO_DIR / "tiny-chain.yaml"), load_scenario(SCENARIO_DIR / "tiny-dag.yaml")]
    with fixed_perf_counter():
        meter = fixed_meter()
        execute(scenarios, ["oracle", "noisy,p=0.3"], store=store, instances=instances, seed=3,
                modes=("free", "oracle"), control=RunControl(meter=meter))
    store.close()
    con = sqlite3.connect(path)
    stamp = FIXED_NOW.replace(tzinfo=None).isoformat(sep=" ")
    con.execute("UPDATE run SET created_at = ?, finished_at = ?, batch = 'fixedbatch0001', host = 'test'",
                (stamp, stamp))
    # peak memory is the process's real RSS (it varies with what else the test process did)
    con.execute("UPDATE hop SET created_at = ?, peak_mem_bytes = 64 * 1048576", (stamp,))
    con.commit()
    con.close()
    return path


def screen_text(app: Any) -> str:
    """The current screen as plain text (what a user would read)."""
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def backend_choices() -> list[Any]:
    """Fixed Launch-screen choices (the real ones depend on the models built on the machine)."""
    from agentsim.tui.context import BackendChoice

    return [BackendChoice("oracle", "oracle (always right)"),
            BackendChoice("noisy,p=0.3", "noisy p=0.3 (30% hop errors)")]


def make_test_app(db: Path, **kwargs: Any) -> Any:
    from agentsim.tui.app import make_app

    opts: dict[str, Any] = dict(scenario_dirs=[str(SCENARIO_DIR)], include_bundled=False, clock=fixed_clock,
                                meter_factory=fixed_meter, backend_choices=backend_choices)
    opts.update(kwargs)
    return make_app(str(db), **opts)


async def wait_for(pilot: Any, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Let the app run until ``predicate()`` holds (the UI works in thread workers)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.05)


async def runs_loaded(app: Any, pilot: Any, n: int) -> Any:
    """The app's Runs screen, once it lists ``n`` runs."""
    from agentsim.tui.runs_screen import RunsScreen

    runs = app.screen
    assert isinstance(runs, RunsScreen)
    await wait_for(pilot, lambda: len(runs.rows) == n)
    return runs
