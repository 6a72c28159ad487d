"""The bundled example agent (examples/agents/shop: pydantic-ai, three tools, a deterministic check):
its check in the fast tier; the agent itself through ``agentsim agent run`` at f16 and q4_0 of the
default model in the slow tier, then compared and reported like any runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "agents" / "shop"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"shop_{name}", SHOP / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(SHOP))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(SHOP))
    return mod


def test_the_check_is_deterministic_and_strict() -> None:
    check = _load("check")
    catalog = _load("catalog")
    assert catalog.answer(0) == 25.0 and catalog.answer(1) == 17.0
    assert check.judge("The total is $25.00", 0, 0) and check.judge("25", 0, 7)
    assert not check.judge("about 24", 0, 0) and not check.judge("", 1, 0)
    assert check.judge("There are 17 units of B2 in stock.", 1, 0)  # a SKU's digit is no answer
    assert check.judge("B2: 17", 1, 0) and not check.judge("17 or maybe 18", 1, 0)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_example_agent_runs_at_f16_and_q4_0(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pydantic_ai")
    pytest.importorskip("llama_cpp")
    from agentsim.cli import main
    from agentsim.store import Store
    from tests.real_model import default_model_home

    monkeypatch.setenv("AGENTSIM_HOME", str(default_model_home(tmp_path_factory, ("f16", "q4_0"))))
    db = str(tmp_path / "shop.db")
    rc = main(["agent", "run", "--db", db, "-b", "llama:qwen2.5-coder-0.5b@q4_0", "-b", "llama:qwen2.5-coder-0.5b@f16",
               "-n", "2", "--energy", "estimate", "--check", f"py:{SHOP / 'check.py'}:judge", "--",
               sys.executable, str(SHOP / "agent.py")])
    assert rc == 0
    store = Store(db)
    ref, low = sorted(store.list_runs(), key=lambda r: r.id)
    assert ref.precision == "f16" and low.precision == "q4_0"
    for run in (ref, low):
        assert run.status == "complete"
        insts = store.instances(run.id)
        assert len(insts) == 2 and all(i.finished for i in insts)
        hops = store.hops(run.id)
        assert any(h.kind == "llm" for h in hops)
        # pydantic-ai sent the tools; the model called them in its own format; serve parsed them
        assert any(h.kind == "tool" for h in hops), [h.completion for h in hops]
    assert main(["compare", str(ref.id), str(low.id), "--db", db]) == 0
    assert main(["report", str(ref.id), str(low.id), "--db", db, "-o", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").stat().st_size > 1000
