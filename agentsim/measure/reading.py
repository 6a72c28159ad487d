"""What an energy meter returns, and the meter interface every meter implements.

Energy is never blurred: every reading says whether it is ``measured`` (NVML, RAPL),
``estimated`` (with the model that produced it) or ``unavailable`` (joules is None, never 0).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from agentsim.errors import HardwareError

__all__ = ["EnergyKind", "EnergyReading", "UNAVAILABLE", "MeterUnavailable", "EnergyMeter", "UnavailableMeter"]

EnergyKind = Literal["measured", "estimated", "unavailable"]


@dataclass(frozen=True, slots=True)
class EnergyReading:
    """The energy of one interval.

    ``resolution_j`` is the uncertainty of ``joules`` (about one counter update at the observed
    power); ``below_resolution`` says the interval was shorter than the counter's update period,
    so ``joules`` is dominated by when the counter happened to tick, not by the work done (sums
    over many such intervals are still right: consecutive deltas telescope). ``parts`` gives the
    joules per GPU or RAPL domain.
    """

    joules: float | None
    kind: EnergyKind
    source: str | None
    resolution_j: float | None = None
    note: str | None = None
    below_resolution: bool = False
    duration_s: float | None = None
    parts: dict[str, float] | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


UNAVAILABLE = EnergyReading(joules=None, kind="unavailable", source=None)


class MeterUnavailable(HardwareError):
    """The meter asked for cannot run on this machine (no GPU, no RAPL, no permission)."""


class EnergyMeter(ABC):
    """Measures the energy of an interval: ``token = begin()`` ... ``end(token)``.

    ``begin``/``end`` run on the hop's hot path: they only read clocks and counters (a few µs);
    anything slower (power sampling) runs in a background thread.
    """

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
        return {"name": self.name, "kind": "unavailable", "reason": self.reason}
