"""CPU package (+ DRAM) energy through the Linux powercap interface (``--energy rapl``).

``/sys/class/powercap`` package and DRAM domains (``energy_uj``, wrapping at
``max_energy_range_uj``). Whole-socket energy: it includes every process on the socket.
The sysfs root is injectable for tests: ``RAPLMeter(powercap_root=tmp_path)``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .counter import MAX_PLAUSIBLE_W, _Extended
from .reading import EnergyMeter, EnergyReading, MeterUnavailable

__all__ = ["RAPLMeter", "RAPL_PERIOD_S"]

#: RAPL counters update about every millisecond (Intel SDM, vol. 3B, 14.9.1).
RAPL_PERIOD_S = 0.001

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
            counter = _Extended(raw, modulus, clock(), MAX_PLAUSIBLE_W * 1e6, MAX_PLAUSIBLE_W * 1e6)
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
