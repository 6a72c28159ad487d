"""The hf backend's fp8, bitsandbytes (nf4, fp4-bnb, int8-bnb) and torchao (int8-wo, int4-wo)
precisions on the tiny self-written GGUF (tests/tiny_models.py): real bitsandbytes and torchao
kernels on this CPU; fakes only at the boundaries we cannot reach (a missing library, a
bitsandbytes without a native library)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agentsim.backends.base import GenerationRequest, create_backend
from agentsim.errors import BackendError, HardwareError, MissingDependencyError
from tests.helpers import loaded_backend  # noqa: E402

pytestmark = [pytest.mark.hf, pytest.mark.shared_home]  # one model cache per module: the GGUF is converted once
torch = pytest.importorskip("torch")

REQ = GenerationRequest(prompt="what is the sum of the apples?", system="you are a helpful assistant.", max_tokens=4)




def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


# --------------------------------------------------------------------------------------------
# every new precision loads, generates, and is labelled with what ran


@pytest.mark.parametrize(
    ("options", "mode", "kernel"),
    [
        ("fp8", "emulated", "agentsim.quant fake-quantize (fp8, e4m3"),
        ("fp8,format=e5m2", "emulated", "agentsim.quant fake-quantize (fp8, e5m2"),
        ("nf4", "native", "bitsandbytes {bitsandbytes} NF4 (blocks of 64)"),
        ("nf4,double_quant=true", "native", "bitsandbytes {bitsandbytes} NF4 (blocks of 64, double quant)"),
        ("fp4-bnb", "native", "bitsandbytes {bitsandbytes} FP4"),
        ("int8-bnb", "native", "bitsandbytes {bitsandbytes} LLM.int8() (threshold 6.0)"),
        ("int8-wo", "native", "torchao {torchao} Int8WeightOnlyConfig(PerRow)"),
        ("int8-wo,group=32", "native", "torchao {torchao} Int8WeightOnlyConfig(PerGroup(32))"),
        ("int4-wo", "native", "torchao {torchao} PrototypeInt4WeightOnlyConfig(group 32)"),
        ("int4-wo,group=64", "native", "torchao {torchao} PrototypeInt4WeightOnlyConfig(group 64)"),
    ],
)
def test_every_new_precision_generates(tiny_gguf: Path, home: Path, options: str, mode: str, kernel: str) -> None:
    b = loaded_backend(f"hf:{tiny_gguf}@{options}")
    c = b.generate(REQ)
    assert c.completion_tokens == 4 and len(c.extra["token_ids"]) == 4
    again = b.generate(REQ)
    assert again.extra["token_ids"] == c.extra["token_ids"]  # greedy on real kernels is deterministic
    info = b.info()
    precision = options.split(",")[0]
    assert (info.precision, info.precision_mode, info.device) == (precision, mode, "cpu")
    want = kernel.format(bitsandbytes=_version("bitsandbytes"), torchao=_version("torchao"))
    assert info.kernel and info.kernel.startswith(want), info.kernel
    assert info.extra["quantized_linears"] == 14  # 2 layers x 7 projections; lm_head and embeddings kept
    if mode == "native":
        lib = "bitsandbytes" if "bnb" in precision or precision == "nf4" else "torchao"
        assert info.extra[lib] == _version(lib) and lib in info.extra["quantized"]
    b.close()


def test_bnb_4bit_cpu_kernel_is_the_fused_one_where_the_cpu_has_avx512_bf16(tiny_gguf: Path, home: Path) -> None:
    from bitsandbytes.functional import has_avx512bf16

    kernel = loaded_backend(f"hf:{tiny_gguf}@nf4").info().kernel or ""
    if has_avx512bf16():
        assert "fused C++ 4-bit GEMM in bf16 (AVX512-BF16" in kernel
    else:
        assert "C++ dequantize_4bit" in kernel


# --------------------------------------------------------------------------------------------
# the weights are what the format stores


@pytest.mark.parametrize(("options", "scheme", "dtype"), [("fp8", "fp8", "float8_e4m3fn"),
                                                          ("fp8,format=e5m2", "fp8_e5m2", "float8_e5m2")])
def test_fp8_weights_bit_exact(tiny_gguf: Path, home: Path, options: str, scheme: str, dtype: str) -> None:
    """hf@fp8 weights are agentsim.quant's FP8, and both equal the ml_dtypes reference bit for bit."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    from agentsim import quant

    fmax = {"fp8": 448.0, "fp8_e5m2": 57344.0}[scheme]
    ref = loaded_backend(f"hf:{tiny_gguf}@f32").model
    q = loaded_backend(f"hf:{tiny_gguf}@{options},dtype=f32").model
    for name in ("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"):
        w = ref.get_submodule(name).weight.detach()
        got = q.get_submodule(name).weight.detach()
        assert torch.equal(got, quant.fake_quantize(w, scheme))
        wn = w.numpy()
        scale = (np.abs(wn).max(axis=-1, keepdims=True) / np.float32(fmax)).astype(np.float32)
        expect = np.clip(wn / scale, -fmax, fmax).astype(getattr(ml_dtypes, dtype)).astype(np.float32) * scale
        assert np.array_equal(got.numpy().view(np.uint32), expect.view(np.uint32))
        assert not torch.equal(got, w)
    assert torch.equal(q.lm_head.weight, ref.lm_head.weight)


