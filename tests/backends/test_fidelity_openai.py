"""Fidelity through an OpenAI-compatible server: ``agentsim serve`` (real llama.cpp on the tiny
GGUFs, loopback, started here) returns OpenAI ``logprobs``/``top_logprobs``, chat and
streaming; the ``openai`` backend captures them during a ``--fidelity`` launch and the pass
gives a top-k estimate with a tail bucket, labelled ``topk`` -- 0 for a rung against itself,
never above the exact KLD, and reaching it as k grows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from agentsim import fidelity  # noqa: E402
from agentsim.fidelity_tables import fidelity_rows  # noqa: E402
from agentsim.launch import Launch, RunControl, run_launch  # noqa: E402
from agentsim.measure import UnavailableMeter  # noqa: E402
from agentsim.serve import Serving  # noqa: E402
from agentsim.store import Store  # noqa: E402

pytestmark = pytest.mark.llama


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "o.db")
    yield s
    s.close()


def _post(base_url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{base_url}/chat/completions", json=body, timeout=60)


def test_serve_returns_openai_logprobs_in_chat_and_stream(tiny_gguf: Path, store: Store) -> None:
    with Serving(f"llama:{tiny_gguf},n_threads=1", store=store) as s:
        body = {"messages": [{"role": "user", "content": "Compute 2 + 3."}], "max_tokens": 5,
                "logprobs": True, "top_logprobs": 3}
        r = _post(s.base_url, body)
        assert r.status_code == 200, r.text
        choice = r.json()["choices"][0]
        content = choice["logprobs"]["content"]
        assert len(content) == r.json()["usage"]["completion_tokens"] > 0
        for e in content:
            top = e["top_logprobs"]
            assert len(top) == 3 and [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
            assert e["token"] == top[0]["token"] and e["logprob"] == top[0]["logprob"]  # greedy: the top token
            assert sum(math.exp(t["logprob"]) for t in top) <= 1 + 1e-9
        joined = b"".join(bytes(e["bytes"]) for e in content)
        assert joined.decode("utf-8", errors="replace") == choice["message"]["content"]
        # streamed: one chunk per token, each with its entry; the same entries and text
        with httpx.stream("POST", f"{s.base_url}/chat/completions", json={**body, "stream": True}, timeout=60) as st:
            events = [json.loads(x[5:]) for x in st.iter_lines() if x.startswith("data:") and x[5:].strip() != "[DONE]"]
        entries = [e for ev in events for c in ev["choices"] if c.get("logprobs") for e in c["logprobs"]["content"]]
        text = "".join(c["delta"].get("content") or "" for ev in events for c in ev["choices"])
        # (the same tokens; the prompt now comes from the prefix cache, which moves a logprob by ~1e-6)
        assert [e["bytes"] for e in entries] == [e["bytes"] for e in content]
        assert [e["logprob"] for e in entries] == pytest.approx([e["logprob"] for e in content], abs=1e-4)
        assert text == choice["message"]["content"]
        # without logprobs: none; OpenAI's refusals are 400 errors naming the field
        assert _post(s.base_url, {**body, "logprobs": False, "top_logprobs": None}).json()["choices"][0]["logprobs"] is None
        bad = _post(s.base_url, {**body, "top_logprobs": 21})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "top_logprobs"
        bad = _post(s.base_url, {**body, "logprobs": None})
        assert bad.status_code == 400 and "needs 'logprobs'" in bad.json()["error"]["message"]


def test_openai_topk_estimate_against_the_exact_kld(tiny_gguf: Path, tiny_gguf_f16: Path, store: Store,
                                                    tmp_path: Path) -> None:
    from agentsim.backends.base import GenerationRequest, create_backend
    from agentsim.fidelity.passes import _as_topk

    # one model name ("tiny", from the file name) served at two precisions, as two servers would
    for d, src in (("f32", tiny_gguf), ("f16", tiny_gguf_f16)):
        (tmp_path / d).mkdir()
        (tmp_path / d / "tiny.gguf").symlink_to(src)
    tiny_gguf, tiny_gguf_f16 = tmp_path / "f32" / "tiny.gguf", tmp_path / "f16" / "tiny.gguf"
    with Serving(f"llama:{tiny_gguf},n_threads=1", store=store) as a, \
            Serving(f"llama:{tiny_gguf_f16},n_threads=1", store=store) as b:
        # the hops' integer grammar goes to the server as a JSON schema (the tiny model's answers
        # are then text that tokenizes back to what it generated)
        ref_spec = f"openai:tiny@f32,base_url={a.base_url},grammar=json_schema"
        same_spec = f"{ref_spec},timeout_s=60"  # the same server again
        rung_spec = f"openai:tiny@f16,base_url={b.base_url},grammar=json_schema"
        res = run_launch(Launch(scenarios=["chain-arith-d4"], backends=[ref_spec, same_spec, rung_spec],
                                modes="oracle", instances=2, energy="off", fidelity=True),
                         store=store, control=RunControl(meter=UnavailableMeter()))
        assert not res.failures, res.failures
        ref, same, rung = res.runs
        # a rung against itself: 0, and labelled an estimate
        s_same = fidelity.fidelity_summary(store, same.id, ref.id)
        assert s_same is not None and s_same.kind == "topk" and s_same.compared > 0 and s_same.kld_mean == 0.0
        assert fidelity.estimate_label(s_same) == "top-k estimate (k=20)"
        from agentsim.cli.fidelity import kld_text

        assert "(top-k estimate (k=20))" in kld_text(s_same)
        rows = [r for r in fidelity_rows(store, rung.id, ref.id) if r.status == "topk"]
        assert rows, [(r.status, r.reason) for r in fidelity_rows(store, rung.id, ref.id)]
        # afterwards (no capture: the server's logprobs are gone) it is unavailable, with the reason
        later = fidelity.compute_fidelity(store, rung.id, ref.id)
        assert later.compared == 0 and "--fidelity" in (later.note or "")
    # the exact figures of the same hops, from llama.cpp's full distributions
    lb_ref, lb_rung = (create_backend(f"llama:{p},n_threads=1") for p in (tiny_gguf, tiny_gguf_f16))
    systems = {i.index: i.system_prompt for i in store.instances(ref.id)}
    full = [r for r in rows if r.reason is None]
    assert full
    try:
        for row in full:
            hop = next(h for h in store.hops(ref.id, row.instance_index) if h.hop_id == row.hop_id)
            req = GenerationRequest(prompt=hop.prompt, system=systems[row.instance_index])
            (p,), (q,) = lb_ref.score([(req, hop.completion)]), lb_rung.score([(req, hop.completion)])
            exact = fidelity.hop_metrics(p.logprobs, q.logprobs, p.token_ids)
            ests = [fidelity.topk_hop_metrics(_as_topk(p, k), _as_topk(q, k), p.token_ids).kld_mean
                    for k in (1, 5, 20, p.logprobs.shape[1])]
            assert all(x <= y + 1e-12 for x, y in zip(ests, ests[1:], strict=False))  # grows with k ...
            assert ests[-1] == pytest.approx(exact.kld_mean, rel=1e-6, abs=1e-12)  # ... to the exact figure
            assert all(e <= exact.kld_mean + 1e-9 for e in ests)
            # the server's estimate (k = 20) is the k = 20 estimate of these distributions
            assert row.kld_mean == pytest.approx(ests[2], rel=1e-3, abs=1e-7)
            assert row.positions == len(p.token_ids)
    finally:
        lb_ref.close()
        lb_rung.close()
    assert np.isfinite([r.kld_mean for r in rows]).all()


def test_the_official_client_reads_the_logprobs(tiny_gguf: Path, store: Store) -> None:
    openai = pytest.importorskip("openai")
    with Serving(f"llama:{tiny_gguf},n_threads=1", store=store) as s:
        client = openai.OpenAI(base_url=s.base_url, api_key="sk-none", max_retries=0)
        msgs = [{"role": "user", "content": "Compute 2 + 3."}]
        r = client.chat.completions.create(model="agentsim",
                                           messages=msgs, max_tokens=4, logprobs=True, top_logprobs=2)
        content = r.choices[0].logprobs.content
        assert len(content) == r.usage.completion_tokens and all(len(e.top_logprobs) == 2 for e in content)
        stream = client.chat.completions.create(model="agentsim", messages=msgs, max_tokens=4, logprobs=True,
                                                top_logprobs=2, stream=True)
        streamed = [e for ch in stream for c in ch.choices if c.logprobs for e in c.logprobs.content]
        assert [e.bytes for e in streamed] == [e.bytes for e in content]
