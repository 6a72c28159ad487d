"""Trace screen: a hop's fidelity row (KLD, same-top share, where the distributions parted)."""

from __future__ import annotations

from types import SimpleNamespace

from agentsim.fidelity_tables import replace_fidelity
from agentsim.store import Store

from .helpers import make_test_app, run_async, screen_text
from .helpers import wait_for as _wait_for


def _with_fidelity(db):
    """Two runs of the fixture (same scenario, other backends) and a stored pass between them,
    its rows written as agentsim.fidelity writes them."""
    store = Store(db)
    runs = [r for r in store.list_runs() if r.scenario == "tiny-chain" and r.mode == "free"]
    run, ref = runs[0], runs[1]
    inst = store.instances(run.id)[0].index
    hops = store.hops(run.id, inst)
    rows = [{"instance_index": inst, "hop_id": h.hop_id, "status": "exact", "positions": 5, "kld_mean": 0.0123,
             "kld_max": 0.05, "kld_max_at": 2, "same_top": 0.8, "delta_p_mean": 0.01, "delta_p_rms": 0.02,
             "parted_at": 2} for h in hops if h.kind != "tool"]
    replace_fidelity(store, run.id, ref.id, rows, method="test", seconds=1.0)
    store.close()
    return run, ref, inst, hops[-1]


@run_async
async def test_trace_shows_a_hops_fidelity(fixed_db):
    run, ref, inst, final = _with_fidelity(fixed_db)
    app = make_test_app(fixed_db, start="trace")
    async with app.run_test(size=(100, 50)) as pilot:
        trace = app.screen
        trace.show_run(run.id, instance=inst, hop=final.hop_id)
        await _wait_for(pilot, lambda: trace.run is not None and trace.run.id == run.id and trace.fidelity)
        await pilot.pause(0.1)
        text = " ".join(screen_text(app).replace("│", " ").split())  # the detail pane wraps
        assert "KLD 0.0123" in text and "same top 80%" in text
        assert "parted at token 3 of 5" in text and f"vs run {ref.id}" in text, text


def test_fidelity_text_for_a_hop_not_compared() -> None:
    from agentsim.fidelity_tables import HopFidelityRead
    from agentsim.tui.trace_screen import fidelity_text

    f = HopFidelityRead(id=1, run_id=2, reference_run_id=1, instance_index=0, hop_id="a", status="diverged",
                        reason="inputs differ")
    assert fidelity_text(f).plain == "diverged: inputs differ (vs run 1)"


def test_compare_cells_show_flips_kld_and_the_floor() -> None:
    import dataclasses

    from agentsim.fidelity import FidelitySummary, Flips, FloorFigure, RunFidelity
    from agentsim.tui.compare_screen import fidelity_cells

    def summary(ref: int, kind: str = "exact", **layout: int) -> FidelitySummary:
        return FidelitySummary(run_id=7, reference_run_id=ref, kind=kind, hops=4, compared=4, diverged=0, unavailable=0,
                               positions=12, kld_mean=0.000405, kld_ci95=None, same_top=1.0, delta_p_rms=0.0,
                               parted_hops=0, seconds=1.0, layout=layout)

    floor = FloorFigure(against_run_id=8, against_batch=1, against_backend="llama", batch=4,
                        flips=Flips(7, 8, 4, 0, 0, 12, 0, 0), fidelity=None)
    fig = RunFidelity(reference_run_id=5, flips=Flips(7, 5, 4, 3, 1, 12, 2, 1), fidelity=summary(5), floor=(floor,))
    s = SimpleNamespace(run_id=7, baseline_run_id=5, fidelity=fig)
    assert fig.flips.task_flips == 4 and fig.flips.hop_flips == 3
    assert fidelity_cells(s) == ("-3 +1 (floor 0)", "0.000405")
    s.fidelity = dataclasses.replace(fig, fidelity=summary(6, "topk", top_k=20), floor=())
    assert fidelity_cells(s) == ("-3 +1", "0.000405 top-k estimate (k=20) vs r6")
    assert fidelity_cells(SimpleNamespace(run_id=5, baseline_run_id=5, fidelity=None)) == ("-", "-")
