"""Fidelity (agentsim.fidelity) on the llama backend with the tiny self-written GGUFs: a rung
against itself is 0, and one hop's KLD equals an independent computation from
llama-cpp-python's own raw logits (``Llama(logits_all=True).eval``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agentsim import fidelity
from agentsim.fidelity_tables import fidelity_rows
from agentsim.launch import execute
from agentsim.store import Store

pytestmark = pytest.mark.llama


@pytest.fixture
def runs(tiny_gguf: Path, tiny_gguf_f16: Path, tmp_path: Path):
    store = Store(tmp_path / "f.db")
    specs = [f"llama:{tiny_gguf},n_threads=1", f"llama:{tiny_gguf_f16},n_threads=1"]
    out, failures = execute(["chain-arith-d4"], specs, store=store, instances=2, modes="oracle")
    again, failures2 = execute(["chain-arith-d4"], specs[:1], store=store, instances=2, modes="oracle")
    assert not failures and not failures2
    yield store, out + again
    store.close()


def _independent_kld(path: Path, path_ref: Path, system: str, prompt: str, completion: str) -> np.ndarray:
    """KL(ref || rung) per completion position, from llama-cpp-python's public API only."""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def logprobs(p: Path) -> tuple[np.ndarray, list[int]]:
        llm = llama_cpp.Llama(model_path=str(p), logits_all=True, n_threads=1, verbose=False)
        tmpl = Jinja2ChatFormatter(template=llm.metadata["tokenizer.chat_template"], eos_token="", bos_token="")
        text = tmpl(messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}]).prompt
        pt = llm.tokenize(text.encode(), add_bos=False, special=True)
        ct = llm.tokenize(completion.encode(), add_bos=False, special=False)
        llm.eval(pt + ct[:-1])
        raw = np.array(llm.scores[len(pt) - 1:len(pt) + len(ct) - 1], dtype=np.float64)
        llm.close()
        from scipy.special import log_softmax

        return log_softmax(raw, axis=1), ct

    lq, ct = logprobs(path)
    lp, ct2 = logprobs(path_ref)
    assert ct == ct2
    return (np.exp(lp) * (lp - lq)).sum(axis=1)


def test_a_rung_against_itself_is_zero(runs) -> None:
    store, (ref, _f16, again) = runs
    res = fidelity.compute_fidelity(store, again.id, ref.id)
    assert res.compared == res.hops > 0
    rows = fidelity_rows(store, again.id, ref.id)
    assert {r.status for r in rows} == {"exact"}
    assert all(r.kld_mean == 0.0 and r.same_top == 1.0 and r.parted_at is None and r.delta_p_rms == 0.0 for r in rows)
    s = fidelity.fidelity_summary(store, again.id)
    assert s is not None and s.kld_mean == 0.0 and s.same_top == 1.0 and s.compared == len(rows)


def test_one_hop_equals_an_independent_computation(runs, tiny_gguf: Path, tiny_gguf_f16: Path) -> None:
    store, (ref, f16, _again) = runs
    fidelity.compute_fidelity(store, f16.id, ref.id)
    rows = [r for r in fidelity_rows(store, f16.id, ref.id) if r.status == "exact"]
    assert rows and any(r.kld_mean > 0 for r in rows)  # f16 rounding moves the distributions
    row = max(rows, key=lambda r: r.positions or 0)
    hop = next(h for h in store.hops(ref.id, row.instance_index) if h.hop_id == row.hop_id)
    system = next(i.system_prompt for i in store.instances(ref.id) if i.index == row.instance_index)
    kld = _independent_kld(tiny_gguf_f16, tiny_gguf, system, hop.prompt, hop.completion)
    assert len(kld) == row.positions
    assert row.kld_mean == pytest.approx(float(kld.mean()), rel=1e-4, abs=1e-9)
    assert row.kld_max == pytest.approx(float(kld.max()), rel=1e-4, abs=1e-9)


