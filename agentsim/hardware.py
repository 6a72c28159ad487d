"""The one device probe: what the machine has and what its accelerator can do.

Everything agentsim asks of the hardware at run start goes through here, once per process:

* :func:`probe_nvml` opens NVML once and reads every GPU's name, compute capability, memory,
  UUID and whether it has an energy counter, plus the driver versions (cached; :func:`reset`
  forgets it, for tests);
* :func:`detect` names the device a backend computes on (an :class:`Accelerator`: kind, name,
  compute capability), from torch when the backend computes with torch, else from NVML;
* the precision rules every backend applies the same way: native FP4 only with FP4 tensor cores
  (:func:`require_native_fp4`, compute capability >= 10.0), native FP8 only with FP8 tensor cores
  (:func:`require_native_fp8`, >= 8.9), f16 matmuls only where they work
  (:func:`f16_matmul_problem`); the thresholds are defined in :mod:`agentsim.precision`;
* :func:`machine_info`, the fingerprint stored with every run.

Nothing heavy is imported at module level: pynvml is imported on the first probe, and torch only
by :func:`detect` for a torch backend (or when it is already imported). The boundary is the
``pynvml`` module (tests put a fake in ``sys.modules`` and call :func:`reset`, or pass
``nvml_module=``); the rules take the facts as an ``accelerator=`` argument, so tests can state a
Blackwell or a Hopper machine without faking torch.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import HardwareError
from .precision import (
    F16_MIN_CAPABILITY,
    FP4,
    FP4_NATIVE_MIN_CAPABILITY,
    FP8,
    FP8_NATIVE_MIN_CAPABILITY,
)
from .versions import dist_versions

__all__ = [
    "FP4_NATIVE_MIN_CAPABILITY",
    "FP8_NATIVE_MIN_CAPABILITY",
    "F16_MIN_CAPABILITY",
    "Accelerator",
    "GPUInfo",
    "NVMLProbe",
    "probe_nvml",
    "reset",
    "detect",
    "fp4_native_supported",
    "fp8_native_supported",
    "require_native_fp4",
    "require_native_fp8",
    "f16_matmul_problem",
    "f16_note",
    "cpu_flags",
    "cpu_model",
    "machine_info",
    "package_versions",
    "pynvml_module",
    "nvml_string",
]

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


# --------------------------------------------------------------------------------------------
# the NVML probe (opened once per process)


@dataclass(frozen=True)
class GPUInfo:
    """One GPU as NVML reports it (a field NVML could not read is None)."""

    index: int
    name: str | None = None
    capability: tuple[int, int] | None = None
    memory_bytes: int | None = None
    uuid: str | None = None
    energy_counter: bool = False
    error: str | None = None  # NVML could not open this GPU at all

    def as_dict(self) -> dict[str, Any]:
        """The GPU as stored in a run's machine fingerprint."""
        if self.error is not None:
            return {"index": self.index, "error": self.error}
        cap = f"{self.capability[0]}.{self.capability[1]}" if self.capability else None
        return {"index": self.index, "name": self.name, "memory_bytes": self.memory_bytes,
                "compute_capability": cap, "uuid": self.uuid, "energy_counter": self.energy_counter}


@dataclass(frozen=True)
class NVMLProbe:
    """Everything NVML said when it was asked: the GPUs and the driver versions."""

    gpus: tuple[GPUInfo, ...] = ()
    driver: str | None = None
    cuda_driver: str | None = None
    error: str | None = None  # why NVML could not be asked (no pynvml, no driver)


