"""Limits on what a scenario file may cost: time, memory, nesting.

Scenario files are data that people share, so loading and running one must end, and end with a
clear message, whatever the file holds. Every template render and expression evaluation runs
under :func:`guard` (a CPU-time budget, enforced by a watchdog thread that stops the evaluation),
the sandbox in :mod:`agentsim.expr` checks sizes before it builds big strings, lists or numbers,
the YAML loader bounds alias expansion and nesting, and regex parsing has a timeout.

The defaults suit files from strangers. For files you trust, lift them with ``--trust`` on
``agentsim validate`` / ``agentsim run`` or ``AGENTSIM_TRUST=1``, or set single ones with
``AGENTSIM_LIMITS=render_s=10,render_bytes=5000000``. Changed limits are always announced
(:func:`override_note`); never silently.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any

from agentsim.errors import ScenarioError

__all__ = [
    "Limits",
    "DEFAULTS",
    "LIMIT_HELP",
    "LimitExceeded",
    "current",
    "configure",
    "override_note",
    "parse_limits",
    "guard",
    "charge",
    "add_trust_argument",
    "apply_trust",
]

ENV_TRUST = "AGENTSIM_TRUST"
ENV_LIMITS = "AGENTSIM_LIMITS"


@dataclass(frozen=True)
class Limits:
    """Every limit, by the name ``AGENTSIM_LIMITS`` uses; ``None`` means no limit."""

    #: CPU seconds one template render or expression evaluation may take
    render_s: float | None = 2.0
    #: characters one render may output, and items/characters of any string or list a template
    #: or expression builds
    render_bytes: int | None = 1_000_000
    #: bits of any integer a template or expression computes (``**``, ``*``)
    int_bits: int | None = 14_000  # under Python's 4,300-digit limit for writing an int as text
    #: nesting of macro calls (recursion) in a template
    depth: int | None = 64
    #: loop iterations (``range`` items) one render or evaluation may ask for
    loop_items: int | None = 10_000_000
    #: size (characters of JSON) of one value stored in the database: a variable, an expected
    #: answer, the scenario's expanded definition
    value_bytes: int | None = 1_000_000
    #: seconds one regex parse of a completion may take
    regex_s: float | None = 1.0
    #: YAML aliases (``*name``) in one file
    yaml_aliases: int | None = 1_000
    #: what a YAML file's aliases may add to it once expanded (nodes + characters of scalars)
    yaml_expanded: int | None = 1_000_000
    #: nesting depth of YAML collections
    yaml_depth: int | None = 64
    #: bytes of one scenario file
    file_bytes: int | None = 5_000_000


DEFAULTS = Limits()
TRUSTED = Limits(**{f.name: None for f in fields(Limits)})

LIMIT_HELP: dict[str, str] = {
    "render_s": "CPU seconds per template render or expression evaluation",
    "render_bytes": "characters per rendered template, and per string or list a template builds",
    "int_bits": "bits per integer a template or expression computes",
    "depth": "nesting of macro calls in a template",
    "loop_items": "loop iterations (range items) per render or evaluation",
    "value_bytes": "JSON characters per value stored in the database",
    "regex_s": "seconds per regex parse of a completion",
    "yaml_aliases": "YAML aliases per file",
    "yaml_expanded": "what aliases may add to a YAML file once expanded (nodes + characters)",
    "yaml_depth": "nesting depth of YAML collections",
    "file_bytes": "bytes per scenario file",
}

_FIELDS = {f.name: f for f in fields(Limits)}
_override: Limits | None = None
_override_lock = threading.Lock()


class LimitExceeded(ScenarioError):
    """A scenario exceeded one of the :class:`Limits`; ``limit`` is its name."""

    def __init__(self, message: str, *, limit: str, **where: Any) -> None:
        self.limit = limit
        hint = where.pop("hint", None) or raise_hint(limit)
        super().__init__(message, hint=hint, **where)

    def located(self, *, source: str | None = None, line: int | None = None, hop: str | None = None,
                field: str | None = None) -> LimitExceeded:
        """The same error with its place in the scenario filled in (what is known already stays)."""
        return LimitExceeded(
            self.detail, limit=self.limit, source=self.source or source, line=self.line or line,
            hop=self.hop or hop, field=self.field or field, hint=self.hint,
        )


def raise_hint(limit: str) -> str:
    return (f"for a file you trust: --trust (or {ENV_TRUST}=1), or raise this one with "
            f"{ENV_LIMITS}={limit}=N")


def _number(name: str, text: str) -> float | int | None:
    if text.strip().lower() in ("none", "off", "inf", "unlimited"):
        return None
    kind = _FIELDS[name].type
    try:
        value: float | int = float(text) if "float" in str(kind) else int(text.replace("_", ""))
    except ValueError:
        raise ScenarioError(f"{ENV_LIMITS}: {name}={text!r} is not a number (or 'off')") from None
    if value <= 0:
        raise ScenarioError(f"{ENV_LIMITS}: {name}={text!r} must be positive (or 'off')")
    return value


def parse_limits(spec: str, base: Limits = DEFAULTS) -> Limits:
    """``"render_s=10,render_bytes=5000000"`` applied over ``base``; a value of ``off`` lifts one."""
    changes: dict[str, Any] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in _FIELDS:
            raise ScenarioError(
                f"{ENV_LIMITS}: {item!r} is not NAME=VALUE with a known limit",
                hint="limits: " + ", ".join(_FIELDS),
            )
        changes[name] = _number(name, value)
    return replace(base, **changes)


def _from_env() -> Limits:
    base = TRUSTED if os.environ.get(ENV_TRUST, "").strip().lower() in ("1", "true", "yes", "on") else DEFAULTS
    spec = os.environ.get(ENV_LIMITS, "")
    return parse_limits(spec, base) if spec.strip() else base


_env_cache: tuple[tuple[str, str], Limits] | None = None


def current() -> Limits:
    """The limits in force: :func:`configure`'s, else ``AGENTSIM_TRUST`` / ``AGENTSIM_LIMITS``, else defaults."""
    global _env_cache
    if _override is not None:
        return _override
    key = (os.environ.get(ENV_TRUST, ""), os.environ.get(ENV_LIMITS, ""))
    cached = _env_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    value = _from_env()
    _env_cache = (key, value)
    return value


