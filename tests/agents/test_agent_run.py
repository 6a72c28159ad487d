"""``agent run`` and ``agent replay`` end to end: a real agent program (the official openai client in
a subprocess) against ``serve`` on real llama.cpp with the tiny GGUF at two precisions (f32, f16
of one model), judged instances, pairing, verdicts, resume after an interruption."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("openai")
pytest.importorskip("fastapi")

from agentsim.agents import AgentJob, parse_check, replay, resume_agent_run, run_agent  # noqa: E402
from agentsim.analysis import evaluate  # noqa: E402
from agentsim.errors import AgentsimError  # noqa: E402
from agentsim.store import Store  # noqa: E402
from tests.tiny_models import write_tiny_gguf  # noqa: E402

HERE = Path(__file__).parent
AGENT = [sys.executable, str(HERE / "tiny_agent.py")]


@pytest.fixture(scope="module")
def rungs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """One tiny model at two precisions (same name, so its runs pair like a real ladder's)."""
    d = tmp_path_factory.mktemp("rungs")
    (d / "f32").mkdir()
    (d / "f16").mkdir()
    write_tiny_gguf(d / "f32" / "tiny.gguf", seed=0, dtype="f32")
    write_tiny_gguf(d / "f16" / "tiny.gguf", seed=0, dtype="f16")
    # the lower rung first: the rung with the most bits still runs first, as the reference
    return [f"llama:{d / 'f16' / 'tiny.gguf'},n_threads=1", f"llama:{d / 'f32' / 'tiny.gguf'},n_threads=1"]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "agents.db")
    yield s
    s.close()


def test_agent_runs_are_judged_paired_and_get_verdicts(rungs: list[str], store: Store,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_CRASH_ON", "1")
    job = AgentJob(command=AGENT, check=parse_check(f"py:{HERE / 'checks.py'}:even_instances"), instances=4)
    seen: list[tuple[str, int, bool]] = []
    result = run_agent(job, rungs, store=store, energy="estimate",
                       progress=lambda spec, o, n: seen.append((spec, o.index, o.success)))
    assert not result.failures and len(result.runs) == 2
    ref, low = result.runs
    assert ref.precision == "f32" and low.precision == "f16"  # most bits first, whatever the order given
    assert len(seen) == 8
    for run in result.runs:
        assert run.status == "complete" and run.scenario == "agent:tiny_agent" and run.mode == "free"
        insts = store.instances(run.id)
        assert [i.success for i in insts] == [True, False, True, False]
        crashed = insts[1]
        assert crashed.vars["exit_code"] == 3 and "boom" in crashed.vars["stderr_tail"]
        assert insts[3].vars["check"] == "check returned False"
        hops = store.hops(run.id)
        assert len(hops) == 6 and {h.hop_id for h in hops} == {"c1", "c2"}
        assert all(h.parents == ["c1"] for h in hops if h.hop_id == "c2")
        assert all(h.energy_kind == "estimated" for h in hops)
    assert ref.scenario_fingerprint == low.scenario_fingerprint
    # the lower rung's calls were judged against the reference's (the tiny f16 model agrees or not:
    # whichever, each call has a verdict of inputs held or diverged)
    low_hops = store.hops(low.id)
    assert all(h.error_kind in ("none", "local", "propagated", "recovered") for h in low_hops)
    assert all(h.expected is not None for h in low_hops if h.hop_id == "c1")
    ev = evaluate(store, [ref.id, low.id])
    by_id = {r["run_id"]: r for r in ev["runs"]}
    assert by_id[low.id]["baseline_run_id"] == ref.id
    assert by_id[low.id]["paired"]["instances_paired"] == 4
    assert by_id[low.id]["verdict"]["verdict"] and by_id[low.id]["verdict"]["line"]
    assert store.integrity_check() == "ok"


def test_replay_scores_each_call_with_inputs_held(rungs: list[str], store: Store) -> None:
    job = AgentJob(command=AGENT, instances=2)
    ref, _ = run_agent(job, rungs, store=store, energy="off").runs
    runs, failures = replay(store, ref.id, rungs, energy="off")
    assert not failures and [r.mode for r in runs] == ["oracle", "oracle"]
    same = runs[0]  # the reference rung replayed: greedy llama.cpp gives the same answers
    assert same.precision == "f32"
    hops = store.hops(same.id)
    assert len(hops) == 4 and all(h.error_kind == "none" and h.correct for h in hops)
    assert {(h.hop_id, tuple(h.parents), h.depth) for h in hops} == \
        {(h.hop_id, tuple(h.parents), h.depth) for h in store.hops(ref.id)}
    assert all(i.success for i in store.instances(same.id))
    low = store.hops(runs[1].id)
    assert all(h.error_kind in ("none", "local") for h in low)  # never propagated: inputs held right
    assert runs[0].scenario_fingerprint == ref.scenario_fingerprint
    with pytest.raises(AgentsimError, match="replay"):
        replay(store, same.id, rungs[:1])


def test_interrupted_agent_run_resumes(rungs: list[str], store: Store) -> None:
    job = AgentJob(command=AGENT, instances=3)

    def stop_after_first(spec: str, o: object, n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_agent(job, rungs[1:], store=store, energy="off", progress=stop_after_first)
    (run,) = store.list_runs()
    assert run.status == "interrupted"
    assert [i.index for i in store.instances(run.id) if i.finished] == [0]
    done = resume_agent_run(store, run.id, energy="off")
    assert done.status == "complete"
    assert [i.finished for i in store.instances(run.id)] == [True, True, True]
    assert len(store.hops(run.id)) == 6 and store.integrity_check() == "ok"


def test_cli_agent_run_bad_input_exits_2(tmp_path: Path) -> None:
    from agentsim.cli import main

    db = str(tmp_path / "x.db")
    assert main(["agent", "run", "--db", db, "-b", "noisy", "--check", "bogus", "--", "true"]) == 2
    assert main(["agent", "run", "--db", db, "-b", "nosuch:x@f16", "--", "true"]) == 2
    assert main(["agent", "run", "--db", db, "-b", "noisy", "-n", "0", "--", "true"]) == 2
    assert main(["agent", "replay", "--db", db, "7", "-b", "noisy"]) == 2