def pynvml_module() -> Any | None:
    """The ``pynvml`` module (nvidia-ml-py), or None when it is not installed."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def nvml_string(value: Any) -> str:
    """NVML returns bytes in old pynvml releases and str in new ones."""
    return value.decode() if isinstance(value, bytes) else str(value)


_lock = threading.Lock()
_nvml_cache: NVMLProbe | None = None
_torch_cache: dict[int, Accelerator | None] = {}


def reset() -> None:
    """Forget what was probed (tests that change the boundary call this)."""
    global _nvml_cache
    with _lock:
        _nvml_cache = None
        _torch_cache.clear()


def probe_nvml(nvml_module: Any = None) -> NVMLProbe:
    """What NVML says about this machine's GPUs: asked once per process, then cached.

    ``nvml_module`` (a fake, in tests) is asked afresh and never cached.
    """
    if nvml_module is not None:
        return _ask_nvml(nvml_module)
    global _nvml_cache
    with _lock:
        if _nvml_cache is None:
            nvml = pynvml_module()
            if nvml is None:
                _nvml_cache = NVMLProbe(error="pynvml is not installed")
            else:
                try:
                    _nvml_cache = _ask_nvml(nvml)
                except Exception as exc:  # noqa: BLE001 - a broken driver means "no GPU seen", not a crash
                    _nvml_cache = NVMLProbe(error=f"NVML failed: {type(exc).__name__}: {exc}")
        return _nvml_cache


def _ask_nvml(nvml: Any) -> NVMLProbe:
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return NVMLProbe(error=f"NVML cannot start: {type(exc).__name__}: {exc}")
    gpus: list[GPUInfo] = []
    driver = cuda = None
    try:
        try:
            driver = nvml_string(nvml.nvmlSystemGetDriverVersion())
        except nvml.NVMLError:
            pass
        try:
            v = int(nvml.nvmlSystemGetCudaDriverVersion())
            cuda = f"{v // 1000}.{v % 1000 // 10}"
        except nvml.NVMLError:
            pass
        for i in range(int(nvml.nvmlDeviceGetCount())):
            try:
                h = nvml.nvmlDeviceGetHandleByIndex(i)
                name = nvml_string(nvml.nvmlDeviceGetName(h))
            except nvml.NVMLError as exc:
                gpus.append(GPUInfo(i, error=str(exc)))
                continue
            facts: dict[str, Any] = {}
            probes: dict[str, Callable[[Any], Any]] = {
                "memory_bytes": lambda h: int(nvml.nvmlDeviceGetMemoryInfo(h).total),
                "capability": lambda h: tuple(int(x) for x in nvml.nvmlDeviceGetCudaComputeCapability(h)),
                "uuid": lambda h: nvml_string(nvml.nvmlDeviceGetUUID(h)),
                "energy_counter": lambda h: nvml.nvmlDeviceGetTotalEnergyConsumption(h) is not None,
            }
            for key, fn in probes.items():
                try:
                    facts[key] = fn(h)
                except nvml.NVMLError:
                    pass
            gpus.append(GPUInfo(i, name, **facts))
    except nvml.NVMLError:
        pass
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass
    return NVMLProbe(tuple(gpus), driver, cuda)


def _nvml_cuda(index: int) -> Accelerator | None:
    """NVML's GPU ``index`` as an accelerator (None without NVML or its compute capability)."""
    gpus = probe_nvml().gpus
    if index >= len(gpus) or gpus[index].name is None or gpus[index].capability is None:
        return None
    g = gpus[index]
    return Accelerator("cuda", g.name, g.capability, "nvml")  # type: ignore[arg-type]


def _torch_cuda(index: int, *, import_torch: bool = True) -> Accelerator | None:
    """torch's CUDA device ``index`` (cached). Without ``import_torch``, only an imported torch is asked."""
    with _lock:
        if index in _torch_cache:
            return _torch_cache[index]
    if not import_torch and "torch" not in sys.modules:
        return None
    if importlib.util.find_spec("torch") is None:
        acc = None
    else:
        acc = _ask_torch(index)
    with _lock:
        _torch_cache[index] = acc
    return acc


def _ask_torch(index: int) -> Accelerator | None:
    import torch

    try:
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            return None
        cap = torch.cuda.get_device_capability(index)
        return Accelerator("cuda", torch.cuda.get_device_name(index), (int(cap[0]), int(cap[1])), "torch")
    except Exception:  # noqa: BLE001 - a broken driver means "no usable GPU", not a crash
        return None


# --------------------------------------------------------------------------------------------
# the CPU


def _cpuinfo(key: str) -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(key):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str | None:
    """The CPU's model name (None when the platform does not say)."""
    return _cpuinfo("model name") or platform.processor() or None


def _cpu_name() -> str:
    return cpu_model() or platform.machine() or "unknown"


def cpu_flags() -> set[str]:
    """The CPU feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    return set((_cpuinfo("flags") or "").split())


# --------------------------------------------------------------------------------------------
# the device a backend computes on


def detect(device: str = "auto", index: int = 0, *, torch: bool = True) -> Accelerator:
    """The accelerator for ``device`` (auto | cpu | cuda), probed once per process.

    ``torch=True`` (a torch backend): the device torch computes on; the compute capability comes
    from torch when it has CUDA, and a machine with a GPU but a CPU-only torch is the CPU (with
    ``device=cuda``, an error that names the GPU NVML sees). ``torch=False`` (a backend that
    does not compute with torch, such as llama.cpp): the GPU NVML sees, without importing torch
    (an already imported torch is asked when NVML cannot be).

    ``cuda`` without a usable CUDA GPU raises :class:`HardwareError`; ``auto`` falls back to the
    CPU.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise HardwareError(f"unknown device {device!r}", hint="device=auto, cpu or cuda")
    if device == "cpu":
        return Accelerator("cpu", _cpu_name())
    if torch:
        acc = _torch_cuda(index)
    else:
        acc = _nvml_cuda(index) or _torch_cuda(index, import_torch=False)
    if acc is not None:
        return acc
    if device == "cuda":
        gpu = _nvml_cuda(index) if torch else None
        if gpu is not None:
            raise HardwareError(
                f"device=cuda: NVML sees {gpu.describe()}, but the installed torch has no CUDA support",
                hint="install a CUDA build of torch, or use device=cpu",
            )
        raise HardwareError("device=cuda asked for, but there is no CUDA GPU on this machine",
                            hint="use device=cpu (or device=auto)")
    return Accelerator("cpu", _cpu_name())


