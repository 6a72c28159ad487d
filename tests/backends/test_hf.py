"""The ``hf`` backend on tiny models the tests build: the self-written GGUF (tests/tiny_models.py)
and a transformers model folder made here from a LlamaConfig with an offline tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.backends.base import GenerationRequest, create_backend
from agentsim.errors import BackendError, HardwareError, ModelError
from tests.helpers import loaded_backend

pytestmark = [pytest.mark.hf, pytest.mark.shared_home]  # one model cache per module: the GGUF is converted once

PROMPTS = [
    ("what is the sum of the apples?", "you are a helpful assistant."),
    ("the city is in the country. answer with the number only.", None),
    ("there are three apples and the total is", "answer with the number only."),
]


def _req(i: int = 0, **kw: object) -> GenerationRequest:
    prompt, system = PROMPTS[i]
    kw.setdefault("max_tokens", 12)
    return GenerationRequest(prompt=prompt, system=system, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# generation on the tiny GGUF



def _llama_greedy(llm, ids: list[int], n: int) -> list[int]:
    """llama-cpp-python's greedy continuation of ``ids``: at most ``n`` ids, up to end of sequence."""
    out: list[int] = []
    for t in llm.generate(ids, top_k=1, temp=0.0, reset=True):
        out.append(int(t))
        if len(out) >= n or t == llm.token_eos():
            break
    return out

def test_greedy_is_deterministic_and_timed(tiny_gguf: Path, home: Path) -> None:
    b = loaded_backend(f"hf:{tiny_gguf}@f32")
    c1 = b.generate(_req(0))
    c2 = b.generate(_req(0))
    assert c1.extra["token_ids"] == c2.extra["token_ids"] and c1.text == c2.text
    assert c1.completion_tokens == 12 and c1.finish_reason == "length"
    assert c1.prompt_tokens and c1.prompt_tokens > 10
    assert c1.prefill_s is not None and c1.prefill_s > 0 and c1.ttft_s == c1.prefill_s
    assert c1.decode_s is not None and c1.decode_s > 0
    assert c1.peak_mem_bytes and c1.peak_mem_bytes > 10_000_000
    assert "RSS" in c1.extra["peak_mem_source"]
    info = b.info()
    assert (info.precision, info.precision_mode, info.device) == ("f32", "native", "cpu")
    assert info.model_sha256 and len(info.model_sha256) == 64
    assert info.source_precision == "ALL_F32"
    b.close()


