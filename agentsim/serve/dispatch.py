"""One thread owns the backend: requests queue up, and those waiting together go as one batch.

Backends are not thread-safe (llama.cpp's context least of all), so every call goes through a
single worker thread. Requests that arrive while the backend is busy are answered together: with
``generate_batch`` where the backend decodes several sequences at once (``llama``), one after the
other otherwise. The energy meter is read once around each backend call; every request gets its
share by tokens (the kind stays what it was: measured stays measured, the note says attributed).
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from agentsim.backends.base import Backend, GenerationRequest
from agentsim.measure import EnergyReading

__all__ = ["Dispatcher", "Answer"]


@dataclass
class Answer:
    """A backend's answer to one request (or its exception), with the figures taken around it."""

    completion: Any
    error: BaseException | None
    wall_s: float
    reading: EnergyReading
    batch_n: int
    share: float
    batch_wall_s: float


def _share(results: list[Any]) -> list[float]:
    known = [float((r.prompt_tokens or 0) + (r.completion_tokens or 0))
             if not isinstance(r, BaseException) else 0.0 for r in results]
    fill = (sum(known) / len([k for k in known if k > 0])) if any(k > 0 for k in known) else 1.0
    ws = [k if k > 0 else fill for k in known]
    total = sum(ws)
    return [w / total for w in ws]


def _part(reading: EnergyReading, share: float, n: int) -> EnergyReading:
    if n == 1 or reading.joules is None:
        return reading
    note = f"attributed: {share:.4g} of one reading over a batch of {n} requests, by tokens"
    return EnergyReading(joules=reading.joules * share, kind=reading.kind, source=reading.source,
                         resolution_j=None if reading.resolution_j is None else reading.resolution_j * share,
                         note=f"{reading.note}; {note}" if reading.note else note,
                         below_resolution=reading.below_resolution, duration_s=reading.duration_s)


class Dispatcher:
    """Runs ``backend`` calls on one thread; :meth:`submit` returns a future of an :class:`Answer`."""

    def __init__(self, backend: Backend, meter: Any, *, max_batch: int = 8) -> None:
        self.backend = backend
        self.meter = meter
        self.max_batch = max(1, int(max_batch))
        self._batches = type(backend).generate_batch is not Backend.generate_batch
        #: CPU seconds this thread spent inside backend calls (benchmarks/serve_overhead.py)
        self.backend_cpu_s = 0.0
        self._queue: queue.Queue[tuple[GenerationRequest, Future[Answer]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="agentsim-serve-backend", daemon=True)
        self._thread.start()

    def submit(self, request: GenerationRequest) -> Future[Answer]:
        fut: Future[Answer] = Future()
        self._queue.put((request, fut))
        return fut

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            group = [item]
            while len(group) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                group.append(nxt)
            self._call(group)

    def _call(self, group: list[tuple[GenerationRequest, Future[Answer]]]) -> None:
        requests = [r for r, _ in group]
        n = len(requests)
        token = self.meter.begin()
        t0 = time.perf_counter()
        c0 = time.thread_time()
        results: list[Any]
        try:
            if n > 1 and self._batches:
                results = list(self.backend.generate_batch(requests, return_exceptions=True))
            else:
                results = []
                for r in requests:
                    try:
                        results.append(self.backend.generate(r))
                    except Exception as exc:  # noqa: BLE001 - handed to that request
                        results.append(exc)
        except Exception as exc:  # noqa: BLE001 - a failed batch fails each of its requests
            results = [exc] * n
        wall = time.perf_counter() - t0
        self.backend_cpu_s += time.thread_time() - c0
        reading = self.meter.end(token)
        for (_, fut), result, share in zip(group, results, _share(results), strict=True):
            err = result if isinstance(result, BaseException) else None
            fut.set_result(Answer(None if err else result, err, wall * share, _part(reading, share, n), n, share, wall))
