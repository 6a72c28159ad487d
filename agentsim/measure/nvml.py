"""GPU energy through NVML (``--energy nvml``), per GPU used.

The GPU's total energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ) is read before and
after each interval, per GPU used. A GPU without the counter is measured by integrating
``nvmlDeviceGetPowerUsage`` sampled in a background thread (labelled ``nvml:power_sampling``).
The counter only moves every few tens of milliseconds; an interval shorter than that period is
flagged ``below_resolution``.

The NVML module is injectable for tests: ``NVMLMeter(nvml_module=fake)``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentsim.errors import AgentsimError
from agentsim.hardware import nvml_string, pynvml_module

from .counter import MAX_PLAUSIBLE_W, _Extended
from .reading import EnergyMeter, EnergyReading, MeterUnavailable

__all__ = ["NVMLMeter", "DEFAULT_NVML_PERIOD_S", "NVML_PERIOD_ENV"]

#: NVML energy-counter update period to assume when it cannot be calibrated (seconds).
DEFAULT_NVML_PERIOD_S = 0.1
NVML_PERIOD_ENV = "AGENTSIM_NVML_PERIOD_S"


def _import_pynvml() -> Any:
    pynvml = pynvml_module()
    if pynvml is None:
        raise MeterUnavailable(
            "NVML energy needs pynvml, which is not installed", hint="pip install 'agentsim[gpu]'"
        )
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
                    uuids[nvml_string(u)] = i
                except nvml.NVMLError:
                    pass
        match = [i for u, i in uuids.items() if u.startswith(item)]
        if match:
            out.append(match[0])
    return out


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
            name = nvml_string(nvml.nvmlDeviceGetName(handle))
        except nvml.NVMLError as exc:
            self.skipped[index] = f"{type(exc).__name__}: {exc}"
            return
        try:
            raw = int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
            counter = _Extended(raw, self._MODULUS, self.clock(), MAX_PLAUSIBLE_W * 1e3, MAX_PLAUSIBLE_W * 1e3)
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
            if joules > MAX_PLAUSIBLE_W * (duration + self.counter_period_s):
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
