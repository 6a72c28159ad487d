"""An agent run (calls recorded by agentsim serve's recorder) in the TUI: listed, and its per-call
trace opens with the calls and tool hops of the DAG."""

from __future__ import annotations

from agentsim.backends.base import Completion, create_backend
from agentsim.measure import UnavailableMeter
from agentsim.serve.chat import parse_request
from agentsim.serve.recorder import AgentRunSpec, CallOutcome, Recorder, new_agent_run
from agentsim.store import Store

from .helpers import make_test_app, run_async, screen_text
from .helpers import wait_for as _wait_for


def _agent_db(db) -> int:
    store = Store(db)
    run = new_agent_run(store, create_backend("noisy"), UnavailableMeter(), AgentRunSpec(
        ref={"kind": "agent", "name": "shop", "command": ["python", "agent.py"], "check": "exit"}))
    rec = Recorder(store, run)
    rec.open_instance(0, 0)
    call = {"id": "call_1", "type": "function", "function": {"name": "get_price", "arguments": '{"sku": "A1"}'}}
    msgs = [{"role": "user", "content": "price of 2 A1?"}]
    rec.record(0, parse_request({"messages": msgs}), CallOutcome(
        content=None, tool_calls=[call], text='{"name": "get_price"}', finish_reason="tool_calls",
        completion=Completion(text="x", prompt_tokens=30, completion_tokens=9, prefill_s=0.2, decode_s=0.3),
        wall_s=0.5))
    msgs2 = msgs + [{"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "12.5"}]
    rec.record(0, parse_request({"messages": msgs2}), CallOutcome(
        content="25", text="25", finish_reason="stop",
        completion=Completion(text="25", prompt_tokens=50, completion_tokens=2, prefill_s=0.1, decode_s=0.1),
        wall_s=0.2))
    store.finish_instance(run.id, 0, success=True, final_correct=True, root_causes=[])
    store.update_run(run.id, status="complete")
    store.close()
    return run.id


@run_async
async def test_agent_run_trace_opens_with_its_calls(tmp_path):
    from agentsim.tui.runs_screen import RunsScreen

    db = tmp_path / "agent.db"
    run_id = _agent_db(db)
    hops = {h.hop_id: h for h in Store(db, readonly=True).hops(run_id)}
    assert hops["c2"].parents == ["c1", "c1.t0"] and hops["c1.t0"].kind == "tool"
    app = make_test_app(db, start="runs")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await _wait_for(pilot, lambda: screen.rows)
        assert "agent:shop" in screen_text(app)
        await pilot.press("enter")
        await _wait_for(pilot, lambda: app.current_mode == "trace")
        trace = app.screen
        await _wait_for(pilot, lambda: trace.run is not None and trace.run.id == run_id and trace.hops)
        assert set(trace.hops) == {"c1", "c1.t0", "c2"}
        text = screen_text(app)
        assert "c1" in text and "c2" in text
