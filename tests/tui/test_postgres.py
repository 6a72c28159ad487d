"""The TUI on a PostgreSQL store (a real server from tests/pg_server.py): it lists the runs in
it, opens a run's trace, and shows a run another writer adds while it is open."""

from __future__ import annotations

import threading

import pytest

from tests.pg_server import session_server, unavailable_reason

from .helpers import (
    SCENARIO_DIR,
    fixed_meter,
    fixed_perf_counter,
    make_test_app,
    run_async,
    runs_loaded,
    screen_text,
)
from .helpers import wait_for as _wait_for

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


def _write_runs(db: str, backends: list[str], *, instances: int = 6, fixed_clock: bool = True) -> None:
    """Runs of the tests' tiny scenarios, free and oracle mode, through the one launch path
    (``fixed_clock``: engine timings from a counter; not while an app runs in this process)."""
    import contextlib

    from agentsim.launch import RunControl, execute
    from agentsim.scenario import load_scenario
    from agentsim.store import Store

    store = Store(db)
    scenarios = [load_scenario(SCENARIO_DIR / "tiny-chain.yaml"), load_scenario(SCENARIO_DIR / "tiny-dag.yaml")]
    with fixed_perf_counter() if fixed_clock else contextlib.nullcontext():
        execute(scenarios, backends, store=store, instances=instances, seed=3, modes=("free", "oracle"),
                control=RunControl(meter=fixed_meter()))
    store.close()


@pytest.fixture
def pg_db() -> str:
    db = session_server().new_database("tui")
    _write_runs(db, ["oracle", "noisy,p=0.3"])
    return db


@run_async
async def test_the_tui_lists_the_runs_of_a_postgresql_store_and_opens_a_trace(pg_db):
    from agentsim.store import Store

    stored = Store(pg_db, readonly=True)
    expected = sorted(r.id for r in stored.list_runs())
    assert len(expected) == 8
    noisy = next(r for r in stored.list_runs() if r.backend.startswith("noisy") and r.mode == "free"
                 and r.scenario == "tiny-chain")
    hops = stored.hops(noisy.id)
    stored.close()

    app = make_test_app(pg_db, start="runs")
    async with app.run_test(size=(100, 30)) as pilot:
        runs = await runs_loaded(app, pilot, 8)
        assert sorted(r.run.id for r in runs.rows) == expected
        text = screen_text(app)
        assert "tiny-chain" in text and "tiny-dag" in text and "noisy" in text and "oracle" in text
        # open the noisy free-mode run: its trace comes from the same server
        runs.query_one("#runs-table").move_cursor(row=[r.run.id for r in runs.rows].index(noisy.id))
        await pilot.press("enter")
        await _wait_for(pilot, lambda: app.current_mode == "trace")
        trace = app.screen
        await _wait_for(pilot, lambda: trace.run is not None and trace.run.id == noisy.id and trace.hops)
        first = [h for h in hops if h.instance_index == trace.instance_index]
        assert set(trace.hops) == {h.hop_id for h in first}
        assert all(trace.hops[h.hop_id].correct == h.correct for h in first)
        assert f"instance {trace.instance_index}" in screen_text(app)


@run_async
async def test_the_tui_shows_runs_another_writer_adds_to_postgresql(pg_db):

    app = make_test_app(pg_db, start="runs", refresh_s=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        runs = await runs_loaded(app, pilot, 8)
        writer = threading.Thread(target=_write_runs, args=(pg_db, ["noisy,p=0.1"]), kwargs={"instances": 3, "fixed_clock": False})
        writer.start()
        try:
            await _wait_for(pilot, lambda: len(runs.rows) == 12, timeout=60)
        finally:
            writer.join()
        await _wait_for(pilot, lambda: all(r.run.status == "complete" for r in runs.rows), timeout=30)
        assert "p=0.1" in screen_text(app)
