"""The cost twins' sources: written here on first use from a real model's shapes, pinned by sha256.

A cost twin (:mod:`agentsim.lab.twin_gguf`) is a catalog entry with ``twin=True`` and no PyPI
parts: its F16 GGUF is a function of the shape and the seed, so it is written here (numpy and the
``gguf`` package; ~1 GB for the 0.5B shape, ~3 GB for the 1.5B) and must match the catalog's
sha256 and size before it is used, like any catalog file. A file that differs (another numpy
whose normal generator changed) is kept as ``written-<sha>.gguf`` and refused, with the command that
adds it under its own name. The ladder is then built from it like from any F16 source.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from agentsim.errors import ModelError

from .catalog import TWIN_LABEL, TWIN_PINS, CatalogModel
from .made_source import cached_source, install_made_source

__all__ = ["fetch_twin", "twin_shape_name"]


def twin_shape_name(name: str) -> str:
    """The :data:`agentsim.lab.twins.SHAPES` key of cost twin ``name``."""
    for twin, shape, *_ in TWIN_PINS:
        if twin == name:
            return shape
    raise ModelError(f"{name!r} is not a cost twin", hint=f"cost twins: {', '.join(t for t, *_ in TWIN_PINS)}")


def fetch_twin(cm: CatalogModel, *, force: bool = False, log: Callable[[str], None] | None = None) -> Path:
    """``source.gguf`` of cost twin ``cm`` in the cache: verified as it is, or written here; it must
    match the catalog's sha256 and size."""
    say = log or (lambda _m: None)
    target, manifest, hit = cached_source(cm, reuse=not force)
    if hit:
        say(f"{cm.name}: already in the cache ({target})")
        return target
    try:
        import gguf  # noqa: F401
        import numpy  # noqa: F401

        from agentsim.lab.twin_gguf import write_twin_gguf
        from agentsim.lab.twins import SHAPES
    except ImportError as exc:  # pragma: no cover - a core install has both
        raise ModelError(f"writing {cm.name} needs numpy and gguf: {exc}", hint="pip install agentsim") from None
    shape = SHAPES[twin_shape_name(cm.name)]
    mdir = target.parent
    mdir.mkdir(parents=True, exist_ok=True)
    partial = mdir / "source.gguf.partial"
    partial.unlink(missing_ok=True)
    say(f"{cm.name}: writing the {TWIN_LABEL} of {shape.name} ({cm.params or 0:,} parameters at F16, ~{cm.bytes / 1e9:.1f} GB)")
    t0 = time.perf_counter()
    write_twin_gguf(shape, partial, seed=0)
    origin = {"kind": "twin", "how": f"written here ({TWIN_LABEL})", "shape": shape.name, "seed": 0}
    return install_made_source(cm, partial, manifest, origin=origin, started=t0, kept_prefix="written",
                               why_other="this numpy or gguf writes other bytes", say=say)
