"""What every screen shares: the database, the scenario folders and the injectable boundaries.

The clock, the energy meter and the backend choices are injected here (and only here) so that
tests and snapshots can fix them; the CLI uses the real ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agentsim.errors import AgentsimError, StoreError
from agentsim.measure import EnergyMeter, make_meter
from agentsim.store import Store

__all__ = ["AppContext", "BackendChoice", "default_backend_choices", "hf_choices"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class BackendChoice:
    """One backend spec offered on the Launch screen (label shown, spec run)."""

    spec: str
    label: str
    selected: bool = False


def default_backend_choices() -> list[BackendChoice]:
    """Model-catalog ladder rungs when the catalog exists, then the simulation backends.

    The model catalog (``agentsim.models``) is optional: without it (or when it cannot list
    anything) the user types backend specs by hand in the Launch screen's spec field.
    """
    choices: list[BackendChoice] = []
    choices.extend(_catalog_choices())
    from agentsim.backends.base import available_backends

    names = available_backends()
    if "hf" in names:
        choices.extend(hf_choices())
    if "oracle" in names:
        choices.append(BackendChoice("oracle", "oracle (always right: checks a scenario)"))
    if "noisy" in names:
        choices.append(BackendChoice("noisy,p=0.1", "noisy p=0.1 (simulated 10% hop errors)"))
        choices.append(BackendChoice("noisy,p=0.3", "noisy p=0.3 (simulated 30% hop errors)"))
    return choices


def _catalog_choices() -> list[BackendChoice]:
    """The built rungs of the model ladder, as ``llama:MODEL@RUNG`` specs.

    Defensive on purpose: ``agentsim.models`` is optional (and owned by another part of the
    project); if it is missing or its listing fails, there are simply no ladder entries and the
    user types specs by hand in the Launch screen's spec field.
    """
    import importlib
    import importlib.util

    try:
        if importlib.util.find_spec("agentsim.models") is None:
            return []
        models = importlib.import_module("agentsim.models")
        listing = models.list_models()
    except Exception:  # noqa: BLE001 - an optional module must never break the UI
        return []
    out: list[BackendChoice] = []
    for m in listing if isinstance(listing, list) else []:
        try:
            name = str(m["name"])
            src = m.get("source_precision")
            for rung in m.get("rungs") or []:
                prec = str(rung["precision"])
                note = f" (from {src})" if src and prec == "f16" and src not in ("f16", "bf16", "f32") else ""
                out.append(BackendChoice(f"llama:{name}@{prec}", f"llama {name} @{prec}{note}"))
            if not m.get("rungs") and m.get("fetched"):
                out.append(BackendChoice(f"llama:{name}@source", f"llama {name} @source ({src})"))
        except (KeyError, TypeError, AttributeError):
            continue
    return out


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _hf_label(model: str, precision: str) -> str:
    from agentsim.precision import BNB_PRECISIONS, EMULATED_SCHEMES, TORCHAO_PRECISIONS

    if precision in BNB_PRECISIONS:
        how = "bitsandbytes, native"
    elif precision in TORCHAO_PRECISIONS:
        how = "torchao, native"
    elif precision in EMULATED_SCHEMES:
        how = "emulated"
    else:
        how = "torch"
    return f"hf {model} @{precision} ({how})"


def hf_choices(model: str | None = None, *, installed: Callable[[str], bool] = _installed) -> list[BackendChoice]:
    """``hf:MODEL@P`` for every precision the hf backend offers (agentsim.precision.HF_PRECISIONS).

    MODEL is the catalog's default model when its f16 rung (the file hf loads) is built, else
    nothing is offered. The bitsandbytes and torchao precisions are offered only when their
    library is installed (``agentsim[quant]``); native FP4/FP8 (``native=true``) needs a GPU and
    is typed by hand.
    """
    from agentsim.precision import BNB_PRECISIONS, HF_PRECISIONS, TORCHAO_PRECISIONS

    if model is None:
        try:
            from agentsim.models import list_models

            listing = list_models()
            default = next((m for m in listing if m.get("default")), None)
            if default is None or not any(r.get("precision") == "f16" for r in default.get("rungs") or []):
                return []
            model = str(default["name"])
        except Exception:  # noqa: BLE001 - an optional listing must never break the UI
            return []
    out = []
    for p in HF_PRECISIONS:
        if p in BNB_PRECISIONS and not installed("bitsandbytes"):
            continue
        if p in TORCHAO_PRECISIONS and not installed("torchao"):
            continue
        out.append(BackendChoice(f"hf:{model}@{p}", _hf_label(model, p)))
    return out


@dataclass
class AppContext:
    """Shared state and injected boundaries of one app instance."""

    db: str
    scenario_dirs: list[str] = field(default_factory=list)
    #: also list bundled scenario files and generator families (tests turn this off for stable lists)
    include_bundled: bool = True
    #: wall clock, for "refreshed at" lines; fixed in snapshot tests
    clock: Callable[[], datetime] = _now
    #: energy meter used by launched runs; the CLI's default is ``make_meter("auto")``
    meter_factory: Callable[[], EnergyMeter] = field(default=lambda: make_meter("auto"))
    backend_choices: Callable[[], list[BackendChoice]] = default_backend_choices
    #: seconds between refreshes of the runs list (another process may be writing)
    refresh_s: float = 2.0
    _store: Store | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _items: list[dict[str, Any]] | None = field(default=None, init=False, repr=False)
    _items_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        for d in self.scenario_dirs:
            if not Path(d).is_dir():
                raise AgentsimError(f"--scenarios {d}: not a folder")
        if "://" not in self.db:
            parent = Path(self.db).resolve().parent
            if not parent.is_dir():
                raise StoreError(f"cannot use database {self.db}: folder {parent} does not exist")
        # a file that is not an agentsim database is a clear error now, not an empty UI later
        self.read_store()

    def scenario_items(self, *, reload: bool = False) -> list[dict[str, Any]]:
        """The scenario list, validated once and shared by the Scenarios and Launch screens."""
        from .scenario_items import scenario_items

        with self._items_lock:
            if self._items is None or reload:
                self._items = scenario_items(self.scenario_dirs, self.include_bundled)
            return list(self._items)

    def read_store(self) -> Store | None:
        """A read-only store (WAL readers never block the writer), or None before the first run."""
        with self._lock:
            if self._store is None:
                if "://" not in self.db and not Path(self.db).exists():
                    return None
                try:
                    self._store = Store(self.db, readonly=True)
                except StoreError as exc:
                    if "no such table" in str(exc):
                        return None  # an empty file, or a database a writer is creating right now
                    raise
            return self._store

    def write_store(self) -> Store:
        """A writable store for launched runs: the same store the CLI writes."""
        return Store(self.db)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def describe(self) -> dict[str, Any]:
        return {"db": self.db, "scenario_dirs": list(self.scenario_dirs)}
