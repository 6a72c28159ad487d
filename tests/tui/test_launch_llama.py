"""A real model through the Launch screen (slow: needs a built rung of the model ladder)."""

from __future__ import annotations

import pytest

from agentsim.store import Store

from .helpers import SCENARIO_DIR, make_test_app, run_async, screen_text
from .test_launch import _wait_for

pytestmark = [pytest.mark.slow, pytest.mark.llama]

SPEC = "llama:qwen2.5-coder-0.5b@q4_k_m"


def _rung_built() -> bool:
    try:
        from agentsim.models import list_models
    except ImportError:
        return False
    return any(m["name"] == "qwen2.5-coder-0.5b" and any(r["precision"] == "q4_k_m" for r in m["rungs"])
               for m in list_models())


@run_async
async def test_launch_real_llama_run(tmp_path, user_model_cache):
    if not _rung_built():
        pytest.skip("model not prepared: agentsim models prepare qwen2.5-coder-0.5b --rungs q4_k_m")
    from textual.widgets import Input, SelectionList

    from agentsim.measure import make_meter
    from agentsim.tui.launch_screen import LaunchScreen

    db = tmp_path / "runs.db"
    messages: list = []
    app = make_test_app(db, start="launch", meter_factory=lambda: make_meter("auto"))
    async with app.run_test(size=(80, 24), message_hook=messages.append) as pilot:
        screen = app.screen
        await _wait_for(pilot, lambda: screen.query_one("#launch-scenarios", SelectionList).option_count > 0)
        screen.query_one("#launch-scenarios", SelectionList).select(str(SCENARIO_DIR / "tiny-chain.yaml"))
        screen.query_one("#launch-specs", Input).value = SPEC
        screen.query_one("#launch-instances", Input).value = "1"
        screen.query_one("#launch-scenarios", SelectionList).focus()
        await pilot.press("ctrl+r")
        await _wait_for(pilot, lambda: any(isinstance(m, LaunchScreen.LaunchFinished) for m in messages), 600)
        finished = next(m for m in messages if isinstance(m, LaunchScreen.LaunchFinished))
        assert finished.error is None and finished.failures == [], finished
        await pilot.pause(0.1)
        assert "4/4 hops" in screen_text(app)
    store = Store(db, readonly=True)
    run = store.get_run(1)
    assert run.status == "complete" and run.precision == "q4_k_m" and run.model_sha256
    hops = store.hops(1)
    assert len(hops) == 4 and all(h.completion for h in hops)
    assert all(h.energy_kind in ("measured", "estimated") and h.energy_j is not None for h in hops)
