"""The cost twins' sources: written here on first use from a real model's shapes, pinned by sha256.

A cost twin (:mod:`agentsim.lab.twin_gguf`) is a catalog entry with ``twin=True`` and no PyPI
parts: its F16 GGUF is a function of the shape and the seed, so it is written here (numpy and the
``gguf`` package; ~1 GB for the 0.5B shape, ~3 GB for the 1.5B) and must match the catalog's
sha256 and size before it is used, like any catalog file. A file that differs (another numpy
whose normal generator changed) is kept as ``written-<sha>.gguf`` and refused, with the command that
adds it under its own name. The ladder is then built from it like from any F16 source.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from agentsim.errors import ModelError
from agentsim.hashing import cached_sha256, sha256_file

from .cache import model_dir, read_manifest, write_manifest
from .catalog import TWIN_LABEL, TWIN_PINS, CatalogModel
from .gguf_header import check_gguf

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
    mdir = model_dir(cm.name)
    target = mdir / "source.gguf"
    manifest = read_manifest(cm.name) or {}
    src = manifest.get("source") or {}
    if target.is_file() and not force and src.get("sha256") == cm.sha256 and cached_sha256(target, src) == cm.sha256:
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
    mdir.mkdir(parents=True, exist_ok=True)
    partial = mdir / "source.gguf.partial"
    partial.unlink(missing_ok=True)
    say(f"{cm.name}: writing the {TWIN_LABEL} of {shape.name} ({cm.params or 0:,} parameters at F16, ~{cm.bytes / 1e9:.1f} GB)")
    t0 = time.perf_counter()
    write_twin_gguf(shape, partial, seed=0)
    digest = sha256_file(partial)
    size = partial.stat().st_size
    if digest != cm.sha256 or size != cm.bytes:
        kept = mdir / f"written-{digest[:12]}.gguf"
        os.replace(partial, kept)
        raise ModelError(
            f"{cm.name}: the file written here ({size:,} bytes, sha256 {digest}) is not the catalogued one "
            f"({cm.bytes:,} bytes, sha256 {cm.sha256}); it was not installed",
            hint=(f"this numpy or gguf writes other bytes; the file is kept at {kept}: "
                  f"'agentsim models add {kept} --name {cm.name}-local' uses it under its own name"))
    check_gguf(partial)
    os.replace(partial, target)
    st = target.stat()
    if src.get("sha256") != digest:
        manifest["rungs"] = {}
    manifest.update(
        name=cm.name, origin={"kind": "twin", "how": f"written here ({TWIN_LABEL})", "shape": shape.name, "seed": 0,
                              "seconds": round(time.perf_counter() - t0, 1)},
        license=cm.license, source_precision=cm.source_precision,
        source={"path": "source.gguf", "sha256": digest, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
                "tensor_types": (summary := check_gguf(target)).tensor_types(), "params": summary.n_params},
    )
    manifest.setdefault("rungs", {})
    write_manifest(cm.name, manifest)
    say(f"{cm.name}: verified {st.st_size:,} bytes, sha256 {digest}")
    return target
