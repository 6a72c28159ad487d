"""Timers, energy meters, per-hop peak memory and the machine fingerprint.

Energy is never blurred: every reading says whether it is ``measured`` (NVML, RAPL),
``estimated`` (with the model that produced it) or ``unavailable`` (joules is None, never 0).

Meters (``make_meter(kind)``, ``--energy auto|nvml|rapl|estimate|off``):

* ``nvml``: the GPU's total energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ), read
  before and after each interval, per GPU used. A GPU without the counter is measured by
  integrating ``nvmlDeviceGetPowerUsage`` sampled in a background thread (labelled
  ``nvml:power_sampling``). The counter only moves every few tens of milliseconds; an interval
  shorter than that period is flagged ``below_resolution``.
* ``rapl``: ``/sys/class/powercap`` package and DRAM domains (``energy_uj``, wrapping at
  ``max_energy_range_uj``). Whole-socket energy: it includes every process on the socket.
* ``estimate``: process CPU time (user + system, all threads) x an assumed watts per core; the
  number and where it came from are stored with the run. Never called ``measured``.
* ``auto``: NVML if a GPU counter (or power reading) is usable, else RAPL if readable, else the
  estimate.

Counters are read through :class:`_Extended`, which unwraps each raw reading into a monotonic total
as it is read; as long as the counter is read at least once per wrap period (every hop reads it),
the run-level reading is right even across several wraps.

Hardware boundaries are injectable for tests: ``make_meter("nvml", nvml_module=fake)``,
``make_meter("rapl", powercap_root=tmp_path)``.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from .errors import AgentsimError, HardwareError

EnergyKind = Literal["measured", "estimated", "unavailable"]

__all__ = [
    "EnergyReading",
    "EnergyMeter",
    "UnavailableMeter",
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
]

#: Assumed power of one busy CPU core for the ``estimate`` meter, in watts. An order of magnitude,
#: not a measurement: TDP per core is ~4.4 W on an AMD EPYC 7763 (280 W / 64 cores), ~6.8 W on an
#: Intel Xeon Platinum 8380 (270 W / 40) and ~13 W on a desktop Ryzen 7 7700X (105 W / 8).
DEFAULT_WATTS_PER_CORE = 10.0
WATTS_PER_CORE_ENV = "AGENTSIM_CPU_WATTS_PER_CORE"
#: NVML energy-counter update period to assume when it cannot be calibrated (seconds).
DEFAULT_NVML_PERIOD_S = 0.1
NVML_PERIOD_ENV = "AGENTSIM_NVML_PERIOD_S"
#: RAPL counters update about every millisecond (Intel SDM, vol. 3B, 14.9.1).
RAPL_PERIOD_S = 0.001
#: No single GPU or CPU socket draws more than this; a bigger delta means a counter reset.
_MAX_PLAUSIBLE_W = 5000.0


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


# --------------------------------------------------------------------------------------------
# counters


class _Extended:
    """Turns a wrapping hardware counter into a monotonic total (same unit).

    ``modulus`` is where the raw counter wraps. A backwards step is a wrap only if the wrapped
    delta is possible at ``max_rate`` (raw units per second) since the last read; otherwise it is
    a reset (driver reload, CPU hot-plug): it adds nothing and bumps ``resets``, so a reading that
    spans it is reported unavailable instead of as a huge figure. ``slack`` (raw units) allows for
    a whole counter tick landing in a very short interval.
    """

    def __init__(self, raw: int, modulus: int, now: float, max_rate: float, slack: float) -> None:
        self.last = raw
        self.last_t = now
        self.modulus = modulus
        self.max_rate = max_rate
        self.slack = slack
        self.total = 0
        self.resets = 0
        self.wraps = 0
        self._lock = threading.Lock()

    def update(self, raw: int, now: float) -> tuple[int, int]:
        with self._lock:
            delta = raw - self.last
            if delta < 0:
                wrapped = delta + self.modulus
                if wrapped > self.max_rate * max(0.0, now - self.last_t) + self.slack:
                    self.resets += 1
                    delta = 0
                else:
                    self.wraps += 1
                    delta = wrapped
            self.last, self.last_t = raw, now
            self.total += delta
            return self.total, self.resets


# --------------------------------------------------------------------------------------------
# NVML


def _import_pynvml() -> Any:
    try:
        import pynvml
    except ImportError:
        raise MeterUnavailable(
            "NVML energy needs pynvml, which is not installed", hint="pip install 'agentsim[gpu]'"
        ) from None
    return pynvml


def _visible_gpus(nvml: Any, count: int, env: dict[str, str] | None = None) -> list[int]:
    """NVML indices of the GPUs this process may use (``CUDA_VISIBLE_DEVICES``), else all.

    Integer entries are taken as NVML indices (true with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``);
    ``GPU-<uuid>`` entries are matched against each device's UUID.
    """
    env = os.environ if env is None else env
    raw = env.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return list(range(count))
    out: list[int] = []
    uuids: dict[str, int] | None = None
    for item in (x.strip() for x in raw.split(",")):
        if not item:
            continue
        if item.lstrip("-").isdigit():
            i = int(item)
            if i < 0:
                break  # CUDA stops at the first invalid index
            if i < count:
                out.append(i)
            continue
        if uuids is None:
            uuids = {}
            for i in range(count):
                try:
                    u = nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i))
                    uuids[u.decode() if isinstance(u, bytes) else str(u)] = i
                except nvml.NVMLError:
                    pass
        match = [i for u, i in uuids.items() if u.startswith(item)]
        if match:
            out.append(match[0])
    return out


def _to_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _PowerSampler(threading.Thread):
    """Samples GPU power in the background and integrates it (trapezoid rule).

    ``energy_at(t)`` is O(1): the last cumulative energy plus the last power times the time since
    that sample, so ``begin``/``end`` never wait for NVML.
    """

    def __init__(self, read_watts: Callable[[], list[float]], interval_s: float,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(name="agentsim-power-sampler", daemon=True)
        self.read_watts = read_watts
        self.interval_s = interval_s
        self.clock = clock
        self._stop_event = threading.Event()
        t = clock()
        p = read_watts()
        # (time of last sample, cumulative joules per GPU, last power per GPU, failed samples,
        # samples taken): replaced whole, so readers on other threads see a consistent tuple
        self.state: tuple[float, list[float], list[float], int, int] = (t, [0.0] * len(p), p, 0, 1)

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        t_prev, cum, p_prev, errors, n = self.state
        try:
            p = self.read_watts()
        except Exception:  # noqa: BLE001 - a failed sample is counted; readings spanning it fail
            self.state = (t_prev, cum, p_prev, errors + 1, n)
            return
        t = self.clock()
        dt = t - t_prev
        cum = [c + (a + b) / 2 * dt for c, a, b in zip(cum, p_prev, p, strict=True)]
        self.state = (t, cum, p, errors, n + 1)

    @property
    def samples(self) -> int:
        return self.state[4]

    def energy_at(self, t: float) -> tuple[list[float], list[float], int, int]:
        """Joules per GPU up to ``t``, last power, failed and taken sample counts."""
        t_last, cum, p, errors, n = self.state
        dt = max(0.0, t - t_last)
        return [c + w * dt for c, w in zip(cum, p, strict=True)], p, errors, n

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=2.0)


@dataclass
class _GPU:
    index: int
    handle: Any
    name: str
    method: str  # "counter" | "sampling"
    counter: _Extended | None = None
    last_power_w: float = 0.0


class NVMLMeter(EnergyMeter):
    """GPU energy through NVML, per GPU used (see the module docstring)."""

    name = "nvml"
    COUNTER_SOURCE = "nvml:total_energy_counter"
    SAMPLING_SOURCE = "nvml:power_sampling"
    _MODULUS = 2**64  # the counter is an unsigned long long (mJ)

    def __init__(
        self,
        nvml_module: Any = None,
        *,
        gpus: Sequence[int] | None = None,
        counter_period_s: float | None = None,
        sample_interval_s: float = 0.02,
        env: dict[str, str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        nvml = nvml_module if nvml_module is not None else _import_pynvml()
        self.nvml = nvml
        self.clock = clock
        self.sample_interval_s = sample_interval_s
        env = dict(os.environ) if env is None else env
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            raise MeterUnavailable(
                f"NVML cannot start: {type(exc).__name__}: {exc}",
                hint="no NVIDIA driver/GPU here; use --energy auto, rapl or estimate",
            ) from None
        self._initialised = True
        self._sampler: _PowerSampler | None = None
        self.skipped: dict[int, str] = {}
        try:
            count = int(nvml.nvmlDeviceGetCount())
            indices = list(gpus) if gpus is not None else _visible_gpus(nvml, count, env)
            self.gpus: list[_GPU] = []
            for i in indices:
                if not 0 <= i < count:
                    raise MeterUnavailable(f"NVML: no GPU {i} (this machine has {count})")
                self._add_gpu(i)
            if not self.gpus:
                why = "; ".join(f"GPU {i}: {r}" for i, r in self.skipped.items()) or f"{count} GPUs visible"
                raise MeterUnavailable(f"NVML: no GPU with an energy counter or power reading ({why})")
            self.counter_period_s, self.period_origin = self._period(counter_period_s, env)
            sampled = [g for g in self.gpus if g.method == "sampling"]
            if sampled:
                self._sampler = _PowerSampler(lambda: [self._power_w(g) for g in sampled],
                                              sample_interval_s, clock)
                self._sampled = sampled
                self._sampler.start()
        except BaseException:
            self.close()
            raise

    # setup ------------------------------------------------------------------------------
    def _add_gpu(self, index: int) -> None:
        nvml = self.nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = _to_str(nvml.nvmlDeviceGetName(handle))
        except nvml.NVMLError as exc:
            self.skipped[index] = f"{type(exc).__name__}: {exc}"
            return
        try:
            raw = int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
            counter = _Extended(raw, self._MODULUS, self.clock(), _MAX_PLAUSIBLE_W * 1e3, _MAX_PLAUSIBLE_W * 1e3)
            gpu = _GPU(index, handle, name, "counter", counter)
        except nvml.NVMLError as exc:
            try:
                self._power_w_handle(handle)
            except nvml.NVMLError as exc2:
                self.skipped[index] = f"no energy counter ({type(exc).__name__}), no power reading ({type(exc2).__name__})"
                return
            gpu = _GPU(index, handle, name, "sampling")
        try:
            gpu.last_power_w = self._power_w_handle(handle)
        except nvml.NVMLError:
            gpu.last_power_w = 0.0
        self.gpus.append(gpu)

    def _power_w_handle(self, handle: Any) -> float:
        return float(self.nvml.nvmlDeviceGetPowerUsage(handle)) / 1000.0  # mW -> W

    def _power_w(self, gpu: _GPU) -> float:
        return self._power_w_handle(gpu.handle)

    def _period(self, given: float | None, env: dict[str, str]) -> tuple[float, str]:
        """The counter's update period: given, from the environment, calibrated, or assumed."""
        if given is not None:
            return float(given), "argument"
        if env.get(NVML_PERIOD_ENV):
            try:
                return float(env[NVML_PERIOD_ENV]), f"env:{NVML_PERIOD_ENV}"
            except ValueError:
                raise AgentsimError(f"{NVML_PERIOD_ENV}={env[NVML_PERIOD_ENV]!r} is not a number") from None
        counters = [g for g in self.gpus if g.method == "counter"]
        if counters:
            measured = self._calibrate(counters[0])
            if measured is not None:
                return measured, "calibrated"
        return DEFAULT_NVML_PERIOD_S, "assumed (could not calibrate)"

    def _calibrate(self, gpu: _GPU, budget_s: float = 0.6, poll_s: float = 0.0005) -> float | None:
        """Poll the counter and time its changes: the median gap between ticks."""
        nvml = self.nvml
        ticks: list[float] = []
        t_end = self.clock() + budget_s
        try:
            last = int(nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
            for _ in range(int(budget_s / poll_s) + 1):  # bounded even if the clock stalls
                if self.clock() >= t_end or len(ticks) >= 5:
                    break
                time.sleep(poll_s)
                v = int(nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
                if v != last:
                    ticks.append(self.clock())
                    last = v
        except nvml.NVMLError:
            return None
        gaps = sorted(b - a for a, b in zip(ticks, ticks[1:], strict=False))
        return gaps[len(gaps) // 2] if gaps else None

    # measuring --------------------------------------------------------------------------
    def _read_counters(self, now: float) -> list[tuple[int, int] | None]:
        out: list[tuple[int, int] | None] = []
        for g in self.gpus:
            if g.counter is None:
                out.append(None)
                continue
            try:
                raw = int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(g.handle))
            except self.nvml.NVMLError:
                out.append((-1, -1))
                continue
            out.append(g.counter.update(raw, now))
        return out

    def begin(self) -> Any:
        t = self.clock()
        counters = self._read_counters(t)
        sampled = self._sampler.energy_at(t) if self._sampler is not None else None
        return t, counters, sampled

    def end(self, token: Any) -> EnergyReading:
        t0, c0, s0 = token
        t1 = self.clock()
        c1 = self._read_counters(t1)
        duration = t1 - t0
        parts: dict[str, float] = {}
        problems: list[str] = []
        resolution = 0.0
        methods = set()
        for g, a, b in zip(self.gpus, c0, c1, strict=True):
            if g.method != "counter":
                continue
            methods.add(self.COUNTER_SOURCE)
            assert a is not None and b is not None
            if a[0] < 0 or b[0] < 0:
                problems.append(f"GPU {g.index}: energy counter read failed")
                continue
            if b[1] != a[1]:
                problems.append(f"GPU {g.index}: energy counter went backwards (driver reset?)")
                continue
            joules = (b[0] - a[0]) / 1000.0
            # a short interval can still see one whole counter tick
            if joules > _MAX_PLAUSIBLE_W * (duration + self.counter_period_s):
                problems.append(f"GPU {g.index}: implausible counter jump of {joules:.1f} J")
                continue
            if duration >= self.counter_period_s and duration > 0:
                g.last_power_w = joules / duration
            parts[f"gpu{g.index}"] = joules
            resolution += g.last_power_w * self.counter_period_s
        reasons: list[str] = []
        if any(g.method == "counter" for g in self.gpus) and duration < self.counter_period_s:
            reasons.append(f"interval {duration * 1000:.1f} ms is below the "
                           f"{self.counter_period_s * 1000:.0f} ms counter update period")
        if self._sampler is not None:
            methods.add(self.SAMPLING_SOURCE)
            e1, watts, err1, n1 = self._sampler.energy_at(t1)
            e0, _, err0, n0 = s0
            if err1 != err0:
                problems.append(f"{err1 - err0} power samples failed during the interval")
            else:
                for g, a, b, w in zip(self._sampled, e0, e1, watts, strict=True):
                    parts[f"gpu{g.index}"] = b - a
                    resolution += w * self.sample_interval_s
            if n1 - n0 < 2:  # the figure is mostly extrapolated from the last power sample
                reasons.append(f"{n1 - n0} power samples in the interval "
                               f"(one every {self.sample_interval_s * 1000:.0f} ms)")
        source = "+".join(sorted(methods, reverse=True))
        if problems:
            return EnergyReading(None, "unavailable", source, note="; ".join(problems), duration_s=duration)
        below = bool(reasons)
        note = "; ".join(reasons) or None
        return EnergyReading(
            joules=sum(parts.values()),
            kind="measured",
            source=source,
            resolution_j=resolution,
            note=note,
            below_resolution=below,
            duration_s=duration,
            parts=parts,
        )

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None
        if getattr(self, "_initialised", False):
            self._initialised = False
            try:
                self.nvml.nvmlShutdown()
            except self.nvml.NVMLError:
                pass

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "measured",
            "gpus": [{"index": g.index, "name": g.name, "method": g.method} for g in self.gpus],
            "skipped": {str(k): v for k, v in self.skipped.items()},
            "counter_period_s": self.counter_period_s,
            "counter_period_origin": self.period_origin,
            "sample_interval_s": self.sample_interval_s if self._sampler is not None else None,
            "scope": "whole GPU (includes other processes on it)",
        }


# --------------------------------------------------------------------------------------------
# RAPL


_ZONE_RE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")


@dataclass
class _Domain:
    label: str
    path: Path
    counter: _Extended
    modulus: int
    last_power_w: float = 0.0


class RAPLMeter(EnergyMeter):
    """CPU package (+ DRAM) energy through the Linux powercap interface."""

    name = "rapl"

    def __init__(
        self,
        powercap_root: str | os.PathLike[str] = "/sys/class/powercap",
        *,
        domains: Sequence[str] = ("package", "dram"),
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        root = Path(powercap_root)
        self.root = root
        self.clock = clock
        if not root.is_dir():
            raise MeterUnavailable(
                f"RAPL: {root} does not exist (no powercap driver: a VM, a container or a CPU without RAPL)",
                hint="use --energy estimate (labelled as an estimate) or auto",
            )
        zones: dict[str, str] = {}
        for d in sorted(root.iterdir(), key=lambda p: p.name):
            if _ZONE_RE.match(d.name) and (d / "name").exists():
                try:
                    zones[d.name] = (d / "name").read_text().strip()
                except OSError:
                    continue
        wanted: list[tuple[str, Path]] = []
        for zone, zname in zones.items():
            m = _ZONE_RE.match(zone)
            assert m is not None
            if m.group(2) is None:
                if any(zname.startswith(w) for w in domains):
                    wanted.append((zname, root / zone))
            elif zname in domains and "package" not in zname:
                parent = zones.get(f"intel-rapl:{m.group(1)}", f"intel-rapl:{m.group(1)}")
                wanted.append((f"{parent}/{zname}", root / zone))
        if not wanted:
            raise MeterUnavailable(f"RAPL: no package or dram zone under {root}")
        self.domains: list[_Domain] = []
        denied: list[str] = []
        for label, path in wanted:
            try:
                raw = int((path / "energy_uj").read_text())
                modulus = int((path / "max_energy_range_uj").read_text())
            except PermissionError:
                denied.append(label)
                continue
            except (OSError, ValueError):
                continue
            counter = _Extended(raw, modulus, clock(), _MAX_PLAUSIBLE_W * 1e6, _MAX_PLAUSIBLE_W * 1e6)
            self.domains.append(_Domain(label, path, counter, modulus))
        if not self.domains:
            if denied:
                raise MeterUnavailable(
                    f"RAPL: {', '.join(denied)} energy_uj is readable by root only "
                    "(Linux >= 5.10, CVE-2020-8694)",
                    hint="sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj, or use --energy estimate",
                )
            raise MeterUnavailable(f"RAPL: no readable energy_uj under {root}")
        self.source = "rapl:" + "+".join(d.label for d in self.domains)

    def _read(self, now: float) -> list[tuple[int, int]]:
        out = []
        for d in self.domains:
            try:
                raw = int((d.path / "energy_uj").read_text())
            except (OSError, ValueError):
                out.append((-1, -1))
                continue
            out.append(d.counter.update(raw, now))
        return out

    def begin(self) -> Any:
        t = self.clock()
        return t, self._read(t)

    def end(self, token: Any) -> EnergyReading:
        t0, c0 = token
        t1 = self.clock()
        c1 = self._read(t1)
        duration = t1 - t0
        parts: dict[str, float] = {}
        problems: list[str] = []
        resolution = 0.0
        for d, a, b in zip(self.domains, c0, c1, strict=True):
            if a[0] < 0 or b[0] < 0:
                problems.append(f"{d.label}: energy_uj read failed")
                continue
            if a[1] != b[1]:
                problems.append(f"{d.label}: energy_uj went backwards (counter reset)")
                continue
            joules = (b[0] - a[0]) / 1e6
            if duration >= RAPL_PERIOD_S:
                d.last_power_w = joules / duration
            parts[d.label] = joules
            resolution += d.last_power_w * RAPL_PERIOD_S + 1e-6
        if problems:
            return EnergyReading(None, "unavailable", self.source, note="; ".join(problems), duration_s=duration)
        below = duration < RAPL_PERIOD_S
        return EnergyReading(
            joules=sum(parts.values()),
            kind="measured",
            source=self.source,
            resolution_j=resolution,
            note=f"interval {duration * 1e6:.0f} µs is below RAPL's ~1 ms update period" if below else None,
            below_resolution=below,
            duration_s=duration,
            parts=parts,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "measured",
            "root": str(self.root),
            "domains": [{"label": d.label, "max_energy_range_uj": d.modulus} for d in self.domains],
            "scope": "whole CPU socket(s) and DRAM (includes other processes)",
        }


# --------------------------------------------------------------------------------------------
# estimate


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


# --------------------------------------------------------------------------------------------
# choosing a meter


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


# --------------------------------------------------------------------------------------------
# per-hop peak memory


class PeakRSS:
    """Peak resident memory of this process during one hop, for a few µs per hop.

    On Linux, writing ``5`` to ``/proc/self/clear_refs`` resets the RSS high-water mark (~1 µs
    with the file kept open), and ``getrusage`` reads it back (~2 µs): the peak of *this hop*.
    Elsewhere the reading is the process's lifetime peak up to the hop's end (``per_hop`` False).
    """

    def __init__(self, clear_refs: str = "/proc/self/clear_refs") -> None:
        self._fd: int | None = None
        self.per_hop = False
        try:
            import resource

            self._getrusage: Callable[[], Any] | None = lambda: resource.getrusage(resource.RUSAGE_SELF)
        except ImportError:  # Windows
            self._getrusage = None
        try:
            self._fd = os.open(clear_refs, os.O_WRONLY)
            os.write(self._fd, b"5")
            self.per_hop = True
        except OSError:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = None
        self._scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere

    def begin(self) -> None:
        if self._fd is not None:
            try:
                os.write(self._fd, b"5")
            except OSError:
                self.per_hop = False

    def end(self) -> int | None:
        if self._getrusage is None:
            return None
        return int(self._getrusage().ru_maxrss) * self._scale

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()


class GPUPeakMemory:
    """Peak GPU memory allocated by torch during a hop, when torch's CUDA is already in use.

    Never imports torch: it looks in ``sys.modules`` and asks only when CUDA is initialised.
    """

    def _cuda(self) -> Any:
        torch = sys.modules.get("torch")
        if torch is None:
            return None
        cuda = getattr(torch, "cuda", None)
        try:
            return cuda if cuda is not None and cuda.is_initialized() else None
        except Exception:  # noqa: BLE001
            return None

    def begin(self) -> None:
        cuda = self._cuda()
        if cuda is not None:
            try:
                cuda.reset_peak_memory_stats()
            except Exception:  # noqa: BLE001
                pass

    def end(self) -> int | None:
        cuda = self._cuda()
        if cuda is None:
            return None
        try:
            return int(cuda.max_memory_allocated())
        except Exception:  # noqa: BLE001
            return None


# --------------------------------------------------------------------------------------------
# machine fingerprint


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for dist in ("agentsim", "torch", "transformers", "llama-cpp-python", "gguf", "numpy", "textual",
                 "nvidia-ml-py"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def machine_info(*, nvml_module: Any = None) -> dict[str, Any]:
    """A fingerprint of the machine a run was made on (CPU, RAM, GPUs, driver, versions)."""
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
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
    gpus, driver, cuda = _nvml_gpus(nvml_module)
    if not gpus:
        gpus = _torch_gpus()
    info["gpus"], info["gpu_driver"], info["cuda_driver"] = gpus, driver, cuda
    info["versions"] = package_versions()
    return info


def _usable_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _nvml_gpus(nvml_module: Any = None) -> tuple[list[dict[str, Any]], str | None, str | None]:
    try:
        nvml = nvml_module if nvml_module is not None else _import_pynvml()
    except MeterUnavailable:
        return [], None, None
    try:
        nvml.nvmlInit()
    except nvml.NVMLError:
        return [], None, None
    gpus: list[dict[str, Any]] = []
    driver = cuda = None
    try:
        try:
            driver = _to_str(nvml.nvmlSystemGetDriverVersion())
        except nvml.NVMLError:
            pass
        try:
            v = int(nvml.nvmlSystemGetCudaDriverVersion())
            cuda = f"{v // 1000}.{v % 1000 // 10}"
        except nvml.NVMLError:
            pass
        for i in range(int(nvml.nvmlDeviceGetCount())):
            gpu: dict[str, Any] = {"index": i}
            try:
                h = nvml.nvmlDeviceGetHandleByIndex(i)
                gpu["name"] = _to_str(nvml.nvmlDeviceGetName(h))
            except nvml.NVMLError as exc:
                gpu["error"] = str(exc)
                gpus.append(gpu)
                continue
            probes: dict[str, Callable[[Any], Any]] = {
                "memory_bytes": lambda h: int(nvml.nvmlDeviceGetMemoryInfo(h).total),
                "compute_capability": lambda h: "%d.%d" % tuple(nvml.nvmlDeviceGetCudaComputeCapability(h)),
                "uuid": lambda h: _to_str(nvml.nvmlDeviceGetUUID(h)),
                "energy_counter": lambda h: nvml.nvmlDeviceGetTotalEnergyConsumption(h) is not None,
            }
            for key, fn in probes.items():
                try:
                    gpu[key] = fn(h)
                except nvml.NVMLError:
                    gpu[key] = False if key == "energy_counter" else None
            gpus.append(gpu)
    except nvml.NVMLError:
        pass
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass
    return gpus, driver, cuda


def _torch_gpus() -> list[dict[str, Any]]:
    """GPUs from torch, only if torch is already imported (importing it costs seconds)."""
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


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None