def test_batch_layout_against_batch_one(tiny_gguf: Path, tmp_path: Path) -> None:
    """The noise-floor pairing: the same rung at batch 1 and at batch 4, each scored in its own
    layout (batch 4: the shared prefix copied between streams); its figures are stored."""
    store = Store(tmp_path / "b.db")
    spec = f"llama:{tiny_gguf},n_threads=1"
    (b1,), _ = execute(["chain-arith-d4"], [spec], store=store, instances=4, modes="oracle")
    (b4,), _ = execute(["chain-arith-d4"], [spec], store=store, instances=4, modes="oracle", batch_sizes=4)
    res = fidelity.compute_fidelity(store, b4.id, b1.id)
    assert res.compared > 0
    s = fidelity.fidelity_summary(store, b4.id)
    assert s is not None and s.layout == {"rung_n_seq": 4, "reference_n_seq": 1}
    assert s.kld_mean is not None and s.kld_mean < 1e-3
    f = fidelity.flips(store, b4.id, b1.id)
    assert f.tasks_paired == 4


def _check_capture_matches_teacher_forcing(backend, requests, completions) -> int:
    """Each captured hop's rows are the teacher-forced rows of the same text (same positions,
    same tokens, distributions equal up to float rounding of another evaluation order)."""
    from agentsim.fidelity import hop_metrics

    seen = 0
    for req, c in zip(requests, completions, strict=True):
        got = backend.capture.get(req.system, req.prompt, c.text)
        if not c.text:
            continue
        assert got is not None and got.source == "captured" and got.kind == "exact"
        (tf,) = backend.score([(req, c.text)])
        assert got.token_ids == tf.token_ids and got.logprobs.shape == tf.logprobs.shape
        m = hop_metrics(tf.logprobs, got.logprobs, tf.token_ids)
        assert m.kld_max < 1e-4 and m.same_top == 1.0
        seen += 1
    return seen


