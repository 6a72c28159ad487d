"""The model cache on disk: one folder per model, its ``manifest.json``, and what is built.

Layout: ``$AGENTSIM_HOME/models/<name>/`` holds ``source.gguf`` (the model as fetched or added),
one ``<rung>.gguf`` per ladder rung, and ``manifest.json``: the source's origin, licence and
sha256, and each rung's sha256, size, mtime and recipe. Runs store the sha256 of the file they
used. Reading the cache never loads a model file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentsim.errors import ModelError
from agentsim.paths import agentsim_home, models_dir
from agentsim.precision import LLAMA_ALL_RUNGS

from .catalog import CATALOG, DEFAULT_MODEL, NAME_RE, TWIN_LABEL

__all__ = ["agentsim_home", "models_dir", "model_dir", "read_manifest", "write_manifest", "list_models",
           "disk_bytes", "remove", "prepare_lock"]


@contextlib.contextmanager
def prepare_lock(name: str) -> Iterator[None]:
    """One preparer of model ``name`` per machine: processes that want it at once (runs landing
    on one node together) wait for the first, then find its files."""
    import fcntl

    folder = Path(models_dir())
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{name}.prepare.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def model_dir(name: str) -> Path:
    return models_dir() / name


def manifest_path(name: str) -> Path:
    return model_dir(name) / "manifest.json"


def read_manifest(name: str) -> dict[str, Any] | None:
    """The model's manifest, None when it has none; a damaged one is a :class:`ModelError`."""
    p = manifest_path(name)
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"model cache {p} is unreadable: {exc}", hint=f"delete {p.parent} and fetch again") from None
    if not isinstance(data, dict):
        raise ModelError(f"model cache {p} is not a manifest", hint=f"delete {p.parent} and fetch again")
    return data


def write_manifest(name: str, data: dict[str, Any]) -> None:
    """Replace the model's manifest atomically."""
    p = manifest_path(name)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, p)


def disk_bytes(name: str) -> int:
    """Bytes the model's folder takes on disk (every file in it: source, rungs, leftovers)."""
    d = model_dir(name)
    if not d.is_dir():
        return 0
    total = 0
    for p in d.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            continue
    return total


def remove(name: str, precisions: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
    """Delete a model from the cache (all of it), or only the given ladder rungs.

    Returns ``{"name", "removed": [what], "freed_bytes"}``. Removing every file of a catalog
    model makes it "not fetched" again; of an added model, forgets it. ``source`` is not a rung:
    the rungs are made from it, so it goes only with the whole model.
    """
    if not NAME_RE.match(name or ""):
        raise ModelError(f"model name {name!r} is not valid", hint="agentsim models list shows the names")
    d = model_dir(name)
    if not d.is_dir():
        known = [m["name"] for m in list_models() if model_dir(m["name"]).is_dir()]
        raise ModelError(f"model {name!r} is not in the cache ({models_dir()})",
                         hint=f"in the cache: {', '.join(known) or 'nothing'}")
    if not precisions:
        freed = disk_bytes(name)
        shutil.rmtree(d)
        return {"name": name, "removed": ["all"], "freed_bytes": freed}
    wanted = list(dict.fromkeys(p.lower() for p in precisions))
    if "source" in wanted:
        raise ModelError("the source cannot be removed alone (every rung is made from it)",
                         hint=f"agentsim models rm {name} removes the whole model")
    bad = [p for p in wanted if p not in LLAMA_ALL_RUNGS]
    if bad:
        raise ModelError(f"unknown precision(s) {', '.join(bad)}", hint=f"ladder: {', '.join(LLAMA_ALL_RUNGS)}")
    manifest = read_manifest(name) or {}
    rungs = manifest.get("rungs") or {}
    present = [p for p in wanted if p in rungs or (d / f"{p}.gguf").exists()]
    if not present:
        built = [r for r in LLAMA_ALL_RUNGS if r in rungs]
        raise ModelError(f"model {name!r} has no {', '.join(wanted)} rung to remove",
                         hint=f"built: {', '.join(built) or 'none'}")
    freed = 0
    for p in present:
        for f in (d / f"{p}.gguf", d / f"{p}.gguf.partial"):
            if f.is_file():
                freed += f.stat().st_size
                f.unlink()
        rungs.pop(p, None)
    if manifest:
        manifest["rungs"] = rungs
        write_manifest(name, manifest)
    return {"name": name, "removed": present, "freed_bytes": freed}


def list_models() -> list[dict[str, Any]]:
    """Catalog models and user-added ones, with the rungs built so far (reads manifests only)."""
    names = list(CATALOG)
    d = models_dir()
    if d.is_dir():
        names += sorted(p.name for p in d.iterdir() if p.is_dir() and p.name not in CATALOG and (p / "manifest.json").is_file())
    out = []
    for name in names:
        cm = CATALOG.get(name)
        m = read_manifest(name) or {}
        src = m.get("source") or {}
        rungs = []
        for r in LLAMA_ALL_RUNGS:
            rec = (m.get("rungs") or {}).get(r)
            p = model_dir(name) / f"{r}.gguf"
            if rec and p.is_file():
                rungs.append({"precision": r, "path": str(p), "sha256": rec.get("sha256"), "bytes": rec.get("bytes"),
                              "made_from": rec.get("made_from"), "tensor_types": rec.get("tensor_types")})
        out.append({
            "name": name,
            "default": name == DEFAULT_MODEL,
            "source_precision": m.get("source_precision") or (cm.source_precision if cm else None),
            "license": m.get("license") or (cm.license if cm else None),
            "description": cm.description if cm else f"user model from {(m.get('origin') or {}).get('path')}",
            "fetched": bool(src) and (model_dir(name) / "source.gguf").is_file(),
            "source": ({"path": str(model_dir(name) / "source.gguf"), "sha256": src.get("sha256"), "bytes": src.get("bytes")}
                       if src else None),
            # what a fetch must produce: the catalog pins it, fetched or not (None for user models)
            "sha256": src.get("sha256") or (cm.sha256 if cm else None),
            "bytes": src.get("bytes") or (cm.bytes if cm else None),
            "rungs": rungs,
            "params": cm.params if cm and cm.params else (src.get("params")),
            "family": cm.family if cm else None,
            "instruct": cm.instruct if cm else None,
            # a cost twin (random weights of a real model's shapes): cost figures only, never accuracy
            "twin": bool(cm and cm.twin),
            "label": TWIN_LABEL if cm and cm.twin else None,
            "disk_bytes": disk_bytes(name),
        })
    return out
