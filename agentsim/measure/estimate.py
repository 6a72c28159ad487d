"""The labelled estimate (``--energy estimate``): process CPU time x an assumed watts per core.

The number and where it came from are stored with the run. Never called ``measured``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from agentsim.errors import AgentsimError

from .reading import EnergyMeter, EnergyReading

__all__ = ["CPUTimeEstimateMeter", "DEFAULT_WATTS_PER_CORE", "WATTS_PER_CORE_ENV"]

#: Assumed power of one busy CPU core for the ``estimate`` meter, in watts. An order of magnitude,
#: not a measurement: TDP per core is ~4.4 W on an AMD EPYC 7763 (280 W / 64 cores), ~6.8 W on an
#: Intel Xeon Platinum 8380 (270 W / 40) and ~13 W on a desktop Ryzen 7 7700X (105 W / 8).
DEFAULT_WATTS_PER_CORE = 10.0
WATTS_PER_CORE_ENV = "AGENTSIM_CPU_WATTS_PER_CORE"


def _watts_per_core(value: float | str | None, env: dict[str, str]) -> tuple[float, str]:
    if value is not None:
        w, origin = value, "argument"
    elif env.get(WATTS_PER_CORE_ENV):
        w, origin = env[WATTS_PER_CORE_ENV], f"env:{WATTS_PER_CORE_ENV}"
    else:
        return DEFAULT_WATTS_PER_CORE, (
            "default: agentsim's assumed TDP per busy core of current x86 CPUs "
            f"(4.4-13 W); set {WATTS_PER_CORE_ENV} or --energy estimate,watts_per_core=W"
        )
    try:
        watts = float(w)
    except (TypeError, ValueError):
        raise AgentsimError(f"watts per core {w!r} ({origin}) is not a number") from None
    if not 0 < watts < 1000:
        raise AgentsimError(f"watts per core {watts} ({origin}) must be within (0, 1000)")
    return watts, origin


class CPUTimeEstimateMeter(EnergyMeter):
    """An estimate, never a measurement: this process's CPU time x an assumed watts per core.

    CPU time is user + system time of every thread of the process (``time.process_time``), so a
    multi-threaded llama.cpp hop counts all its cores. It leaves out idle/static power, DRAM,
    GPUs, and other processes.
    """

    name = "estimate"
    source = "model:cpu_time*watts_per_core"

    def __init__(self, watts_per_core: float | str | None = None, *, env: dict[str, str] | None = None,
                 cpu_clock: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.watts_per_core, self.origin = _watts_per_core(watts_per_core, dict(os.environ) if env is None else env)
        self.cpu_clock = cpu_clock
        self.clock = clock
        try:
            self.cpu_resolution_s = time.get_clock_info("process_time").resolution
        except ValueError:
            self.cpu_resolution_s = 1e-6

    def begin(self) -> Any:
        return self.clock(), self.cpu_clock()

    def end(self, token: Any) -> EnergyReading:
        t0, c0 = token
        c1 = self.cpu_clock()
        duration = self.clock() - t0
        cpu_s = max(0.0, c1 - c0)
        return EnergyReading(
            joules=cpu_s * self.watts_per_core,
            kind="estimated",
            source=self.source,
            resolution_j=self.cpu_resolution_s * self.watts_per_core,
            note=f"cpu {cpu_s:.6f} s x {self.watts_per_core:g} W/core",
            duration_s=duration,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "estimated",
            "model": "process cpu time (user+sys, all threads) x watts_per_core",
            "watts_per_core": self.watts_per_core,
            "watts_per_core_origin": self.origin,
            "excludes": "idle/static power, DRAM, GPU, other processes",
        }
