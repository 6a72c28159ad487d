"""The llama backend on the tiny self-written GGUF: real llama-cpp-python, real files.

Outputs of the random tiny model are meaningless, so these tests assert on token ids, counts,
the parsed shape of grammar-constrained answers, and on what llama.cpp reports -- never on text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentsim import models
from agentsim.backends.base import GenerationRequest, create_backend
from agentsim.errors import BackendError, ModelError
from agentsim.precision import FP4

pytestmark = pytest.mark.llama

SYSTEM = "You are a helpful assistant. the answer is the number of the item. " * 4


def _lcp(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@pytest.fixture
def backend(tiny_gguf: Path):
    b = create_backend(f"llama:{tiny_gguf},n_threads=1")
    b.load()
    yield b
    b.close()


def _raw_greedy(path: Path, prompt_tokens: list[int], n: int) -> list[int]:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=512, verbose=False)
    out: list[int] = []
    for tok in llm.generate(prompt_tokens, temp=0.0):
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok) or len(out) >= n:
            break
        out.append(tok)
    llm.close()
    return out


def test_greedy_tokens_match_raw_llama_cpp(backend, tiny_gguf: Path) -> None:
    req = GenerationRequest(prompt="what is the value of the sum?", system=SYSTEM, max_tokens=12)
    c = backend.generate(req)
    tokens = backend._llm.tokenize(backend.render(req).encode(), add_bos=False, special=True)
    assert c.extra["token_ids"] == _raw_greedy(tiny_gguf, tokens, 12)
    assert c.completion_tokens == len(c.extra["token_ids"]) == 12
    assert c.finish_reason == "length"
    assert c.prompt_tokens == len(tokens)
    # deterministic: the same request again (now from the KV cache) gives the same ids
    again = backend.generate(req)
    assert again.extra["token_ids"] == c.extra["token_ids"]


def test_chat_template_comes_from_the_gguf(backend) -> None:
    text = backend.render(GenerationRequest(prompt="Q?", system="S"))
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"


def test_prefix_reuse_counts_come_from_llama_cpp(backend) -> None:
    r1 = GenerationRequest(prompt="what is the value of the sum?", system=SYSTEM, max_tokens=4)
    r2 = GenerationRequest(prompt="the city is in the country.", system=SYSTEM, max_tokens=4)
    c1 = backend.generate(r1)
    assert c1.cached_tokens == 0
    assert c1.extra["prompt_evaluated"] == c1.prompt_tokens
    t1 = backend._llm.tokenize(backend.render(r1).encode(), add_bos=False, special=True)
    t2 = backend._llm.tokenize(backend.render(r2).encode(), add_bos=False, special=True)
    c2 = backend.generate(r2)
    shared = _lcp(t1, t2)
    assert shared > 40  # the system prompt
    assert c2.cached_tokens == shared
    assert c2.extra["prompt_evaluated"] == c2.prompt_tokens - shared
    for c in (c1, c2):
        assert c.prefill_s is not None and c.prefill_s > 0
        assert c.decode_s is not None and c.decode_s >= 0
        assert c.ttft_s is not None and c.ttft_s > 0


def test_prefix_cache_off_evaluates_everything(tiny_gguf: Path) -> None:
    b = create_backend(f"llama:{tiny_gguf},n_threads=1,prefix_cache=false")
    with b:
        for p in ("what is the value of the sum?", "the city is in the country."):
            c = b.generate(GenerationRequest(prompt=p, system=SYSTEM, max_tokens=3))
            assert c.cached_tokens == 0
            assert c.extra["prompt_evaluated"] == c.prompt_tokens


def test_cache_reuse_does_not_change_the_tokens(tiny_gguf: Path) -> None:
    prompts = ["what is the value of the sum?", "the city is in the country.", "answer with the number only."]
    outs = {}
    for cache in ("true", "false"):
        b = create_backend(f"llama:{tiny_gguf},n_threads=1,prefix_cache={cache}")
        with b:
            outs[cache] = [b.generate(GenerationRequest(prompt=p, system=SYSTEM, max_tokens=6)).extra["token_ids"] for p in prompts]
    assert outs["true"] == outs["false"]


@pytest.mark.parametrize("grammar,pattern", [("integer", r"-?[0-9]+"), ("yesno", r"yes|no"), ("choice:red|green|blue", r"red|green|blue")])
def test_grammar_holds_the_answer_format(backend, grammar: str, pattern: str) -> None:
    for prompt in ("what is the value of the sum?", "the city is in the country."):
        c = backend.generate(GenerationRequest(prompt=prompt, system=SYSTEM, max_tokens=6, grammar=grammar))
        assert re.fullmatch(pattern, c.text), c.text
        # a word grammar ends within the budget: the end came under the grammar (issue 27)
        assert c.finish_reason == ("grammar" if grammar != "integer" else c.finish_reason)
        assert c.finish_reason in ("grammar", "length")


def test_stop_sequence_cuts_the_text(backend) -> None:
    req = GenerationRequest(prompt="what is the value of the sum?", system=SYSTEM, max_tokens=12)
    free = backend.generate(req)
    ids = free.extra["token_ids"]
    full = backend._llm.detokenize(ids).decode("utf-8", errors="ignore")
    # a stop string: two characters from the middle of the free answer
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    assert len(stop) == 2 and full.find(stop) > 0
    c = backend.generate(GenerationRequest(prompt=req.prompt, system=SYSTEM, max_tokens=12, stop=[stop]))
    assert c.finish_reason == "stop"
    assert c.text == full[: full.find(stop)]
    assert c.completion_tokens < 12


def test_info_for_a_path(backend, tiny_gguf: Path) -> None:
    info = backend.info()
    assert info.name == "llama" and info.precision == "f32" and info.source_precision == "f32"
    assert info.precision_mode == "native"
    assert info.model_sha256 == models.sha256_file(tiny_gguf)
    assert info.model_path == str(tiny_gguf.resolve())
    assert "F32" in (info.kernel or "")
    assert info.extra["llama_cpp_python"] == "0.3.36"
    assert info.extra["n_ctx"] == 512  # capped at the model's trained context


def test_too_long_prompt_is_a_backend_error(tiny_gguf: Path) -> None:
    b = create_backend(f"llama:{tiny_gguf},n_ctx=64")
    with b, pytest.raises(BackendError, match="exceeds n_ctx"):
        b.generate(GenerationRequest(prompt="x", system=SYSTEM, max_tokens=4))


# ------------------------------------------------------------------------------------------
# the ladder through the backend


@pytest.fixture
def tiny_ladder(home: Path, tiny_gguf_f16: Path) -> str:
    models.add(tiny_gguf_f16, name="tiny")
    models.prepare("tiny", ["f16", "q8_0", "q4_0", "mxfp4", "nvfp4"])
    return "tiny"


def test_rungs_load_and_label_themselves(tiny_ladder: str) -> None:
    ids = {}
    for rung in ("f16", "q8_0", "q4_0", "mxfp4", "nvfp4"):
        b = create_backend(f"llama:tiny@{rung},n_threads=1")
        with b:
            c = b.generate(GenerationRequest(prompt="what is the value of the sum?", system=SYSTEM, max_tokens=8))
            info = b.info()
        ids[rung] = c.extra["token_ids"]
        assert len(ids[rung]) == 8
        assert info.precision == rung and info.model == "tiny" and info.source_precision == "f16"
        assert info.model_sha256 == models.resolve("tiny", rung).sha256
        if rung in FP4 and info.device == "cpu":
            assert info.precision_mode == "emulated"  # no FP4 tensor cores on a CPU
            assert rung.upper() in info.kernel and "no FP4 tensor cores" in info.kernel
        else:
            assert info.precision_mode == "native"
    assert len({tuple(v) for v in ids.values()}) >= 2  # the rungs are different models


def test_missing_rung_names_the_command(home: Path, tiny_gguf_f16: Path) -> None:
    models.add(tiny_gguf_f16, name="tiny")
    models.prepare("tiny", ["f16"])
    b = create_backend("llama:tiny@q4_k_m")
    with pytest.raises(ModelError) as e:
        b.load()
    assert e.value.hint == "agentsim models prepare tiny --precision q4_k_m"


def test_default_model_not_fetched(home: Path) -> None:
    b = create_backend("llama@q8_0")
    with pytest.raises(ModelError) as e:
        b.load()
    assert e.value.hint == "agentsim models prepare --precision q8_0"


def test_unknown_precision_is_refused_at_spec_time(tiny_gguf: Path) -> None:
    with pytest.raises(BackendError, match="no precision"):
        create_backend("llama:tiny@q3_k")


# ------------------------------------------------------------------------------------------
# bad files never reach llama.cpp; a file llama.cpp refuses is a BackendError


def test_truncated_file_is_a_model_error(tiny_gguf: Path, tmp_path: Path) -> None:
    p = tmp_path / "cut.gguf"
    p.write_bytes(tiny_gguf.read_bytes()[:300_000])
    with pytest.raises(ModelError, match="truncated"):
        create_backend(f"llama:{p}").load()


def test_not_a_gguf_is_a_model_error(tmp_path: Path) -> None:
    p = tmp_path / "weights.gguf"
    p.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(ModelError, match="not a GGUF"):
        create_backend(f"llama:{p}").load()


def test_load_failure_is_a_backend_error(tmp_path: Path) -> None:
    """A well-formed GGUF that llama.cpp cannot build a model from (a tensor is missing)."""
    import gguf
    import numpy as np

    from tests.tiny_models import tiny_vocab

    p = tmp_path / "incomplete.gguf"
    w = gguf.GGUFWriter(str(p), "llama")
    tokens, types, merges = tiny_vocab()
    for k, v in (("embedding_length", 64), ("block_count", 1), ("feed_forward_length", 128), ("head_count", 4), ("context_length", 128)):
        getattr(w, f"add_{k}")(v)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_tensor("token_embd.weight", np.zeros((len(tokens), 64), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    models.check_gguf(p)  # passes the file checks
    with pytest.raises(BackendError, match="llama.cpp could not load"):
        create_backend(f"llama:{p}").load()


# ------------------------------------------------------------------------------------------
# through the engine


def test_engine_run_records_llama_figures(tiny_gguf: Path, tmp_path: Path) -> None:
    import agentsim

    res = agentsim.simulate(["chain-linear"], [f"llama:{tiny_gguf},n_threads=1"], instances=2, seed=1, mode="oracle",
                            db=str(tmp_path / "runs.db"))
    res.raise_for_failures()
    run = res.runs[0]
    assert run.model_sha256 == models.sha256_file(tiny_gguf)
    assert run.precision == "f32" and run.precision_mode == "native"
    hops = res.to_pandas().hops
    assert len(hops) == 6
    assert hops["prompt_tokens"].notna().all() and hops["completion_tokens"].notna().all()
    assert hops["prefill_s"].notna().all() and hops["decode_s"].notna().all() and hops["ttft_s"].notna().all()
    # hops after the first share the system prompt (price list) through the KV cache
    assert (hops["cached_tokens"].iloc[1:] > 20).all()
    # the grammar holds answers to integers: no parse errors (the random tiny model may run out
    # of tokens inside an integer: that is its own outcome, truncated, not a parse error)
    assert set(hops["error_kind"]) <= {"none", "local", "truncated"}
    assert (hops.loc[hops["error_kind"] == "truncated", "stop_reason"] == "length").all()


def test_engine_records_generation_failures_as_backend_errors(tiny_gguf: Path, tmp_path: Path) -> None:
    import agentsim

    res = agentsim.simulate(["chain-linear"], [f"llama:{tiny_gguf},n_threads=1,n_ctx=48"], instances=1, seed=1, mode="oracle",
                            db=str(tmp_path / "runs.db"))
    hops = res.to_pandas().hops
    assert len(hops) == 3
    assert set(hops["error_kind"]) == {"backend"}
    assert hops["error_detail"].str.contains("exceeds n_ctx").all()


def test_show_prints_whole_token_counts_and_the_model_size(tiny_gguf: Path, tmp_path: Path, capsys) -> None:
    """Was: 'tokens (prompt/completion) 2912.000 / 52.000' and no model size in show --json."""
    import json
    import re

    from agentsim.cli import main

    db = str(tmp_path / "r.db")
    assert main(["run", "chain-linear", "-b", f"llama:{tiny_gguf},n_threads=1", "-n", "1", "--db", db]) == 0
    capsys.readouterr()
    assert main(["show", "1", "--db", db]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "tokens (prompt/completion)" in x)
    assert re.search(r"\d+ / \d+", line) and ".0" not in line, line
    assert main(["show", "1", "--db", db, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["model_bytes"] == tiny_gguf.stat().st_size and s["model_params"] > 0
