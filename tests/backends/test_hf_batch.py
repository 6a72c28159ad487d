"""The hf backend's padded batch (``HFBackend.generate_batch``) on the tiny self-written GGUF:
left-padded prompts, per-sequence stopping, greedy tokens equal to batch 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsim.backends.base import GenerationRequest, create_backend

pytestmark = [pytest.mark.hf, pytest.mark.slow, pytest.mark.shared_home]  # loads torch and transformers: ~20 s

PROMPTS = [
    ("what is the sum of the apples?", "you are a helpful assistant."),
    ("the city is in the country. answer with the number only.", None),
    ("there are three apples and the total is", "answer with the number only."),
    ("the answer is", "you are a helpful assistant. the result of the question is the answer."),
]


@pytest.fixture(scope="module")
def backend(tiny_gguf: Path, module_home: Path):
    b = create_backend(f"hf:{tiny_gguf}@f32")
    b.load()
    yield b
    b.close()


def _reqs(**kw) -> list[GenerationRequest]:
    return [GenerationRequest(prompt=p, system=s, max_tokens=kw.get("max_tokens", 5 + 3 * i),
                              stop=kw.get("stops", [[]] * 4)[i]) for i, (p, s) in enumerate(PROMPTS)]


def test_padded_batch_equals_batch_1(backend) -> None:
    reqs = _reqs()
    alone = [backend.generate(r) for r in reqs]
    together = backend.generate_batch(reqs)
    assert len({len(backend._prompt_ids(r)[0]) for r in reqs}) > 1  # the prompts really are padded
    assert [c.extra["token_ids"] for c in together] == [c.extra["token_ids"] for c in alone]
    assert [c.text for c in together] == [c.text for c in alone]
    assert [c.completion_tokens for c in together] == [5, 8, 11, 14]
    assert {c.batch_timing for c in together} == {"attributed"}
    assert sum(c.prefill_s for c in together) == pytest.approx(together[0].batch_prefill_s)
    assert sum(c.decode_s for c in together) == pytest.approx(together[0].batch_decode_s)


def test_each_sequence_stops_on_its_own(backend) -> None:
    free = [backend.generate(r) for r in _reqs(max_tokens=12)]
    stops = [[f.text[len(f.text) // 2: len(f.text) // 2 + 2]] if i % 2 == 0 else [] for i, f in enumerate(free)]
    reqs = _reqs(max_tokens=12, stops=stops)
    together = backend.generate_batch(reqs)
    alone = [backend.generate(r) for r in reqs]
    assert [c.text for c in together] == [c.text for c in alone]
    assert [c.finish_reason for c in together] == [c.finish_reason for c in alone]
    assert together[0].finish_reason == "stop" and together[1].finish_reason == "length"


def test_a_prompt_that_tokenizes_to_nothing_fails_its_own_hop_only(backend, monkeypatch) -> None:
    reqs = _reqs()
    alone = [backend.generate(r) for r in reqs]
    real = backend._prompt_ids
    monkeypatch.setattr(backend, "_prompt_ids", lambda r: ([], False) if r is reqs[1] else real(r))
    out = backend.generate_batch(reqs, return_exceptions=True)
    assert isinstance(out[1], Exception) and "tokenizes to nothing" in str(out[1])
    others = [out[i] for i in (0, 2, 3)]
    assert [c.extra["token_ids"] for c in others] == [alone[i].extra["token_ids"] for i in (0, 2, 3)]
    assert {c.extra["batch_sequences"] for c in others} == {3}
    with pytest.raises(Exception, match="tokenizes to nothing"):
        backend.generate_batch(reqs)
    # a lone survivor is a batch of one: generate's own figures
    lone = backend.generate_batch([reqs[0], reqs[1]], return_exceptions=True)
    assert lone[0].batch_timing == "own" and lone[0].extra["token_ids"] == alone[0].extra["token_ids"]
    assert isinstance(lone[1], Exception)
