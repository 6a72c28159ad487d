"""What the accelerator can do: CUDA presence, compute capability, native FP4, f16 matmuls.

Why a module of its own: every backend that offers FP4 must apply the same rule (native FP4
only on Blackwell, compute capability >= 10.0; emulated elsewhere and labelled so), and the
refusal must read the same everywhere. Nothing heavy is imported at module level; torch is asked
only when it is already installed, and NVML is the fallback for the compute capability.

The detection functions take the facts as optional arguments (``capability=``, ``device_name=``)
so that tests can state a Blackwell or a Hopper machine at this boundary without faking torch.
"""

from __future__ import annotations

import importlib.util
import platform
from dataclasses import dataclass, field
from typing import Any

from .errors import HardwareError

__all__ = [
    "FP4_NATIVE_MIN_CAPABILITY",
    "F16_MIN_CAPABILITY",
    "FP4_PRECISIONS",
    "Accelerator",
    "detect",
    "fp4_native_supported",
    "require_native_fp4",
    "f16_matmul_problem",
    "cpu_flags",
]

#: FP4 tensor cores: Blackwell (sm_100, sm_120) and later
FP4_NATIVE_MIN_CAPABILITY: tuple[int, int] = (10, 0)
#: native half-precision arithmetic on NVIDIA GPUs
F16_MIN_CAPABILITY: tuple[int, int] = (5, 3)
FP4_PRECISIONS: tuple[str, ...] = ("mxfp4", "nvfp4")


