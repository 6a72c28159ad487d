"""Timers, energy meters and the machine fingerprint.

Energy is never blurred: every reading says whether it is ``measured`` (NVML, RAPL),
``estimated`` (with the model that produced it) or ``unavailable`` (joules is None, never 0).
"""

from __future__ import annotations

import os
import platform
import sys
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any, Literal

EnergyKind = Literal["measured", "estimated", "unavailable"]

__all__ = [
    "EnergyReading",
    "EnergyMeter",
    "UnavailableMeter",
    "make_meter",
    "machine_info",
    "package_versions",
]


@dataclass(frozen=True)
class EnergyReading:
    joules: float | None
    kind: EnergyKind
    source: str | None
    resolution_j: float | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


UNAVAILABLE = EnergyReading(joules=None, kind="unavailable", source=None)


class EnergyMeter(ABC):
    """Measures the energy of an interval: ``token = begin()`` ... ``end(token)``."""

    name: str = "meter"

    @abstractmethod
    def begin(self) -> Any: ...

    @abstractmethod
    def end(self, token: Any) -> EnergyReading: ...

    def close(self) -> None:  # noqa: B027
        pass

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


class UnavailableMeter(EnergyMeter):
    """Nothing can be measured or estimated: every reading is ``unavailable``."""

    name = "off"

    def __init__(self, reason: str = "energy measurement off") -> None:
        self.reason = reason

    def begin(self) -> Any:
        return None

    def end(self, token: Any) -> EnergyReading:
        return EnergyReading(joules=None, kind="unavailable", source=None, note=self.reason)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "reason": self.reason}


def make_meter(kind: str = "auto", **kwargs: Any) -> EnergyMeter:
    """The energy meter for ``kind`` (auto | nvml | rapl | estimate | off)."""
    if kind in ("off", "auto"):
        return UnavailableMeter("energy measurement off" if kind == "off" else "no energy meter")
    from .errors import AgentsimError

    raise AgentsimError(f"unknown energy meter {kind!r}", hint="auto, nvml, rapl, estimate or off")


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for dist in ("agentsim", "torch", "transformers", "llama-cpp-python", "gguf", "numpy", "textual"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def machine_info() -> dict[str, Any]:
    """A fingerprint of the machine a run was made on."""
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": [],
    }
    try:
        import psutil

        info["ram_bytes"] = psutil.virtual_memory().total
    except Exception:  # noqa: BLE001
        info["ram_bytes"] = None
    info["versions"] = package_versions()
    return info


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None
