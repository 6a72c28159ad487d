"""How the ``hf`` backend realises the precisions a quantization library implements, and native FP8.

Why a module of its own: bitsandbytes and torchao are optional (the ``quant`` extra), each has
its own rules about which device it has kernels for, and the run must be stored with the kernel
that really ran. Everything here is told from the installed library and the device, up front
(:func:`check_library`, called before any model is loaded), and a missing library or a device
without kernels is a clear error naming the reason and the fix.

* ``nf4``, ``fp4-bnb`` (bitsandbytes 4-bit, blocks of 64, ``double_quant=true`` quantizes the
  block scales too) and ``int8-bnb`` (LLM.int8(), outlier threshold 6.0), through transformers'
  ``BitsAndBytesConfig``: the model is loaded from a folder with the config (a GGUF goes through
  its safetensors cache folder, or a temporary one when ``cache=false``).
* ``int8-wo`` / ``int4-wo``: torchao's weight-only configs applied to the loaded model
  (``Int8WeightOnlyConfig``; on the CPU ``PrototypeInt4WeightOnlyConfig`` with the packed int4
  CPU kernel ``aten._weight_int4pack_mm_for_cpu``, on CUDA ``Int4WeightOnlyConfig`` with
  tinygemm's tile-packed format).
* ``fp8,native=true``: torchao's ``Float8DynamicActivationFloat8WeightConfig(PerRow)``: E4M3
  weights with one scale per output channel (the emulated ``fp8``'s scaling) and dynamic
  per-token E4M3 activations, ``torch._scaled_mm`` on FP8 tensor cores. Reached only after
  :func:`agentsim.hardware.require_native_fp8` accepted the GPU.

Embeddings and ``lm_head`` are never quantized (as in the emulated precisions).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

from agentsim.errors import BackendError, HardwareError, MissingDependencyError
from agentsim.hardware import Accelerator
from agentsim.precision import BNB_4BIT, BNB_PRECISIONS, TORCHAO_PRECISIONS
from agentsim.versions import dist_version

__all__ = [
    "QUANT_EXTRA",
    "quiet",
    "INT4_WO_GROUPS",
    "check_library",
    "import_bitsandbytes",
    "import_torchao",
    "bnb_config",
    "count_bnb_linears",
    "torchao_quantize",
    "native_fp8",
]

#: the extra that installs bitsandbytes and torchao
QUANT_EXTRA = "quant"
#: the group sizes torchao's int4 kernels take
INT4_WO_GROUPS: tuple[int, ...] = (32, 64, 128)
#: LLM.int8()'s outlier threshold (transformers' and bitsandbytes' default)
INT8_BNB_THRESHOLD = 6.0

# Import-time chatter of the libraries that says nothing about this run: torchao's CUDA-only
# extensions failing to load on a CPU build, torch's pytree deprecation notes, bitsandbytes'
# optional hub kernel (its own C++ CPU kernel is used instead, and the kernel string says so).
# transformers imports torchao (and bitsandbytes) itself, whenever they are installed, to see
# whether their quantizers are available: hf.py loads every model inside quiet() for that reason.
_QUIET_LOGGERS = ("torchao", "torch.utils._pytree", "bitsandbytes.backends.cpu.ops", "bitsandbytes.cextension")


@contextlib.contextmanager
def quiet(*, warnings_too: bool = False) -> Iterator[None]:
    """Silence the quantization libraries' import-time log lines (and, optionally, warnings)."""
    saved = {}
    for name in _QUIET_LOGGERS:
        log = logging.getLogger(name)
        saved[name] = log.level
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            if warnings_too:
                warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def import_bitsandbytes(precision: str) -> Any:
    """The ``bitsandbytes`` module, or :class:`MissingDependencyError` naming the extra."""
    try:
        with quiet(warnings_too=True):
            import bitsandbytes
    except ImportError:
        raise MissingDependencyError(f"hf@{precision} (bitsandbytes)", QUANT_EXTRA, ["bitsandbytes"]) from None
    return bitsandbytes


def import_torchao(precision: str) -> Any:
    """The ``torchao`` module, or :class:`MissingDependencyError` naming the extra."""
    try:
        with quiet(warnings_too=True):
            import torchao
            import torchao.quantization  # noqa: F401 - the configs live here
    except ImportError:
        raise MissingDependencyError(f"hf@{precision} (torchao)", QUANT_EXTRA, ["torchao"]) from None
    return torchao


def _version(module: Any, dist: str) -> str:
    return str(getattr(module, "__version__", None) or dist_version(dist) or "?")


# --------------------------------------------------------------------------------------------
# what runs where: checked before any model is loaded


