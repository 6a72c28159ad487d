"""Every precision name agentsim knows, and how each can be realised: defined once, here.

A precision is always stored with its *realisation*:

- ``native``: computed by kernels that work in that format (llama.cpp's quantized dot products,
  bitsandbytes, torchao, FP4/FP8 tensor cores);
- ``emulated``: values rounded to the format and computed in a wider type (agentsim's own
  int8/int4/MXFP4/NVFP4/FP8 fake quantization in torch, FP4 on hardware without FP4 units);
- ``declared``: what a server says it runs (``openai`` backend); agentsim cannot verify it.

This module is a leaf: it imports nothing of agentsim's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "rung_bits",
    "REALISATIONS",
    "LLAMA_RUNGS",
    "LLAMA_PRECISIONS",
    "LLAMA_TRUE_SOURCE_RUNGS",
    "LLAMA_ALL_RUNGS",
    "ladder_rungs",
    "FP4",
    "FP8",
    "FP4_NATIVE_MIN_CAPABILITY",
    "FP8_NATIVE_MIN_CAPABILITY",
    "F16_MIN_CAPABILITY",
    "HF_DTYPES",
    "TORCH_DTYPES",
    "EMULATED_SCHEMES",
    "FP8_FORMATS",
    "QUANT_SCHEMES",
    "BNB_PRECISIONS",
    "BNB_4BIT",
    "TORCHAO_PRECISIONS",
    "LIBRARY_PRECISIONS",
    "HF_PRECISIONS",
    "NATIVE_OPTION_PRECISIONS",
    "Precision",
    "PRECISIONS",
    "describe",
    "bits",
    "precision_lines",
]

#: how a precision is realised (stored on every run as ``precision_mode``)
REALISATIONS: tuple[str, ...] = ("native", "emulated", "declared")

#: llama.cpp's precision ladder from a quantized source, top (baseline) first: its F16 rung is the
#: source dequantized, so a wider rung would hold no more information
LLAMA_RUNGS: tuple[str, ...] = ("f16", "q8_0", "q4_k_m", "q4_0", "mxfp4", "nvfp4")
#: the ladder from a true full-precision (F32) source, e.g. the lab models: every rung is made
#: from the F32 weights themselves, the F32 rung is the source
LLAMA_TRUE_SOURCE_RUNGS: tuple[str, ...] = ("f32", "f16", "bf16", "q8_0", "q4_k_m", "q4_0", "mxfp4", "nvfp4")
#: every rung name a llama model may have, in ladder order
LLAMA_ALL_RUNGS: tuple[str, ...] = LLAMA_TRUE_SOURCE_RUNGS
#: what a llama backend spec may ask for: a rung, or the file exactly as shipped
LLAMA_PRECISIONS: tuple[str, ...] = (*LLAMA_ALL_RUNGS, "source")

#: the 4-bit floating-point formats (E2M1 with block scales)
FP4: tuple[str, ...] = ("mxfp4", "nvfp4")
#: the 8-bit floating-point formats
FP8: tuple[str, ...] = ("fp8",)

#: FP4 tensor cores: Blackwell (sm_100, sm_120) and later
FP4_NATIVE_MIN_CAPABILITY: tuple[int, int] = (10, 0)
#: FP8 tensor cores: Ada (sm_89) and Hopper (sm_90) and later
FP8_NATIVE_MIN_CAPABILITY: tuple[int, int] = (8, 9)
#: native half-precision arithmetic on NVIDIA GPUs
F16_MIN_CAPABILITY: tuple[int, int] = (5, 3)

#: torch dtypes the hf backend computes in directly
HF_DTYPES: tuple[str, ...] = ("f32", "bf16", "f16")
#: the ``torch`` dtype attribute of each of :data:`HF_DTYPES`
TORCH_DTYPES: dict[str, str] = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}
#: weight formats agentsim emulates itself (agentsim.quant), also what the casting profiler times
EMULATED_SCHEMES: tuple[str, ...] = ("int8", "int4", "mxfp4", "nvfp4", "fp8")
#: the element formats of ``fp8`` (``fp8,format=e5m2``); the first is the default
FP8_FORMATS: tuple[str, ...] = ("e4m3", "e5m2")
#: every scheme agentsim.quant implements: the emulated precisions, and FP8 in its second format
QUANT_SCHEMES: tuple[str, ...] = (*EMULATED_SCHEMES, "fp8_e5m2")
#: bitsandbytes' 4-bit formats (``double_quant=true`` quantizes their scales too)
BNB_4BIT: tuple[str, ...] = ("nf4", "fp4-bnb")
#: bitsandbytes precisions, through transformers' BitsAndBytesConfig (always ``native``)
BNB_PRECISIONS: tuple[str, ...] = (*BNB_4BIT, "int8-bnb")
#: torchao weight-only precisions: real packed weights and kernels (always ``native``)
TORCHAO_PRECISIONS: tuple[str, ...] = ("int8-wo", "int4-wo")
#: precisions a quantization library realises for the hf backend (never emulated)
LIBRARY_PRECISIONS: tuple[str, ...] = (*BNB_PRECISIONS, *TORCHAO_PRECISIONS)
#: everything the hf backend offers, in the order help and the TUI list them
HF_PRECISIONS: tuple[str, ...] = (*HF_DTYPES, *EMULATED_SCHEMES, *LIBRARY_PRECISIONS)
#: the precisions whose ``native=true`` asks for tensor-core kernels (FP4: Blackwell; FP8: Ada/Hopper;
#: int8: W8A8 through torch._int_mm on a CUDA GPU; int4: weight-only through torch._weight_int4pack_mm
#: on a CUDA GPU, torchao's int4-wo format without torchao)
NATIVE_OPTION_PRECISIONS: tuple[str, ...] = (*FP4, *FP8, "int8", "int4")


@dataclass(frozen=True)
class Precision:
    """One precision: its nominal bits per weight and a one-line description."""

    name: str
    bits: float
    description: str


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("f32", 32, "IEEE float32"),
        Precision("bf16", 16, "bfloat16"),
        Precision("f16", 16, "IEEE float16"),
        Precision("fp8", 8, "FP8 E4M3 (or E5M2, format=e5m2) with per-output-channel float32 scales"),
        Precision("int8-bnb", 8, "bitsandbytes LLM.int8(): int8 rows, outlier columns (|x| > 6) in 16-bit"),
        Precision("int8-wo", 8, "torchao int8 weight-only: int8 weights with one scale per output channel"),
        Precision("q8_0", 8.5, "llama.cpp Q8_0: int8 in blocks of 32 with an f16 scale"),
        Precision("int8", 8, "int8 in blocks of 32 with a float scale"),
        Precision("q4_k_m", 4.85, "llama.cpp Q4_K_M: 4-bit k-quants, some tensors at 6 bits"),
        Precision("q4_0", 4.5, "llama.cpp Q4_0: 4-bit in blocks of 32 with an f16 scale"),
        Precision("int4", 4, "int4 in blocks of 32 with a float scale"),
        Precision("int4-wo", 4.5, "torchao int4 weight-only: asymmetric int4 in groups of 32, bf16 scale and zero"),
        Precision("nf4", 4.5, "bitsandbytes NF4: 4-bit NormalFloat in blocks of 64 with a float32 absmax"),
        Precision("fp4-bnb", 4.5, "bitsandbytes FP4: E2M1 in blocks of 64 with a float32 absmax"),
        Precision("mxfp4", 4.25, "OCP MXFP4: E2M1 in blocks of 32 with a power-of-two (E8M0) scale"),
        Precision("nvfp4", 4.5, "NVFP4: E2M1 in blocks of 16 with an FP8 (E4M3) scale"),
        Precision("source", 0, "the model file exactly as shipped"),
    )
}


def ladder_rungs(source_precision: str | None) -> tuple[str, ...]:
    """The rungs a llama model's ladder has: all of :data:`LLAMA_TRUE_SOURCE_RUNGS` from an F32
    source, :data:`LLAMA_RUNGS` from anything else (a 16-bit or quantized source)."""
    return LLAMA_TRUE_SOURCE_RUNGS if (source_precision or "").lower() in ("f32", "all_f32") else LLAMA_RUNGS


def describe(name: str) -> str:
    """A one-line description of a precision name ('' for one agentsim does not know)."""
    p = PRECISIONS.get(name)
    return p.description if p else ""


def bits(name: str) -> float | None:
    """Nominal bits per weight (None for unknown names and ``source``)."""
    p = PRECISIONS.get(name)
    return p.bits if p and p.bits else None


def rung_bits(name: str | None) -> float:
    """A precision's place in the top-rung order: its bits, ``-inf`` for a name without nominal
    bits (unknown, ``source``, None): the one rule that the reference run (the top rung: most
    bits, ties by the lowest run id) of the verdicts and of the fidelity pass is chosen by."""
    b = bits(name) if name else None
    return b if b is not None else -math.inf


def precision_lines(names: tuple[str, ...] | list[str]) -> list[str]:
    """``"name  description"`` lines for help texts (the names in the order given)."""
    width = max((len(n) for n in names), default=0)
    return [f"{n:<{width}}  {describe(n)}" for n in names]