@dataclass(frozen=True)
class Accelerator:
    """The device a backend would compute on."""

    kind: str  # "cuda" | "cpu"
    name: str
    capability: tuple[int, int] | None = None  # CUDA compute capability
    source: str = "none"  # how it was detected: torch | nvml | none
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def capability_str(self) -> str | None:
        return f"{self.capability[0]}.{self.capability[1]}" if self.capability else None

    def describe(self) -> str:
        if self.kind == "cuda":
            return f"{self.name} (compute capability {self.capability_str})"
        return f"CPU {self.name}"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> set[str]:
    """The CPU feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def _torch_cuda(index: int) -> Accelerator | None:
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    try:
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            return None
        cap = torch.cuda.get_device_capability(index)
        return Accelerator("cuda", torch.cuda.get_device_name(index), (int(cap[0]), int(cap[1])), "torch")
    except Exception:  # noqa: BLE001 - a broken driver means "no usable GPU", not a crash
        return None


def _nvml_cuda(index: int) -> Accelerator | None:
    if importlib.util.find_spec("pynvml") is None:
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            h = pynvml.nvmlDeviceGetHandleByIndex(index)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
            name = pynvml.nvmlDeviceGetName(h)
            name = name.decode() if isinstance(name, bytes) else str(name)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001
        return None
    return Accelerator("cuda", name, (int(major), int(minor)), "nvml")


def detect(device: str = "auto", index: int = 0) -> Accelerator:
    """The accelerator for ``device`` (auto | cpu | cuda).

    ``cuda`` without a usable CUDA GPU raises :class:`HardwareError`; ``auto`` falls back to the
    CPU. The compute capability comes from torch when it has CUDA, else from NVML (a machine
    with a GPU but a CPU-only torch still reports its GPU, so the FP4 rule can name it).
    """
    if device not in ("auto", "cpu", "cuda"):
        raise HardwareError(f"unknown device {device!r}", hint="device=auto, cpu or cuda")
    if device == "cpu":
        return Accelerator("cpu", _cpu_name())
    acc = _torch_cuda(index)
    if acc is not None:
        return acc
    if device == "cuda":
        gpu = _nvml_cuda(index)
        if gpu is not None:
            raise HardwareError(
                f"device=cuda: NVML sees {gpu.describe()}, but the installed torch has no CUDA support",
                hint="install a CUDA build of torch, or use device=cpu",
            )
        raise HardwareError("device=cuda asked for, but there is no CUDA GPU on this machine",
                            hint="use device=cpu (or device=auto)")
    return Accelerator("cpu", _cpu_name())


def _gpu_for_fp4_check() -> Accelerator | None:
    return _torch_cuda(0) or _nvml_cuda(0)


def fp4_native_supported(capability: tuple[int, int] | None) -> bool:
    """True when a GPU of this compute capability has FP4 tensor cores (>= 10.0)."""
    return capability is not None and tuple(capability) >= FP4_NATIVE_MIN_CAPABILITY


def require_native_fp4(
    precision: str,
    *,
    accelerator: Accelerator | None = None,
    backend: str = "hf",
    model: str = "MODEL",
) -> Accelerator:
    """The accelerator to run native ``precision`` on, or :class:`HardwareError` saying why not.

    ``accelerator`` defaults to the first CUDA GPU seen by torch or NVML (the CPU when none).
    """
    if precision not in FP4_PRECISIONS:
        raise HardwareError(f"native={precision}: native mode exists only for {', '.join(FP4_PRECISIONS)}")
    acc = accelerator if accelerator is not None else (_gpu_for_fp4_check() or Accelerator("cpu", _cpu_name()))
    need = f"{FP4_NATIVE_MIN_CAPABILITY[0]}.{FP4_NATIVE_MIN_CAPABILITY[1]}"
    if acc.kind != "cuda":
        have = f"this machine has no CUDA GPU (it would run on {acc.describe()})"
    elif not fp4_native_supported(acc.capability):
        have = f"this machine has {acc.describe()}"
    else:
        return acc
    raise HardwareError(
        f"native {precision} needs FP4 tensor cores: an NVIDIA Blackwell GPU, compute capability >= {need}; {have}",
        hint=(f"use the emulated mode, {backend}:{model}@{precision} (native=false, the default): weights are "
              f"rounded to {precision} exactly and computed in bf16; it answers the accuracy question, not the speed one"),
    )


def f16_matmul_problem(acc: Accelerator, *, probe: bool = True) -> str | None:
    """Why f16 matmuls cannot be used on ``acc`` (None when they can).

    CUDA: compute capability below 5.3 has no half arithmetic. Any device: a probe matmul in
    f16 must run and agree with float32 (an op missing for Half raises in torch).
    """
    if acc.kind == "cuda" and acc.capability is not None and acc.capability < F16_MIN_CAPABILITY:
        return (f"{acc.describe()} has no native half-precision arithmetic "
                f"(needs compute capability >= {F16_MIN_CAPABILITY[0]}.{F16_MIN_CAPABILITY[1]})")
    if not probe:
        return None
    import torch

    dev = "cuda" if acc.kind == "cuda" else "cpu"
    g = torch.Generator().manual_seed(0)
    a = torch.randn(8, 64, generator=g)
    b = torch.randn(64, 16, generator=g)
    try:
        got = (a.to(dev, torch.float16) @ b.to(dev, torch.float16)).float().cpu()
    except Exception as exc:  # noqa: BLE001 - "not implemented for 'Half'" is the answer we need
        return f"torch cannot multiply float16 matrices on {acc.describe()}: {type(exc).__name__}: {exc}"
    ref = a.half().float() @ b.half().float()
    if not torch.allclose(got, ref, rtol=1e-2, atol=5e-2):
        return f"float16 matmul on {acc.describe()} gives wrong results (max error {float((got - ref).abs().max()):.3g})"
    return None


def f16_note(acc: Accelerator) -> str | None:
    """A note (not a refusal) when f16 works but has no native arithmetic on this CPU."""
    if acc.kind != "cpu":
        return None
    flags = cpu_flags()
    if flags and not ({"avx512_fp16", "amx_fp16"} & flags):
        return ("this CPU has no native fp16 arithmetic (no AVX512-FP16 / AMX-FP16): torch converts "
                "f16 matmuls internally, so they are correct but much slower than f32")
    return None


def describe_torch_device() -> dict[str, Any]:
    """The accelerator torch would use, for machine fingerprints."""
    acc = detect("auto")
    return {"kind": acc.kind, "name": acc.name, "capability": acc.capability_str, "source": acc.source}