def check_library(precision: str, acc: Accelerator, *, compute: str, group: int = 0,
                  double_quant: bool = False, native_fp8: bool = False) -> str:
    """The kernel that will run ``precision`` on ``acc`` (stored as the run's ``kernel``).

    Raises :class:`MissingDependencyError` when the library is not installed and
    :class:`HardwareError` when it has no kernels for the device.
    """
    if native_fp8:
        if not _has_torchao():
            from .hf_kernels import describe

            return describe("fp8", acc.kind) + f" ({acc.describe()}; torchao is not installed)"
        ao = import_torchao(precision)
        return (f"torchao {_version(ao, 'torchao')} Float8DynamicActivationFloat8WeightConfig(PerRow): "
                f"E4M3 weights with one scale per output channel, dynamic per-token E4M3 activations, "
                f"torch._scaled_mm on FP8 tensor cores ({acc.describe()})")
    if precision in BNB_PRECISIONS:
        return _bnb_kernel(precision, acc, compute, double_quant)
    if precision in TORCHAO_PRECISIONS:
        return _torchao_kernel(precision, acc, compute, group)
    raise BackendError(f"hf: {precision} is not a library precision")


def _bnb_kernel(precision: str, acc: Accelerator, compute: str, double_quant: bool) -> str:
    bnb = import_bitsandbytes(precision)
    version = _version(bnb, "bitsandbytes")
    with quiet(warnings_too=True):
        from bitsandbytes import cextension

    lib = getattr(cextension, "lib", None)
    backend = str(getattr(cextension, "BNB_BACKEND", "?"))
    mock = type(lib).__name__ == "ErrorHandlerMockBNBNativeLibrary" or lib is None
    if mock:
        raise HardwareError(
            f"bitsandbytes {version} has no kernels for this machine: it loaded no native library "
            f"(backend {backend}; run `python -m bitsandbytes` for the reason)",
            hint="use the emulated int8/int4 precisions (hf:MODEL@int8, @int4), or torchao's @int8-wo/@int4-wo",
        )
    if acc.kind == "cuda":
        if not getattr(lib, "compiled_with_cuda", False):
            raise HardwareError(
                f"bitsandbytes {version} loaded its {backend} library, not a CUDA one: no kernels for {acc.describe()}",
                hint="install a bitsandbytes build for your CUDA version (pip install 'agentsim[quant]')",
            )
        where = f"CUDA kernels on {acc.describe()}"
        if precision == "int8-bnb":
            return (f"bitsandbytes {version} LLM.int8() (threshold {INT8_BNB_THRESHOLD}): int8 x int8 matmul, "
                    f"outlier columns in f16; {where}")
        return (f"bitsandbytes {version} {_bnb_name(precision)} (blocks of 64{', double quant' if double_quant else ''}): "
                f"dequantize + {compute} matmul, fused 4-bit gemv at batch 1; {where}")
    if backend != "CPU" and getattr(lib, "compiled_with_cuda", False):
        raise HardwareError(f"bitsandbytes {version} loaded a CUDA library but the device is the CPU",
                            hint="use device=cuda, or a CPU build of torch and bitsandbytes")
    import torch

    if precision == "int8-bnb":
        avx512 = torch.backends.cpu.get_cpu_capability() == "AVX512"
        mm = ("int8 x int8 -> int32 matmul by torch._int_mm (AVX-512)" if avx512 else
              "int8 x int8 matmul by bitsandbytes' pure-torch default kernel (no AVX-512 on this CPU)")
        return (f"bitsandbytes {version} LLM.int8() (threshold {INT8_BNB_THRESHOLD}) on the CPU: activations "
                f"cast to f16 and quantized per row to int8, {mm}, outlier columns in f16")
    from bitsandbytes.functional import has_avx512bf16

    dq = ", double quant" if double_quant else ""
    if has_avx512bf16():
        return (f"bitsandbytes {version} {_bnb_name(precision)} (blocks of 64{dq}) on the CPU: weights repacked "
                f"for bitsandbytes' fused C++ 4-bit GEMM in bf16 (AVX512-BF16; activations in {compute} cast "
                f"to bf16)")
    return (f"bitsandbytes {version} {_bnb_name(precision)} (blocks of 64{dq}) on the CPU: C++ dequantize_4bit "
            f"to {compute}, then a torch matmul (no AVX512-BF16 for the fused kernel)")


def _bnb_name(precision: str) -> str:
    return {"nf4": "NF4", "fp4-bnb": "FP4"}[precision]


