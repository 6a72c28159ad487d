"""Energy meters and per-hop peak memory; every public name is importable from here.

Energy is never blurred: every reading says whether it is ``measured`` (NVML, RAPL),
``estimated`` (with the model that produced it) or ``unavailable`` (joules is None, never 0).

=================  ===========================================================================
module             what it holds
=================  ===========================================================================
``reading``        :class:`EnergyReading`, the :class:`EnergyMeter` interface, ``off``
``counter``        wrapping hardware counters read as monotonic totals
``nvml``           :class:`NVMLMeter`: GPU energy counter, or sampled power
``rapl``           :class:`RAPLMeter`: CPU package and DRAM through powercap sysfs
``estimate``       :class:`CPUTimeEstimateMeter`: CPU time x watts per core, labelled estimated
``choose``         :func:`make_meter`: ``--energy auto|nvml|rapl|estimate|off``
``memory``         :class:`PeakRSS`, :class:`GPUPeakMemory`: per-hop peak memory
=================  ===========================================================================

The machine fingerprint (:func:`machine_info`) lives in :mod:`agentsim.hardware`, the one device
probe; it is re-exported here for the engine.

Hardware boundaries are injectable for tests: ``make_meter("nvml", nvml_module=fake)``,
``make_meter("rapl", powercap_root=tmp_path)``.
"""

from __future__ import annotations

from agentsim.hardware import machine_info, package_versions

from .choose import make_meter
from .estimate import DEFAULT_WATTS_PER_CORE, WATTS_PER_CORE_ENV, CPUTimeEstimateMeter
from .memory import GPUPeakMemory, PeakRSS
from .nvml import DEFAULT_NVML_PERIOD_S, NVML_PERIOD_ENV, NVMLMeter
from .rapl import RAPL_PERIOD_S, RAPLMeter
from .reading import (
    UNAVAILABLE,
    EnergyKind,
    EnergyMeter,
    EnergyReading,
    MeterUnavailable,
    UnavailableMeter,
)

__all__ = [
    "EnergyKind",
    "EnergyReading",
    "EnergyMeter",
    "UnavailableMeter",
    "UNAVAILABLE",
    "NVMLMeter",
    "RAPLMeter",
    "CPUTimeEstimateMeter",
    "MeterUnavailable",
    "PeakRSS",
    "GPUPeakMemory",
    "make_meter",
    "machine_info",
    "package_versions",
    "DEFAULT_WATTS_PER_CORE",
    "WATTS_PER_CORE_ENV",
    "DEFAULT_NVML_PERIOD_S",
    "NVML_PERIOD_ENV",
    "RAPL_PERIOD_S",
]