def test_bnb_weights_are_bitsandbytes_quantization(tiny_gguf: Path, home: Path) -> None:
    import bitsandbytes as bnb
    import bitsandbytes.functional as F

    ref = loaded_backend(f"hf:{tiny_gguf}@bf16").model
    for options, quant_type in (("nf4", "nf4"), ("fp4-bnb", "fp4")):
        m = loaded_backend(f"hf:{tiny_gguf}@{options}").model  # not generated with: not repacked for the CPU yet
        layer = m.get_submodule("model.layers.0.mlp.up_proj")
        assert isinstance(layer, bnb.nn.Linear4bit) and layer.weight.quant_state.quant_type == quant_type
        w = ref.get_submodule("model.layers.0.mlp.up_proj").weight.detach()
        packed, state = F.quantize_4bit(w, quant_type=quant_type, blocksize=64)
        assert torch.equal(F.dequantize_4bit(layer.weight.data, layer.weight.quant_state),
                           F.dequantize_4bit(packed, state))
        assert type(m.lm_head) is torch.nn.Linear and type(m.model.embed_tokens) is torch.nn.Embedding
    dq = loaded_backend(f"hf:{tiny_gguf}@nf4,double_quant=true").model.get_submodule("model.layers.0.mlp.up_proj")
    assert dq.weight.quant_state.nested  # the block scales are quantized too
    i8 = loaded_backend(f"hf:{tiny_gguf}@int8-bnb").model.get_submodule("model.layers.1.self_attn.o_proj")
    assert isinstance(i8, bnb.nn.Linear8bitLt) and i8.weight.dtype == torch.int8


def test_torchao_weights_are_packed_tensors(tiny_gguf: Path, home: Path) -> None:
    from torchao.prototype.quantization.int4 import Int4OpaqueTensor
    from torchao.quantization.quantize_.workflows.int8.int8_tensor import Int8Tensor

    ref = loaded_backend(f"hf:{tiny_gguf}@bf16").model.get_submodule("model.layers.0.self_attn.q_proj").weight.detach()
    w8 = loaded_backend(f"hf:{tiny_gguf}@int8-wo").model.get_submodule("model.layers.0.self_attn.q_proj").weight
    assert isinstance(w8, Int8Tensor) and w8.qdata.dtype == torch.int8
    err8 = (w8.dequantize().float() - ref.float()).abs().max()
    w4 = loaded_backend(f"hf:{tiny_gguf}@int4-wo").model.get_submodule("model.layers.0.self_attn.q_proj").weight
    assert isinstance(w4, Int4OpaqueTensor)
    x = torch.randn(1, ref.shape[1], dtype=torch.bfloat16, generator=torch.Generator().manual_seed(0))
    y4 = torch.nn.functional.linear(x, w4).float()
    err4 = (y4 - torch.nn.functional.linear(x, ref).float()).abs().max()
    assert 0 < err8 < 0.05 and 0 < err4 < 1.0  # int8 finer than int4, neither exact


def test_emulated_and_real_kernel_at_one_precision(tiny_gguf: Path, home: Path) -> None:
    """int8 (agentsim's rounding, bf16 matmul) and int8-wo (torchao's int8 kernel) both stay close
    to bf16's next-token logits: the comparison the two realisations exist for."""
    logits = {}
    for p in ("bf16", "int8", "int8-wo"):
        b = loaded_backend(f"hf:{tiny_gguf}@{p}")
        ids, _ = b._prompt_ids(REQ)
        with torch.inference_mode():
            logits[p] = b.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    scale = logits["bf16"].abs().max()
    for p in ("int8", "int8-wo"):
        diff = (logits[p] - logits["bf16"]).abs().max() / scale
        assert 0 < diff < 0.05, (p, float(diff))


# --------------------------------------------------------------------------------------------
# loading paths: a model folder, a GGUF without the cache