def _first_gpu_or_cpu() -> Accelerator:
    """The first CUDA GPU seen by torch or NVML, else the CPU (what a native-precision rule judges)."""
    return _torch_cuda(0) or _nvml_cuda(0) or Accelerator("cpu", _cpu_name())


# --------------------------------------------------------------------------------------------
# the precision rules


def fp4_native_supported(capability: tuple[int, int] | None) -> bool:
    """True when a GPU of this compute capability has FP4 tensor cores (>= 10.0)."""
    return capability is not None and tuple(capability) >= FP4_NATIVE_MIN_CAPABILITY


def fp8_native_supported(capability: tuple[int, int] | None) -> bool:
    """True when a GPU of this compute capability has FP8 tensor cores (>= 8.9: Ada, Hopper and later)."""
    return capability is not None and tuple(capability) >= FP8_NATIVE_MIN_CAPABILITY


def require_native_fp4(
    precision: str,
    *,
    accelerator: Accelerator | None = None,
    backend: str = "hf",
    model: str = "MODEL",
) -> Accelerator:
    """The accelerator to run native ``precision`` (mxfp4, nvfp4) on, or :class:`HardwareError` saying why not.

    ``accelerator`` defaults to the first CUDA GPU seen by torch or NVML (the CPU when none).
    """
    if precision not in FP4:
        raise HardwareError(f"native={precision}: native mode exists only for {', '.join(FP4)}")
    return _require_native(precision, accelerator, FP4_NATIVE_MIN_CAPABILITY, fp4_native_supported,
                           "FP4 tensor cores: an NVIDIA Blackwell GPU", backend, model)


def require_native_fp8(
    precision: str = "fp8",
    *,
    accelerator: Accelerator | None = None,
    backend: str = "hf",
    model: str = "MODEL",
) -> Accelerator:
    """The accelerator to run native ``precision`` (fp8) on, or :class:`HardwareError` saying why not.

    FP8 tensor cores start with Ada (sm_89) and Hopper (sm_90). ``accelerator`` defaults to the
    first CUDA GPU seen by torch or NVML (the CPU when none).
    """
    if precision not in FP8:
        raise HardwareError(f"native={precision}: native FP8 mode exists only for {', '.join(FP8)}")
    return _require_native(precision, accelerator, FP8_NATIVE_MIN_CAPABILITY, fp8_native_supported,
                           "FP8 tensor cores: an NVIDIA Ada, Hopper or later GPU", backend, model)


def _require_native(
    precision: str,
    accelerator: Accelerator | None,
    minimum: tuple[int, int],
    supported: Callable[[tuple[int, int] | None], bool],
    units: str,
    backend: str,
    model: str,
) -> Accelerator:
    acc = accelerator if accelerator is not None else _first_gpu_or_cpu()
    if acc.kind != "cuda":
        have = f"this machine has no CUDA GPU (it would run on {acc.describe()})"
    elif not supported(acc.capability):
        have = f"this machine has {acc.describe()}"
    else:
        return acc
    raise HardwareError(
        f"native {precision} needs {units}, compute capability >= {minimum[0]}.{minimum[1]}; {have}",
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


# --------------------------------------------------------------------------------------------
# the machine fingerprint


#: the distributions whose versions a machine fingerprint records
FINGERPRINT_DISTS: tuple[str, ...] = ("agentsim", "torch", "transformers", "llama-cpp-python", "gguf", "numpy",
                                      "textual", "nvidia-ml-py")


def package_versions() -> dict[str, str | None]:
    """Python's version and each of :data:`FINGERPRINT_DISTS`'s (None when not installed)."""
    return {"python": sys.version.split()[0], **dist_versions(FINGERPRINT_DISTS)}


def machine_info(*, nvml_module: Any = None) -> dict[str, Any]:
    """A fingerprint of the machine a run was made on (CPU, RAM, GPUs, driver, versions).

    The GPUs come from the NVML probe (once per process), else from torch when it is already
    imported (importing it costs seconds).
    """
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": _usable_cpus(),
        "cpu_physical_cores": None,
        "ram_bytes": None,
        "gpus": [],
        "gpu_driver": None,
        "cuda_driver": None,
    }
    try:
        import psutil

        info["ram_bytes"] = psutil.virtual_memory().total
        info["cpu_physical_cores"] = psutil.cpu_count(logical=False)
    except Exception:  # noqa: BLE001
        pass
    nvml = probe_nvml(nvml_module)
    gpus = [g.as_dict() for g in nvml.gpus] or _torch_gpus()
    info["gpus"], info["gpu_driver"], info["cuda_driver"] = gpus, nvml.driver, nvml.cuda_driver
    info["versions"] = package_versions()
    return info


def _usable_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _torch_gpus() -> list[dict[str, Any]]:
    """GPUs from torch, only if torch is already imported."""
    torch = sys.modules.get("torch")
    if torch is None:
        return []
    try:
        if not torch.cuda.is_available():
            return []
        out = []
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out.append({"index": i, "name": p.name, "memory_bytes": int(p.total_memory),
                        "compute_capability": f"{p.major}.{p.minor}", "via": "torch"})
        return out
    except Exception:  # noqa: BLE001
        return []
