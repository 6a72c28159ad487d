"""Fakes for the hardware boundaries we cannot reach on a CPU-only machine.

``FakeNVML`` stands in for the ``pynvml`` module (it raises the real ``pynvml.NVMLError``
subclasses); ``make_powercap`` writes a fake ``/sys/class/powercap`` tree. Both are injected at
the boundary: ``make_meter("nvml", nvml_module=fake)``, ``make_meter("rapl", powercap_root=tmp)``.
``install_fake_probe`` puts a ``FakeNVML`` where ``import pynvml`` finds it and states what torch's
CUDA runtime reports, so :mod:`agentsim.hardware`'s one cached probe sees a stated machine.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pynvml
import pytest

from agentsim import hardware


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, t: float = 1.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def nvml_error(cls: type) -> Exception:
    """An instance of a real pynvml error subclass (e.g. ``pynvml.NVMLError_NotSupported``)."""
    codes = {v: k for k, v in pynvml.NVMLError._valClassMapping.items()}
    return cls(codes[cls])


@dataclass
class FakeGPU:
    name: str = "NVIDIA H100 80GB HBM3"
    watts: float = 100.0
    counter: bool = True
    power: bool = True
    period_s: float = 0.02  # how often the energy counter ticks
    start_mj: int = 0
    uuid: str = "GPU-00000000"
    cc: tuple[int, int] = (9, 0)
    memory: int = 80 * 2**30
    energy_error: Exception | None = None  # raised by the next counter read
    offset_mj: int = 0  # added to the counter (a reset makes it negative)


class FakeNVML:
    """Just enough of pynvml for the meter and the fingerprint; energy follows a clock."""

    NVMLError = pynvml.NVMLError

    def __init__(self, gpus: list[FakeGPU], clock: Callable[[], float], init_error: Exception | None = None) -> None:
        self.gpus = gpus
        self.clock = clock
        self.init_error = init_error
        self.inits = 0
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> FakeGPU:
        return self.gpus[i]

    def nvmlDeviceGetName(self, h: FakeGPU) -> str:
        return h.name

    def nvmlDeviceGetUUID(self, h: FakeGPU) -> str:
        return h.uuid

    def nvmlDeviceGetTotalEnergyConsumption(self, h: FakeGPU) -> int:
        if not h.counter:
            raise nvml_error(pynvml.NVMLError_NotSupported)
        if h.energy_error is not None:
            err, h.energy_error = h.energy_error, None
            raise err
        ticks = math.floor(self.clock() / h.period_s + 1e-9)
        return (h.start_mj + h.offset_mj + round(ticks * h.period_s * h.watts * 1000)) % 2**64

    def nvmlDeviceGetPowerUsage(self, h: FakeGPU) -> int:
        if not h.power:
            raise nvml_error(pynvml.NVMLError_NotSupported)
        return int(h.watts * 1000)

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12040

    def nvmlDeviceGetMemoryInfo(self, h: FakeGPU) -> Any:
        return SimpleNamespace(total=h.memory, used=0, free=h.memory)

    def nvmlDeviceGetCudaComputeCapability(self, h: FakeGPU) -> tuple[int, int]:
        return h.cc


MAX_RANGE_UJ = 262143328850


def make_powercap(root: Path, zones: dict[str, tuple[str, int]], max_range: int = MAX_RANGE_UJ) -> Path:
    """``zones``: directory name -> (zone name, energy_uj), e.g. ``{"intel-rapl:0": ("package-0", 5)}``."""
    root.mkdir(parents=True, exist_ok=True)
    for zone, (name, energy) in zones.items():
        d = root / zone
        d.mkdir()
        (d / "name").write_text(name + "\n")
        (d / "energy_uj").write_text(f"{energy}\n")
        (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return root


def set_energy(root: Path, zone: str, energy_uj: int) -> None:
    (root / zone / "energy_uj").write_text(f"{energy_uj}\n")


def install_fake_probe(monkeypatch: pytest.MonkeyPatch, nvml: Any, torch_gpu: Any = None) -> None:
    """Make ``agentsim.hardware`` probe a stated machine, from an empty cache.

    ``nvml``: a ``FakeNVML`` (or None: pynvml is not installed). ``torch_gpu``: the
    ``hardware.Accelerator`` torch's CUDA runtime reports as device 0 (None: a CPU-only torch).
    The probe's cache is restored when the test ends, so no stated machine outlives its test.
    """
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setattr(hardware, "_nvml_cache", None)
    monkeypatch.setattr(hardware, "_torch_cache", {})
    monkeypatch.setattr(hardware, "_ask_torch", lambda index: torch_gpu if index == 0 else None)