def _torchao_kernel(precision: str, acc: Accelerator, compute: str, group: int) -> str:
    ao = import_torchao(precision)
    version = _version(ao, "torchao")
    if precision == "int8-wo":
        if group:
            return (f"torchao {version} Int8WeightOnlyConfig(PerGroup({group})): int8 weights with a scale per "
                    f"group of {group}; each matmul dequantizes the weight to {compute}, then torch.mm "
                    f"({acc.kind})")
        return (f"torchao {version} Int8WeightOnlyConfig(PerRow): int8 weights with one scale per output channel; "
                f"each matmul converts the int8 weight to {compute}, torch.mm, then scales the output "
                f"({acc.kind})")
    g = group or INT4_WO_GROUPS[0]
    if acc.kind == "cuda":
        if acc.capability is not None and acc.capability < (8, 0):
            raise HardwareError(f"torchao's int4 CUDA kernel (tinygemm) needs compute capability >= 8.0; "
                                f"this machine has {acc.describe()}", hint="use device=cpu, or @int8-wo")
        if compute != "bf16":
            raise BackendError("hf: int4-wo on CUDA runs tinygemm, which takes bf16 only", hint="use dtype=bf16")
        return (f"torchao {version} Int4WeightOnlyConfig(group {g}, tile_packed_to_4d): asymmetric int4 with bf16 "
                f"scale and zero point, tinygemm aten._weight_int4pack_mm on {acc.describe()}")
    return (f"torchao {version} PrototypeInt4WeightOnlyConfig(group {g}): asymmetric int4 with {compute} scale and "
            f"zero point, packed; CPU kernel aten._weight_int4pack_mm_for_cpu in {compute}")


# --------------------------------------------------------------------------------------------
# applying them


def bnb_config(precision: str, compute_dtype: Any, *, double_quant: bool = False) -> Any:
    """transformers' ``BitsAndBytesConfig`` for ``precision`` (computing in torch ``compute_dtype``)."""
    from transformers import BitsAndBytesConfig

    if precision == "int8-bnb":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=INT8_BNB_THRESHOLD)
    if precision not in BNB_4BIT:
        raise BackendError(f"hf: {precision} is not a bitsandbytes precision")
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4" if precision == "nf4" else "fp4",
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=double_quant,
    )


def count_bnb_linears(model: Any) -> int:
    """How many layers bitsandbytes replaced (``Linear4bit`` / ``Linear8bitLt``)."""
    with quiet(warnings_too=True):
        import bitsandbytes as bnb

    # LLM.int8() casts bf16 activations to f16 at every call and logs a warning each time; the
    # kernel string says it once instead
    logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)
    return sum(isinstance(m, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)) for m in model.modules())


def _want(n: list[int], *, in_multiple: int = 1, out_multiple: int = 1) -> Any:
    import torch

    def want(mod: Any, fqn: str) -> bool:
        ok = (isinstance(mod, torch.nn.Linear) and not fqn.endswith("lm_head")
              and mod.in_features % in_multiple == 0 and mod.out_features % out_multiple == 0)
        n[0] += int(ok)
        return ok

    return want


def torchao_quantize(model: Any, precision: str, acc: Accelerator, *, group: int = 0) -> int:
    """Apply torchao's weight-only config for ``precision`` to ``model``'s decoder linears; how many.

    int4 layers whose input features are not a multiple of the group stay in the compute dtype
    (torchao's kernels need whole groups); the count says how many were converted.
    """
    import_torchao(precision)
    with quiet(warnings_too=True):
        from torchao.quantization import Int4WeightOnlyConfig, Int8WeightOnlyConfig, quantize_
        from torchao.quantization.granularity import PerGroup, PerRow

    n = [0]
    with quiet(warnings_too=True):
        if precision == "int8-wo":
            config = Int8WeightOnlyConfig(granularity=PerGroup(group) if group else PerRow())
            quantize_(model, config, filter_fn=_want(n, in_multiple=group or 1))
        elif precision == "int4-wo":
            g = group or INT4_WO_GROUPS[0]
            if acc.kind == "cuda":
                config = Int4WeightOnlyConfig(group_size=g, int4_packing_format="tile_packed_to_4d")
            else:
                from torchao.prototype.quantization.int4.inference_workflow import (
                    PrototypeInt4WeightOnlyConfig,
                )

                config = PrototypeInt4WeightOnlyConfig(group_size=g)
            quantize_(model, config, filter_fn=_want(n, in_multiple=g))
        else:
            raise BackendError(f"hf: {precision} is not a torchao precision")
    return n[0]


def _has_torchao() -> bool:
    import importlib.util

    return importlib.util.find_spec("torchao") is not None


def native_fp8(model: Any) -> int:
    """FP8 tensor-core matmuls through torchao (E4M3, per-row scales); how many linears. Without
    torchao, agentsim's own ``torch._scaled_mm`` linears (:mod:`.hf_kernels`), same recipe.

    Reached only after :func:`agentsim.hardware.require_native_fp8` accepted the GPU (cc >= 8.9).
    """
    if not _has_torchao():
        from .hf_kernels import replace_linears

        return replace_linears(model, "fp8")
    import_torchao("fp8")
    with quiet(warnings_too=True):
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, quantize_
        from torchao.quantization.granularity import PerRow

    n = [0]
    with quiet(warnings_too=True):
        # torch._scaled_mm wants both dimensions in multiples of 16
        quantize_(model, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()),
                  filter_fn=_want(n, in_multiple=16, out_multiple=16))
    return n[0]