def test_bnb_from_a_gguf_without_the_cache(tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSIM_HOME", str(tmp_path / "home"))
    b = loaded_backend(f"hf:{tiny_gguf}@nf4,cache=false")
    assert b.info().extra["cache"] == "off" and b.generate(REQ).completion_tokens == 4
    assert not (tmp_path / "home" / "cache" / "hf").exists() or not any((tmp_path / "home" / "cache" / "hf").iterdir())


def test_bnb_from_a_model_folder(home: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>", "the", "answer", "is"] + [f"w{i}" for i in range(58)]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>", eos_token="</s>").save_pretrained(tmp_path)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                 num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=2,
                                 tie_word_embeddings=False)).save_pretrained(tmp_path)
    for p in ("int8-bnb", "int4-wo"):
        b = loaded_backend(f"hf:{tmp_path}@{p}")
        assert b.generate(GenerationRequest(prompt="the answer is", max_tokens=3)).completion_tokens == 3
        assert b.info().extra["quantized_linears"] == 7 and b.info().extra["cache"] == "n/a (model folder)"


@pytest.mark.slow  # two models through the engine: ~8 s on a loaded 2-core machine
def test_engine_stores_library_precisions_as_native(tiny_gguf: Path, home: Path, tmp_path: Path) -> None:
    from agentsim.launch import execute
    from agentsim.scenario import resolve_scenario
    from agentsim.store import Store

    store = Store(tmp_path / "runs.db")
    runs, failures = execute([resolve_scenario("chain-linear")], [f"hf:{tiny_gguf}@nf4", f"hf:{tiny_gguf}@int4-wo"],
                             store=store, instances=1)
    assert not failures
    by = {r.precision: r for r in runs}
    assert by["nf4"].precision_mode == "native" and (by["nf4"].kernel or "").startswith("bitsandbytes ")
    assert by["int4-wo"].precision_mode == "native" and (by["int4-wo"].kernel or "").startswith("torchao ")
    for r in runs:
        hops = [h for h in store.hops(r.id) if h.kind == "llm"]
        assert hops and all(h.completion_tokens for h in hops)


# --------------------------------------------------------------------------------------------
# refusals: clear, before any model is loaded


def _has_fp8_gpu() -> bool:
    from agentsim.hardware import detect

    cap = detect("auto").capability
    return cap is not None and cap >= (8, 9)


def test_native_fp8_refused_without_fp8_tensor_cores() -> None:
    if _has_fp8_gpu():
        pytest.skip("this machine has FP8 tensor cores: native fp8 is allowed here")
    with pytest.raises(HardwareError) as ei:
        create_backend("hf:any-model@fp8,native=true")
    msg = str(ei.value)
    assert "compute capability >= 8.9" in msg and "FP8 tensor cores" in msg
    assert "emulated" in msg and "@fp8" in msg


@pytest.mark.slow  # a subprocess that imports torch: ~20 s on a loaded 2-core machine
def test_native_fp8_refusal_through_the_cli(tmp_path: Path) -> None:
    if _has_fp8_gpu():
        pytest.skip("this machine has FP8 tensor cores")
    proc = subprocess.run(
        [sys.executable, "-m", "agentsim.cli", "run", "chain-linear", "-b", "hf:some-model@fp8,native=true",
         "-n", "1", "--db", str(tmp_path / "x.db")],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 2, proc.stderr
    assert "compute capability >= 8.9" in proc.stderr and "emulated" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("spec", "error", "words"),
    [
        ("hf:x@fp8,native=true,device=cpu", BackendError, "FP8 tensor cores, not on device=cpu"),
        ("hf:x@fp8,format=e5m2,native=true", BackendError, "e5m2 is emulated only"),
        ("hf:x@int4,native=true,device=cpu", BackendError, "int4 weight-only kernel), not on device=cpu"),
        ("hf:x@fp8,format=e3m4", BackendError, "format='e3m4'"),
        ("hf:x@int8,format=e5m2", BackendError, "fp8 only"),
        ("hf:x@nf4,native=true", BackendError, "already runs natively"),
        ("hf:x@int8-bnb,double_quant=true", BackendError, "nf4/fp4-bnb only"),
        ("hf:x@nf4,group=32", BackendError, "int8/int4 only"),
        ("hf:x@int4-wo,group=48", BackendError, "32, 64 or 128"),
        ("hf:x@int4-bnb", BackendError, "no precision"),
    ],
)
def test_user_errors_are_clear(spec: str, error: type, words: str, home: Path) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        create_backend(spec)


