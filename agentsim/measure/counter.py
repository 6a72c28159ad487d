"""Wrapping hardware energy counters (NVML's mJ, RAPL's µJ) read as monotonic totals.

Counters are read through :class:`_Extended`, which unwraps each raw reading into a monotonic total
as it is read; as long as the counter is read at least once per wrap period (every hop reads it),
the run-level reading is right even across several wraps.
"""

from __future__ import annotations

import threading

__all__ = ["MAX_PLAUSIBLE_W"]

#: No single GPU or CPU socket draws more than this; a bigger delta means a counter reset.
MAX_PLAUSIBLE_W = 5000.0


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