def test_chat_template_with_system_prompt(tiny_gguf: Path, home: Path) -> None:
    b = loaded_backend(f"hf:{tiny_gguf}@f32")
    tok = b.tokenizer
    prompt, system = PROMPTS[0]
    text = tok.apply_chat_template(
        [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        add_generation_prompt=True, tokenize=False,
    )
    assert text.startswith("<|im_start|>system\n" + system)
    c = b.generate(_req(0, max_tokens=1))
    assert c.extra["chat_template"] is True
    assert c.prompt_tokens == len(tok(text, add_special_tokens=False)["input_ids"])
    without = b.generate(GenerationRequest(prompt=prompt, max_tokens=1))
    assert without.prompt_tokens is not None and without.prompt_tokens < c.prompt_tokens


def test_max_tokens_and_stop_sequences(tiny_gguf: Path, home: Path) -> None:
    b = loaded_backend(f"hf:{tiny_gguf}@f32")
    full = b.generate(_req(1, max_tokens=16))
    assert b.generate(_req(1, max_tokens=3)).completion_tokens == 3
    assert b.generate(_req(1, max_tokens=3)).extra["token_ids"] == full.extra["token_ids"][:3]
    # a stop string taken from the middle of the unconstrained output
    text = full.text
    assert len(text) >= 6
    stop = text[4:6]
    cut = text.find(stop)
    c = b.generate(_req(1, max_tokens=16, stop=[stop, "never-appears"]))
    assert c.finish_reason == "stop"
    assert c.text == text[:cut]
    assert c.completion_tokens is not None and c.completion_tokens < 16


def test_end_of_sequence_token_stops(tiny_gguf: Path, home: Path) -> None:
    b = loaded_backend(f"hf:{tiny_gguf}@f32")
    ids = b.generate(_req(2, max_tokens=10)).extra["token_ids"]
    target = ids[3]
    b.model.generation_config.eos_token_id = target  # make the 4th token an end-of-sequence
    c = b.generate(_req(2, max_tokens=10))
    assert c.finish_reason == "eos"  # the end of turn, told apart from a stop sequence (issue 27)
    assert c.extra["token_ids"] == ids[: ids.index(target) + 1]
    assert c.text == b.tokenizer.decode(ids[: ids.index(target)], skip_special_tokens=True)


def test_grammar_is_ignored_and_said_so(tiny_gguf: Path, home: Path) -> None:
    b = loaded_backend(f"hf:{tiny_gguf}@f32")
    assert type(b).SUPPORTS_GRAMMAR is False
    plain = b.generate(_req(0, max_tokens=4))
    constrained = b.generate(_req(0, max_tokens=4, grammar='root ::= "yes" | "no"'))
    assert constrained.extra["token_ids"] == plain.extra["token_ids"]
    assert "ignored" in constrained.extra["grammar"]
    assert "not supported" in b.info().extra["grammar"]


def test_gguf_cache_second_load_is_a_hit(tiny_gguf_f16: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSIM_HOME", str(tmp_path / "home"))
    first = loaded_backend(f"hf:{tiny_gguf_f16}@f32")
    assert first.info().extra["cache"] == "miss (written)"
    ids = first.generate(_req(0)).extra["token_ids"]
    second = loaded_backend(f"hf:{tiny_gguf_f16}@f32")
    assert second.info().extra["cache"] == "hit"
    assert second.generate(_req(0)).extra["token_ids"] == ids
    assert second.info().model_sha256 == first.info().model_sha256
    cached = next((tmp_path / "home" / "cache" / "hf").glob("gguf-*"))
    assert json.loads((cached / "agentsim-source.json").read_text())["sha256"] == first.info().model_sha256
    # the cache entry is an ordinary model folder: hf:FOLDER gives the same tokens
    folder = loaded_backend(f"hf:{cached}@f32")
    assert folder.generate(_req(0)).extra["token_ids"] == ids
    off = loaded_backend(f"hf:{tiny_gguf_f16}@f32,cache=false")
    assert off.info().extra["cache"] == "off"


# --------------------------------------------------------------------------------------------
# precisions


@pytest.mark.parametrize("precision", ["bf16", "f16", "int8", "int4", "mxfp4", "nvfp4"])
def test_every_precision_generates(tiny_gguf: Path, home: Path, precision: str) -> None:
    b = loaded_backend(f"hf:{tiny_gguf}@{precision}")
    c = b.generate(_req(0, max_tokens=4))
    assert c.completion_tokens == 4 and len(c.extra["token_ids"]) == 4
    info = b.info()
    quantized = precision in ("int8", "int4", "mxfp4", "nvfp4")
    assert info.precision == precision
    assert info.precision_mode == ("emulated" if quantized else "native")
    assert ("agentsim.quant" in (info.kernel or "")) is quantized
    assert info.extra["quantized_linears"] == (14 if quantized else 0)  # 2 layers x 7 projections
    assert info.extra["compute_dtype"] == ("bf16" if quantized else precision)


@pytest.mark.parametrize("precision", ["int8", "int4", "mxfp4", "nvfp4"])
def test_quantized_weights_are_exactly_the_quantizers(tiny_gguf: Path, home: Path, precision: str) -> None:
    import torch

    from agentsim import quant

    ref = loaded_backend(f"hf:{tiny_gguf}@f32").model
    q = loaded_backend(f"hf:{tiny_gguf}@{precision},dtype=f32").model
    for name in ("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"):
        w = ref.get_submodule(name).weight
        assert torch.equal(q.get_submodule(name).weight, quant.fake_quantize(w, precision))
        assert not torch.equal(q.get_submodule(name).weight, w)
    assert torch.equal(q.lm_head.weight, ref.lm_head.weight)
    assert torch.equal(q.model.embed_tokens.weight, ref.model.embed_tokens.weight)


def test_int_group_option(tiny_gguf: Path, home: Path) -> None:
    import torch

    from agentsim import quant

    ref = loaded_backend(f"hf:{tiny_gguf}@f32").model.model.layers[0].mlp.up_proj.weight
    b = loaded_backend(f"hf:{tiny_gguf}@int4,dtype=f32,group=64")
    assert torch.equal(b.model.model.layers[0].mlp.up_proj.weight, quant.fake_quantize(ref, "int4", 64))
    assert "block 64" in (b.info().kernel or "")


# --------------------------------------------------------------------------------------------
# the other families agree: llama.cpp on the same GGUF


@pytest.mark.llama
@pytest.mark.parametrize("llama_file", ["tiny_gguf", "tiny_gguf_f16"])
def test_hf_f32_agrees_with_llama_cpp(tiny_gguf: Path, home: Path, llama_file: str, request: pytest.FixtureRequest) -> None:
    """Greedy hf@f32 and llama.cpp (F32 and F16 files) give the same first 24 token ids."""
    import llama_cpp

    n = 24
    b = loaded_backend(f"hf:{tiny_gguf}@f32")
    llm = llama_cpp.Llama(model_path=str(request.getfixturevalue(llama_file)), n_ctx=256, seed=0,
                          n_threads=1, verbose=False)
    for i in range(len(PROMPTS)):
        req = _req(i, max_tokens=n)
        ids, _ = b._prompt_ids(req)
        # the two tokenizers agree on the templated prompt ...
        text = b.tokenizer.decode(ids)
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids
        # ... and the two runtimes on the greedy continuation
        ours = b.generate(req).extra["token_ids"]
        theirs = _llama_greedy(llm, ids, len(ours))
        assert len(ours) == n
        assert ours == theirs


# --------------------------------------------------------------------------------------------
# a model folder built here (no chat template: the raw prompt path)


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("hf_folder")
    words = ["<unk>", "<s>", "</s>"] + sorted(set(" ".join(p for p, _ in PROMPTS).replace("?", " ?").replace(".", " .").split()))
    words += [f"w{i}" for i in range(64 - len(words))]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tok.save_pretrained(d)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    model.save_pretrained(d)
    return d


def test_model_folder_without_chat_template(hf_folder: Path, home: Path) -> None:
    b = loaded_backend(f"hf:{hf_folder}@f32")
    c = b.generate(GenerationRequest(prompt="the answer is the number", max_tokens=6))
    again = b.generate(GenerationRequest(prompt="the answer is the number", max_tokens=6))
    assert c.extra["chat_template"] is False
    assert c.extra["token_ids"] == again.extra["token_ids"]
    assert c.prompt_tokens == len(b.tokenizer("the answer is the number")["input_ids"])
    info = b.info()
    assert info.extra["cache"] == "n/a (model folder)" and info.model_sha256
    assert info.source_precision == "float32"
    q = loaded_backend(f"hf:{hf_folder}@mxfp4")
    assert q.generate(GenerationRequest(prompt="the answer", max_tokens=3)).completion_tokens == 3


# --------------------------------------------------------------------------------------------
# the run is stored with how its precision was realised


def test_engine_stores_precision_mode(tiny_gguf: Path, home: Path, tmp_path: Path) -> None:
    from agentsim.launch import execute
    from agentsim.scenario import resolve_scenario
    from agentsim.store import Store

    store = Store(tmp_path / "runs.db")
    runs, failures = execute([resolve_scenario("chain-linear")], [f"hf:{tiny_gguf}@nvfp4"], store=store, instances=1)
    assert not failures
    (run,) = runs
    assert run.precision == "nvfp4" and run.precision_mode == "emulated"
    assert "agentsim.quant" in (run.kernel or "")
    # the scale axis: the size of the source, counted from the GGUF header as the llama backend does
    from agentsim.models.gguf_header import check_gguf

    assert run.model_params == check_gguf(tiny_gguf).n_params > 0
    assert run.model_bytes == tiny_gguf.stat().st_size
    llm_hops = [h for h in store.hops(run.id) if h.kind == "llm"]
    assert llm_hops and all(h.prompt_tokens and h.ttft_s and h.peak_mem_bytes for h in llm_hops)


# --------------------------------------------------------------------------------------------
# errors: clear, before any model is loaded


def test_native_fp4_refused_without_blackwell() -> None:
    from agentsim.hardware import detect

    if detect("auto").capability and detect("auto").capability >= (10, 0):
        pytest.skip("this machine has a Blackwell GPU: native FP4 is allowed here")
    for precision in ("nvfp4", "mxfp4"):
        with pytest.raises(HardwareError) as ei:
            create_backend(f"hf:any-model@{precision},native=true")
        msg = str(ei.value)
        assert "compute capability >= 10.0" in msg and "Blackwell" in msg
        assert "emulated" in msg and f"@{precision}" in msg


def test_native_fp4_refusal_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agentsim.cli import main
    from agentsim.hardware import detect

    if detect("auto").capability and detect("auto").capability >= (10, 0):
        pytest.skip("this machine has a Blackwell GPU")
    code = main(["run", "chain-linear", "-b", "hf:some-model@nvfp4,native=true", "-n", "1",
                 "--db", str(tmp_path / "x.db")])
    printed = capsys.readouterr()
    assert code != 0
    assert "compute capability >= 10.0" in printed.err and "emulated" in printed.err
    assert "Traceback" not in printed.err + printed.out


@pytest.mark.parametrize(
    ("spec", "error", "words"),
    [
        ("hf@f32", ModelError, "not fetched yet"),  # the catalog's default model, in an empty home
        ("hf:/nonexistent/model.gguf@f32", ModelError, "does not exist"),
        ("hf:x@int4,dtype=f8", BackendError, "dtype"),
        ("hf:x@bf16,dtype=f32", BackendError, "contradicts"),
        ("hf:x@bf16,native=true", BackendError, "FP4 precisions only"),  # int4 has a native kernel now
        ("hf:x@nvfp4,native=true,device=cpu", BackendError, "not on device=cpu"),
        ("hf:x@mxfp4,group=64", BackendError, "int8/int4 only"),
        ("hf:x@int4,group=7", BackendError, "even"),
        ("hf:x@q4_k_m", BackendError, "no precision"),
        ("hf:x@f32,device=tpu", HardwareError, "unknown device"),
        ("hf:no-such-catalog-model@f32", ModelError, "no-such-catalog-model"),
    ],
)
def test_user_errors_are_clear(spec: str, error: type, words: str, home: Path) -> None:
    with pytest.raises(error, match=words):
        b = create_backend(spec)
        b.load()


def test_bad_model_files(tmp_path: Path, home: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all" * 10)
    with pytest.raises(ModelError, match="cannot load"):
        loaded_backend(f"hf:{junk}@f32,cache=false")
    txt = tmp_path / "weights.txt"
    txt.write_text("x")
    with pytest.raises(ModelError, match="not a .gguf"):
        loaded_backend(f"hf:{txt}@f32")
    empty = tmp_path / "folder"
    empty.mkdir()
    with pytest.raises(ModelError, match="config.json"):
        loaded_backend(f"hf:{empty}@f32")


def test_cuda_asked_without_gpu() -> None:
    from agentsim.hardware import detect

    if detect("auto").kind == "cuda":
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(HardwareError, match="no CUDA GPU"):
        create_backend("hf:x@bf16,device=cuda")


# --------------------------------------------------------------------------------------------
# on a CUDA machine


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["f32", "bf16", "nvfp4"])
def test_cuda_generation(tiny_gguf: Path, home: Path, precision: str) -> None:
    cpu = loaded_backend(f"hf:{tiny_gguf}@f32,device=cpu").generate(_req(0, max_tokens=8)).extra["token_ids"]
    b = loaded_backend(f"hf:{tiny_gguf}@{precision},device=cuda")
    c = b.generate(_req(0, max_tokens=8))
    assert b.info().device == "cuda"
    assert c.extra["peak_mem_source"] == "torch.cuda.max_memory_allocated" and c.peak_mem_bytes > 0
    assert c.completion_tokens == 8
    if precision == "f32":  # same argmax path; TF32 is off by default for matmuls in torch
        assert c.extra["token_ids"][:4] == cpu[:4]


@pytest.mark.gpu
def test_cuda_native_fp4_rule(tiny_gguf: Path, home: Path) -> None:
    from agentsim.hardware import detect

    acc = detect("cuda")
    if acc.capability is not None and acc.capability < (10, 0):
        with pytest.raises(HardwareError, match=rf"compute capability {acc.capability_str}"):
            create_backend(f"hf:{tiny_gguf}@nvfp4,native=true")
        return
    pytest.importorskip("torchao")
    b = loaded_backend(f"hf:{tiny_gguf}@nvfp4,native=true,device=cuda")
    assert b.info().precision_mode == "native" and "torchao" in (b.info().kernel or "")
    assert b.generate(_req(0, max_tokens=4)).completion_tokens == 4


# --------------------------------------------------------------------------------------------
# the catalog's default model (slow: a 1 GB F16 file, converted once into the hf cache)


@pytest.mark.slow
@pytest.mark.llama
def test_default_model_hf_f32_agrees_with_llama_f16(user_model_cache: None) -> None:
    """Greedy hf@f32 and llama.cpp@f16 on the same F16 rung agree on the first 32 tokens."""
    import llama_cpp

    from agentsim import models

    try:
        path = models.resolve(None, "f16").path
    except ModelError as exc:
        pytest.skip(f"default model not prepared: {exc}")
    b = loaded_backend("hf@f32")
    assert b.info().model_path == str(path)
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=1024, seed=0, verbose=False)
    req = GenerationRequest(prompt="What is 17 + 25? Answer with the number only.",
                            system="You are a helpful assistant.", max_tokens=32)
    ids, _ = b._prompt_ids(req)
    ours = b.generate(req).extra["token_ids"]
    theirs = _llama_greedy(llm, ids, len(ours))
    assert ours == theirs
