"""Choosing a meter: ``make_meter(kind)``, ``--energy auto|nvml|rapl|estimate|off``.

``auto`` takes NVML if a GPU counter (or power reading) is usable, else RAPL if readable, else
the estimate, and records why the better ones were not used.
"""

from __future__ import annotations

from typing import Any

from agentsim.errors import AgentsimError

from .estimate import CPUTimeEstimateMeter
from .nvml import NVMLMeter
from .rapl import RAPLMeter
from .reading import EnergyMeter, EnergyReading, MeterUnavailable, UnavailableMeter

__all__ = ["make_meter"]


class _AutoDescribed(EnergyMeter):
    """Wraps the meter ``auto`` chose, recording why the better ones were not used."""

    def __init__(self, inner: EnergyMeter, skipped: dict[str, str]) -> None:
        self.inner = inner
        self.skipped = skipped
        self.name = inner.name

    def begin(self) -> Any:
        return self.inner.begin()

    def end(self, token: Any) -> EnergyReading:
        return self.inner.end(token)

    def close(self) -> None:
        self.inner.close()

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "requested": "auto", "not_used": dict(self.skipped)}


def _parse_kind(kind: str) -> tuple[str, dict[str, str]]:
    """``"estimate,watts_per_core=12"`` -> ("estimate", {"watts_per_core": "12"})."""
    name, *rest = [p.strip() for p in kind.split(",")]
    opts: dict[str, str] = {}
    for item in rest:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise AgentsimError(f"bad energy option {item!r} in {kind!r}", hint="e.g. estimate,watts_per_core=12")
        opts[key.strip()] = value.strip()
    return name.lower(), opts


_OPTIONS = {
    "nvml": {"counter_period_s": float, "sample_interval_s": float},
    "rapl": {"powercap_root": str},
    "estimate": {"watts_per_core": float},
}


def make_meter(kind: str = "auto", **kwargs: Any) -> EnergyMeter:
    """The energy meter for ``kind`` (auto | nvml | rapl | estimate | off).

    Options may follow the kind (``estimate,watts_per_core=12``) or come as keyword arguments;
    tests inject the hardware boundary: ``nvml_module=``, ``powercap_root=``.
    An explicit ``nvml`` or ``rapl`` that cannot run raises :class:`MeterUnavailable`.
    """
    name, opts = _parse_kind(kind or "auto")
    if name not in ("auto", "nvml", "rapl", "estimate", "off"):
        raise AgentsimError(f"unknown energy meter {kind!r}", hint="auto, nvml, rapl, estimate or off")
    for key, value in opts.items():
        conv = _OPTIONS.get(name, {}).get(key)
        if conv is None:
            raise AgentsimError(f"energy meter {name!r} has no option {key!r}")
        try:
            kwargs[key] = conv(value)
        except ValueError:
            raise AgentsimError(f"energy option {key}={value!r} is not a number") from None
    if name == "off":
        return UnavailableMeter("energy measurement off (--energy off)")
    if name == "nvml":
        return NVMLMeter(**_pick(kwargs, "nvml_module", "gpus", "counter_period_s", "sample_interval_s", "env",
                                      "clock"))
    if name == "rapl":
        return RAPLMeter(**_pick(kwargs, "powercap_root", "domains", "clock"))
    if name == "estimate":
        return CPUTimeEstimateMeter(**_pick(kwargs, "watts_per_core", "env", "cpu_clock", "clock"))
    skipped: dict[str, str] = {}
    for candidate in ("nvml", "rapl"):
        try:
            return _AutoDescribed(make_meter(candidate, **kwargs), skipped)
        except MeterUnavailable as exc:
            skipped[candidate] = exc.message
    return _AutoDescribed(CPUTimeEstimateMeter(**_pick(kwargs, "watts_per_core", "env")), skipped)


def _pick(kwargs: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: kwargs[k] for k in names if k in kwargs}

