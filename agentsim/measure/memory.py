"""Per-hop peak memory: this process's resident set, and torch's CUDA allocations."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["PeakRSS", "GPUPeakMemory"]


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
