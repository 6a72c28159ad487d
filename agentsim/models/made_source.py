"""Sources made on this machine (a lab model trained or copied, a cost twin written), pinned by
sha256 like a fetched file: the cache check before making one, and the check and install after."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentsim.errors import ModelError
from agentsim.hashing import cached_sha256, sha256_file

from .cache import model_dir, read_manifest, write_manifest
from .catalog import CatalogModel
from .gguf_header import check_gguf

__all__ = ["cached_source", "install_made_source"]


def cached_source(cm: CatalogModel, *, reuse: bool = True) -> tuple[Path, dict[str, Any], bool]:
    """``(source.gguf's path, the model's manifest, whether the cached file is the pinned one)``;
    ``reuse=False`` (``--force``, a retrain) never counts the cached file."""
    target = model_dir(cm.name) / "source.gguf"
    manifest = read_manifest(cm.name) or {}
    src = manifest.get("source") or {}
    hit = (reuse and target.is_file() and src.get("sha256") == cm.sha256
           and cached_sha256(target, src) == cm.sha256)
    return target, manifest, hit


def install_made_source(cm: CatalogModel, partial: Path, manifest: dict[str, Any], *, origin: dict[str, Any],
                        started: float, kept_prefix: str, why_other: str, say: Callable[[str], None]) -> Path:
    """Check ``partial`` against ``cm``'s sha256 and size, then install it as ``source.gguf`` and
    record it (with ``origin``) in the manifest. A file that differs is kept as
    ``<kept_prefix>-<sha>.gguf`` and refused (``why_other``: why this machine may make other bytes)."""
    mdir = partial.parent
    target = mdir / "source.gguf"
    digest = sha256_file(partial)
    size = partial.stat().st_size
    if digest != cm.sha256 or size != cm.bytes:
        kept = mdir / f"{kept_prefix}-{digest[:12]}.gguf"
        os.replace(partial, kept)
        raise ModelError(
            f"{cm.name}: the file made here ({size:,} bytes, sha256 {digest}) is not the catalogued one "
            f"({cm.bytes:,} bytes, sha256 {cm.sha256}); it was not installed",
            hint=(f"{why_other}; the file is kept at {kept}: "
                  f"'agentsim models add {kept} --name {cm.name}-local' uses it under its own name"))
    summary = check_gguf(partial)  # the same bytes after the rename: read the header once
    os.replace(partial, target)
    st = target.stat()
    if (manifest.get("source") or {}).get("sha256") != digest:
        manifest["rungs"] = {}
    manifest.update(
        name=cm.name, origin={**origin, "seconds": round(time.perf_counter() - started, 2)}, license=cm.license,
        source_precision=cm.source_precision,
        source={"path": "source.gguf", "sha256": digest, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
                "tensor_types": summary.tensor_types(), "params": summary.n_params},
    )
    manifest.setdefault("rungs", {})
    write_manifest(cm.name, manifest)
    say(f"{cm.name}: verified {st.st_size:,} bytes, sha256 {digest} ({origin['how']})")
    return target