def configure(*, trust: bool = False, limits: str | Limits | None = None) -> Limits:
    """Set the limits of this process (``--trust``); ``configure()`` goes back to the environment's.

    ``trust`` lifts every limit; ``limits`` (a spec as in ``AGENTSIM_LIMITS``) then sets single
    ones. Also exported to the environment so that worker processes inherit them.
    """
    global _override
    with _override_lock:
        if not trust and limits is None:
            _override = None
            return current()
        base = TRUSTED if trust else _from_env()
        if isinstance(limits, Limits):
            base = limits
        elif limits:
            base = parse_limits(limits, base)
        _override = base
        if trust:
            os.environ[ENV_TRUST] = "1"
        return base


def override_note(limits: Limits | None = None) -> str | None:
    """A line that says which limits differ from the defaults, or None when none do."""
    lim = limits or current()
    if lim == DEFAULTS:
        return None
    if lim == TRUSTED:
        return ("scenario limits lifted (trusted files): templates may run without a time or "
                "size bound")
    changed = [f"{f.name}={getattr(lim, f.name) if getattr(lim, f.name) is not None else 'off'}"
               for f in fields(Limits) if getattr(lim, f.name) != getattr(DEFAULTS, f.name)]
    return "scenario limits changed: " + ", ".join(changed)


# --------------------------------------------------------------------------------------------
# the CPU-time guard


class _Stop(BaseException):
    """Raised asynchronously in a thread whose evaluation ran out of time (never escapes guard)."""


@dataclass(eq=False)
class _Budget:
    thread_id: int
    limits: Limits
    what: str
    clock: int | None
    start_cpu: float
    start_wall: float
    deadline_s: float | None
    active: bool = True
    fired: bool = False
    iterations: int = 0
    nesting: int = 0

    def cpu_used(self) -> float:
        if self.clock is not None:
            try:
                return time.clock_gettime(self.clock) - self.start_cpu
            except OSError:
                pass
        return time.monotonic() - self.start_wall


_local = threading.local()
_lock = threading.Lock()
_heap: list[tuple[float, int, _Budget]] = []
_counter = itertools.count()
_wake = threading.Condition(_lock)
_watchdog: threading.Thread | None = None
#: how often the watchdog re-reads the CPU clocks of long evaluations (seconds)
_POLL_S = 0.05