def test_captured_rows_are_the_teacher_forced_rows(tiny_gguf: Path) -> None:
    """What generate and generate_batch keep in ``Backend.capture`` is, position for position,
    what the teacher-forced pass recomputes for the same completion."""
    from agentsim.backends.base import GenerationRequest, ScoreCapture, create_backend

    b = create_backend(f"llama:{tiny_gguf},n_threads=1")
    b.load()
    try:
        b.capture = ScoreCapture()
        # the integer grammar keeps the tiny model's answers to text that tokenizes back
        reqs = [GenerationRequest(prompt=f"Compute {i} + {i + 3}. Answer:", system="You add numbers.",
                                  max_tokens=6, grammar="integer") for i in range(4)]
        one = [b.generate(r) for r in reqs[:2]]
        assert _check_capture_matches_teacher_forcing(b, reqs[:2], one) == 2
        b.capture = ScoreCapture()
        many = b.generate_batch(reqs)
        assert _check_capture_matches_teacher_forcing(b, reqs, many) == 4
        # a stop sequence cuts the text: only its tokens' rows are kept
        b.capture = ScoreCapture()
        full = b.generate(reqs[0])
        cut = full.text[: max(1, len(full.text) // 2)]
        stop = full.text[len(cut):len(cut) + 1]
        if stop:
            r = GenerationRequest(prompt=reqs[0].prompt, system=reqs[0].system, max_tokens=6, stop=[stop],
                                  grammar="integer")
            c = b.generate(r)
            got = b.capture.get(r.system, r.prompt, c.text)
            if got is not None:
                (tf,) = b.score([(r, c.text)])
                assert got.token_ids == tf.token_ids
        # a request's own top_logprobs gets the scores on the completion, capture or not
        b.capture = None
        c = b.generate(GenerationRequest(prompt=reqs[1].prompt, system=reqs[1].system, max_tokens=6,
                                         grammar="integer", top_logprobs=3))
        assert c.scores is not None and len(c.scores.token_ids) == c.completion_tokens
    finally:
        b.close()


def test_a_fidelity_launch_takes_the_runs_own_distributions(tiny_gguf: Path, tmp_path: Path) -> None:
    """``Launch(fidelity=True)``: the noise-floor pair (batch 4 against batch 1) is scored from
    what the two runs computed while generating -- no teacher-forced pass -- and its figures
    agree with the teacher-forced pass of the same pair."""
    from agentsim.launch import Launch, RunControl, run_launch
    from agentsim.measure import UnavailableMeter

    store = Store(tmp_path / "c.db")
    spec = f"llama:{tiny_gguf},n_threads=1"
    res = run_launch(Launch(scenarios=["chain-arith-d4"], backends=[spec], modes="oracle", instances=4,
                            batch_sizes="1,4", energy="off", fidelity=True), store=store, control=RunControl(meter=UnavailableMeter()))
    assert not res.failures and len(res.runs) == 2
    b1, b4 = sorted(res.runs, key=lambda r: r.batch_size or 1)
    line = next(x for x in res.fidelity if f"run {b4.id} vs run {b1.id}" in x)
    assert "from the runs' own distributions" in line, line
    s_cap = fidelity.fidelity_summary(store, b4.id)
    assert s_cap is not None and s_cap.layout["captured_hops"] == s_cap.compared > 0
    cap_rows = {(r.instance_index, r.hop_id): r for r in fidelity_rows(store, b4.id, b1.id)}
    again = fidelity.compute_fidelity(store, b4.id, b1.id)  # no captures: teacher-forced
    assert again.captured == 0 and again.compared == s_cap.compared
    for r in fidelity_rows(store, b4.id, b1.id):
        c = cap_rows[(r.instance_index, r.hop_id)]
        assert (c.status, c.positions, c.same_top) == (r.status, r.positions, r.same_top)
        assert c.kld_mean == pytest.approx(r.kld_mean, abs=1e-5)
    store.close()


def test_the_demo_measures_a_noise_floor_and_shows_it_beside_the_rungs(tiny_gguf: Path, tiny_gguf_f16: Path,
                                                                       tmp_path: Path, capsys) -> None:
    """The demo's floor (agentsim.demo._measure_floor): one batched run again at batch 1, scored
    against it; the demo's fidelity section, the report's JSON, its lines and the KLD cells
    show it beside the rungs' drift."""
    from agentsim import demo
    from agentsim.fidelity.figures import RunFidelity, floor_of
    from agentsim.launch import Launch, RunControl, run_launch
    from agentsim.measure import UnavailableMeter
    from agentsim.render import build_report
    from agentsim.render.common import fidelity_cells, floor_lines
    from agentsim.render.markdown import render_markdown

    for d, src in (("f32", tiny_gguf), ("f16", tiny_gguf_f16)):  # one model name at two precisions
        (tmp_path / d).mkdir()
        (tmp_path / d / "tiny.gguf").symlink_to(src)
    specs = [f"llama:{tmp_path / d / 'tiny.gguf'},n_threads=1" for d in ("f32", "f16")]
    store = Store(tmp_path / "d.db")
    res = run_launch(Launch(scenarios=[demo.FLOOR_SCENARIO], backends=specs, modes=demo.FLOOR_MODE, instances=4,
                            batch_sizes=4, energy="off", fidelity=True), store=store,
                     control=RunControl(meter=UnavailableMeter()))
    assert not res.failures and len(res.runs) == 2
    top, rung = res.runs
    console = demo._console()
    demo._measure_floor(console, store, res.runs, 4)
    demo._fidelity(console, store, res.runs, res.fidelity)
    out = capsys.readouterr().out
    open("/tmp/wt25_demo_out.txt", "w").write(out)
    assert f"noise floor: run {rung.id}" in out and "against the same rung at batch 1" in out
    assert "noise floor (the same rung at batch 1, measured): KLD" in out and "x floor" in out
    doc = build_report(store, [r.id for r in res.runs])
    (fl,) = doc.report["noise_floor"]
    assert fl.run_id == rung.id and fl.batch == 4 and fl.against_batch == 1 and fl.kld_mean >= 0
    lines = floor_lines(doc)
    assert lines and lines[0].startswith("noise floor (measured") and f"run {rung.id} at batch 4" in lines[0]
    b = next(x for x in doc.runs if x.run_id == rung.id)
    assert "(floor " in fidelity_cells(doc, b)["KLD"]
    assert "noise floor (measured" in render_markdown(doc)[0]
    # a run without its own floor stands beside the largest one measured (marked as another rung's)
    assert floor_of(RunFidelity(reference_run_id=None), doc.report["noise_floor"]) == (fl.kld_mean, False)
    store.close()


def test_the_cost_benchmark_runs_both_launches_on_the_tiny_model(capsys) -> None:
    """``benchmarks/fidelity_cost.py --tiny``: the plain launch and the one with --fidelity, the
    captured hops counted, the bound stated."""
    from benchmarks import fidelity_cost

    assert fidelity_cost.main(["--tiny", "--instances", "4", "--batch", "4", "--mode", "oracle"]) == 0
    out = capsys.readouterr().out
    assert "with --fidelity:" in out and "from the runs' captured distributions" in out
    assert "bound of 50 %: " in out and "in CPU time" in out
