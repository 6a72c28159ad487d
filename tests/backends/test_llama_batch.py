"""The llama backend's batch path (backends/llama_batch.py) on the tiny self-written GGUFs: several
sequences in one llama.cpp context give exactly the greedy tokens of batch 1, each with its own
grammar, stops and budget; the shared prompt prefix is evaluated once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentsim.backends.base import GenerationRequest, create_backend
from agentsim.errors import BackendError

pytestmark = pytest.mark.llama

SYSTEM = "You are a helpful assistant. the answer is the number of the item. " * 4
PROMPTS = [
    "what is the value of the sum?",
    "the city is in the country.",
    "answer with the number only.",
    "there are three apples and the total is the sum of them.",
    "the result of the question is the answer.",
    "what is the item?",
    "the sum of them",
    "you are a helpful assistant.",
]


@pytest.fixture(params=["tiny_gguf", "tiny_gguf_f16"])
def backend(request: pytest.FixtureRequest):
    path: Path = request.getfixturevalue(request.param)
    b = create_backend(f"llama:{path},n_threads=1")
    b.load()
    yield b
    b.close()


def _ids(completions) -> list[list[int]]:
    return [c.extra["token_ids"] for c in completions]


@pytest.mark.parametrize("n", [2, 5, 8])
def test_batched_greedy_tokens_equal_batch_1(backend, n: int) -> None:
    reqs = [GenerationRequest(prompt=p, system=SYSTEM, max_tokens=6 + 2 * i) for i, p in enumerate(PROMPTS[:n])]
    alone = [backend.generate(r) for r in reqs]
    together = backend.generate_batch(reqs)
    assert _ids(together) == _ids(alone)
    assert [c.text for c in together] == [c.text for c in alone]
    assert [c.finish_reason for c in together] == [c.finish_reason for c in alone]
    assert [c.completion_tokens for c in together] == [6 + 2 * i for i in range(n)]
    assert [c.prompt_tokens for c in together] == [c.prompt_tokens for c in alone]
    # again: the batch context is reused and cleared between calls
    assert _ids(backend.generate_batch(reqs)) == _ids(alone)


def test_prompts_without_a_common_prefix(backend) -> None:
    reqs = [GenerationRequest(prompt=p, system=s, max_tokens=8)
            for p, s in zip(PROMPTS[:4], [None, "the city", SYSTEM, "answer"], strict=True)]
    together = backend.generate_batch(reqs)
    assert _ids(together) == _ids([backend.generate(r) for r in reqs])


def test_shared_prefix_is_evaluated_once(backend) -> None:
    reqs = [GenerationRequest(prompt=p, system=SYSTEM, max_tokens=4) for p in PROMPTS[:4]]
    cs = backend.generate_batch(reqs)
    prefix = cs[0].extra["shared_prefix_tokens"]
    tokens = [backend._llm.tokenize(backend.render(r).encode(), add_bos=False, special=True) for r in reqs]
    assert prefix > 50 and all(t[:prefix] == tokens[0][:prefix] for t in tokens)
    assert cs[0].cached_tokens == 0 and cs[0].extra["prompt_evaluated"] == cs[0].prompt_tokens
    for c in cs[1:]:
        assert c.cached_tokens == prefix and c.extra["prompt_evaluated"] == c.prompt_tokens - prefix
    # each hop's prefill/decode is its share of the batch's, labelled attributed
    assert {c.batch_timing for c in cs} == {"attributed"}
    assert sum(c.prefill_s for c in cs) == pytest.approx(cs[0].batch_prefill_s)
    assert sum(c.decode_s for c in cs) == pytest.approx(cs[0].batch_decode_s)
    assert cs[0].extra["decode_steps"] == 3  # the first token comes with the prompt
    # the next batch of the run finds the shared prefix still in the cache: nobody evaluates it
    again = backend.generate_batch([GenerationRequest(prompt=p, system=SYSTEM, max_tokens=4) for p in PROMPTS[4:8]])
    assert again[0].cached_tokens >= prefix - 1 and again[0].extra["prompt_evaluated"] < again[0].prompt_tokens - 50
    assert _ids(again) == _ids([backend.generate(GenerationRequest(prompt=p, system=SYSTEM, max_tokens=4))
                                for p in PROMPTS[4:8]])


@pytest.mark.parametrize("grammars", [["integer", None, "yesno", "choice:red|green|blue"]])
def test_each_sequence_has_its_own_grammar(backend, grammars) -> None:
    patterns = {"integer": r"-?[0-9]+", "yesno": r"yes|no", "choice:red|green|blue": r"red|green|blue"}
    reqs = [GenerationRequest(prompt=p, system=SYSTEM, max_tokens=6, grammar=g)
            for p, g in zip(PROMPTS, grammars, strict=False)]
    together = backend.generate_batch(reqs)
    assert _ids(together) == _ids([backend.generate(r) for r in reqs])
    for c, g in zip(together, grammars, strict=False):
        if g is not None:
            assert re.fullmatch(patterns[g], c.text.strip()), (g, c.text)


def test_each_sequence_has_its_own_stops(backend) -> None:
    free = [backend.generate(GenerationRequest(prompt=p, system=SYSTEM, max_tokens=12)) for p in PROMPTS[:3]]
    stops = [[f.text[len(f.text) // 2: len(f.text) // 2 + 2]] for f in free[:2]] + [[]]
    reqs = [GenerationRequest(prompt=p, system=SYSTEM, max_tokens=12, stop=s)
            for p, s in zip(PROMPTS[:3], stops, strict=True)]
    together = backend.generate_batch(reqs)
    alone = [backend.generate(r) for r in reqs]
    assert [c.text for c in together] == [c.text for c in alone]
    assert [c.finish_reason for c in together[:2]] == ["stop", "stop"]
    assert together[2].finish_reason == "length"


def test_a_request_too_long_fails_alone(backend) -> None:
    long = GenerationRequest(prompt="the sum " * 400, system=SYSTEM, max_tokens=8)
    reqs = [GenerationRequest(prompt=PROMPTS[0], system=SYSTEM, max_tokens=5), long,
            GenerationRequest(prompt=PROMPTS[1], system=SYSTEM, max_tokens=5)]
    out = backend.generate_batch(reqs, return_exceptions=True)
    assert isinstance(out[1], BackendError) and "n_ctx" in str(out[1])
    assert _ids([out[0], out[2]]) == _ids([backend.generate(reqs[0]), backend.generate(reqs[2])])
    with pytest.raises(BackendError, match="n_ctx"):
        backend.generate_batch(reqs)


def test_engine_run_at_batch_4_equals_batch_1(tiny_gguf: Path, tmp_path: Path) -> None:
    from agentsim.launch import execute
    from agentsim.store import Store

    store = Store(tmp_path / "r.db")
    runs, failures = execute(["chain-arith-d4"], [f"llama:{tiny_gguf},n_threads=1"], store=store,
                             instances=5, seed=0, batch_sizes=(1, 4))
    assert not failures
    key = lambda h: (h.instance_index, h.hop_id, h.completion, h.error_kind, tuple(h.root_cause))  # noqa: E731
    one, four = (sorted(map(key, store.hops(r.id))) for r in runs)
    assert one == four
    hops = store.hops(runs[1].id)
    assert {h.batch_timing for h in hops if h.kind == "llm"} <= {"attributed", "own"}
    assert any(h.batch_n == 4 and h.batch_timing == "attributed" for h in hops)


def test_the_low_level_api_this_path_needs() -> None:
    """Pinned to the installed llama-cpp-python: the calls and fields llama_batch.py uses."""
    import llama_cpp
    from llama_cpp import _internals

    for name in ("llama_memory_seq_cp", "llama_memory_clear", "llama_get_memory", "llama_max_parallel_sequences",
                 "llama_vocab_is_eog"):
        assert callable(getattr(llama_cpp, name)), name
    fields = {f[0] for f in llama_cpp.llama_context_params._fields_}
    assert {"n_ctx", "n_batch", "n_ubatch", "n_seq_max", "kv_unified"} <= fields
    assert hasattr(_internals.LlamaSampler, "add_grammar") and hasattr(_internals.LlamaBatch, "close")