def _thread_clock() -> tuple[int | None, float]:
    get = getattr(time, "pthread_getcpuclockid", None)
    if get is not None:
        try:
            clk = get(threading.get_ident())
            return clk, time.clock_gettime(clk)
        except (OSError, OverflowError):
            pass
    return None, 0.0


def _async_raise(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else ctypes.c_void_p(0)
    )


def _watch() -> None:
    with _lock:
        while True:
            now = time.monotonic()
            while _heap and not _heap[0][2].active:
                heapq.heappop(_heap)
            if not _heap:
                _wake.wait()
                continue
            when, _, budget = _heap[0]
            if when > now:
                _wake.wait(when - now)
                continue
            heapq.heappop(_heap)
            assert budget.deadline_s is not None
            used = budget.cpu_used()
            if used >= budget.deadline_s:
                budget.fired = True
                _async_raise(budget.thread_id, _Stop)
            else:
                # CPU time lags wall time when other threads or processes share the cores
                again = now + max(_POLL_S, min(budget.deadline_s - used, 1.0))
                heapq.heappush(_heap, (again, next(_counter), budget))


def _start_watchdog() -> None:
    global _watchdog
    if _watchdog is None or not _watchdog.is_alive():
        _watchdog = threading.Thread(target=_watch, name="agentsim-limits-watchdog", daemon=True)
        _watchdog.start()


def _budget() -> _Budget | None:
    return getattr(_local, "budget", None)


@contextmanager
def guard(what: str, limits: Limits | None = None) -> Iterator[Limits]:
    """Run the body under the CPU-time budget ``render_s`` (nested guards share the outer one).

    The watchdog stops a body that runs past its budget (an asynchronous exception between two
    bytecodes) and this raises :class:`LimitExceeded` naming ``what``. A ``MemoryError`` or a
    ``RecursionError`` in the body also becomes :class:`LimitExceeded`.
    """
    outer = _budget()
    if outer is not None:
        outer.nesting += 1
        try:
            yield outer.limits
        finally:
            outer.nesting -= 1
        return
    lim = limits or current()
    clock, start_cpu = _thread_clock()
    budget = _Budget(threading.get_ident(), lim, what, clock, start_cpu, time.monotonic(), lim.render_s)
    _local.budget = budget
    if lim.render_s is not None:
        with _lock:
            _start_watchdog()
            heapq.heappush(_heap, (time.monotonic() + lim.render_s, next(_counter), budget))
            _wake.notify()
    stopped = False
    try:
        try:
            yield lim
        except _Stop:
            stopped = True
        except MemoryError:
            raise LimitExceeded(
                f"{what} ran out of memory", limit="render_bytes",
            ) from None
        except RecursionError:
            raise LimitExceeded(f"{what} nests too deeply (Python's recursion limit)", limit="depth") from None
    finally:
        _release(budget)
    if stopped:
        raise LimitExceeded(
            f"{what} took more than {lim.render_s:g} s of CPU time (limit render_s)", limit="render_s",
        )


def _release(budget: _Budget) -> None:
    """Deactivate ``budget``; clears a stop that fired but was not raised yet."""
    _local.budget = None
    while True:
        try:
            with _lock:
                budget.active = False
                if budget.fired:
                    _async_raise(budget.thread_id, None)
            return
        except _Stop:
            continue


def charge(iterations: int) -> None:
    """Count ``iterations`` loop items against ``loop_items`` of the current evaluation."""
    budget = _budget()
    if budget is None:
        return
    budget.iterations += iterations
    cap = budget.limits.loop_items
    if cap is not None and budget.iterations > cap:
        raise LimitExceeded(
            f"{budget.what} loops over more than {cap:,} items (limit loop_items)", limit="loop_items",
        )


# --------------------------------------------------------------------------------------------
# the command line's --trust


def add_trust_argument(parser: Any) -> None:
    """``--trust`` on a command that loads scenario files (``validate``, ``run``)."""
    parser.add_argument(
        "--trust", action="store_true",
        help=f"lift the scenario limits (time, size, nesting) for files you trust; also {ENV_TRUST}=1, "
             f"or set single limits with {ENV_LIMITS}=render_s=10,...",
    )


def apply_trust(args: Any) -> str | None:
    """Apply ``--trust`` from parsed arguments; the note to print when limits differ from the defaults."""
    configure(trust=bool(getattr(args, "trust", False)))
    return override_note()