def test_native_int4_needs_a_cuda_gpu(home: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(HardwareError, match=r"int4,native=true runs torch._weight_int4pack_mm on a CUDA GPU") as ei:
        create_backend("hf:x@int4,native=true")
    assert "@int4 (emulated)" in (ei.value.hint or "")


@pytest.mark.parametrize(("precision", "module"), [("nf4", "bitsandbytes"), ("int8-bnb", "bitsandbytes"),
                                                   ("int8-wo", "torchao"), ("int4-wo", "torchao")])
def test_missing_library_names_the_extra(precision: str, module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The library's import fails (as when it is not installed): a clear error naming the extra."""
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(MissingDependencyError) as ei:
        create_backend(f"hf:any-model@{precision}")
    assert module in str(ei.value) and "agentsim[quant]" in str(ei.value)
    assert ei.value.extra == "quant"


def test_bitsandbytes_without_a_native_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """bitsandbytes that loaded no native library for the machine (its own mock object): refused."""
    from bitsandbytes import cextension

    monkeypatch.setattr(cextension, "lib", cextension.ErrorHandlerMockBNBNativeLibrary("no library for this CPU"))
    with pytest.raises(HardwareError, match="has no kernels for this machine"):
        create_backend("hf:any-model@nf4")


# --------------------------------------------------------------------------------------------
# where the precisions are offered


def test_tui_launch_choices_offer_every_hf_precision() -> None:
    from agentsim.precision import BNB_PRECISIONS, HF_PRECISIONS, TORCHAO_PRECISIONS

    context = pytest.importorskip("agentsim.tui.context")
    got = context.hf_choices("m")
    assert [c.spec for c in got] == [f"hf:m@{p}" for p in HF_PRECISIONS]
    labels = {c.spec: c.label for c in got}
    assert labels["hf:m@nf4"].endswith("(bitsandbytes, native)") and labels["hf:m@fp8"].endswith("(emulated)")
    assert labels["hf:m@int4-wo"].endswith("(torchao, native)")
    bare = context.hf_choices("m", installed=lambda module: False)  # neither library installed
    assert not {c.spec.split("@")[1] for c in bare} & set(BNB_PRECISIONS + TORCHAO_PRECISIONS)
    assert "hf:m@fp8" in {c.spec for c in bare}


def test_backend_help_lists_the_precisions() -> None:
    from agentsim.backends.hf import HFBackend
    from agentsim.precision import HF_PRECISIONS, describe, precision_lines

    assert HFBackend.PRECISIONS == HF_PRECISIONS
    for p in ("fp8", "nf4", "fp4-bnb", "int8-bnb", "int8-wo", "int4-wo"):
        assert p in HFBackend.DESCRIPTION and describe(p)
    lines = precision_lines(["nf4", "int4-wo"])
    assert lines[0].startswith("nf4      bitsandbytes NF4") and lines[1].startswith("int4-wo  torchao int4")


# --------------------------------------------------------------------------------------------
# the kernel rules on a CUDA device (told from the library and a given accelerator: the GPU is
# the boundary this machine cannot reach, so the accelerator is constructed)


def _gpu(capability: tuple[int, int]):
    from agentsim.hardware import Accelerator

    return Accelerator(kind="cuda", name="NVIDIA H200", capability=capability, source="test")


def test_bitsandbytes_cpu_library_has_no_cuda_kernels() -> None:
    from bitsandbytes import cextension

    from agentsim.backends.hf_precisions import check_library

    if getattr(cextension.lib, "compiled_with_cuda", False):
        pytest.skip("this bitsandbytes loaded a CUDA library")
    with pytest.raises(HardwareError, match="not a CUDA one: no kernels for NVIDIA H200"):
        check_library("nf4", _gpu((9, 0)), compute="bf16")


def test_torchao_rules_on_cuda() -> None:
    from agentsim.backends.hf_precisions import check_library

    kernel = check_library("int4-wo", _gpu((9, 0)), compute="bf16", group=64)
    assert "Int4WeightOnlyConfig(group 64, tile_packed_to_4d)" in kernel and "NVIDIA H200" in kernel
    with pytest.raises(HardwareError, match=r"compute capability >= 8.0"):
        check_library("int4-wo", _gpu((7, 5)), compute="bf16")
    with pytest.raises(BackendError, match="bf16 only"):
        check_library("int4-wo", _gpu((9, 0)), compute="f16")
    fp8 = check_library("fp8", _gpu((9, 0)), compute="bf16", native_fp8=True)
    assert fp8.startswith("torchao ") and "FP8 tensor cores" in fp8 and "PerRow" in fp8
