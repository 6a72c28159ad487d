"""``model@precision`` -> the checked file a backend loads (:class:`ResolvedModel`).

A name is a catalog or added model in the cache (:mod:`agentsim.models.cache`); a path to a
``.gguf`` is used as it is. The file's header and extents are checked and its size and sha256
compared with what was recorded when it was made, before any backend sees it; a missing rung
names the exact command that builds it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentsim.errors import ModelError
from agentsim.hashing import cached_sha256
from agentsim.precision import LLAMA_PRECISIONS, ladder_rungs

from .cache import model_dir, read_manifest
from .catalog import CATALOG, DEFAULT_MODEL
from .gguf_header import GGUFSummary, check_gguf

__all__ = ["ResolvedModel", "resolve", "top_rung"]


@dataclass
class ResolvedModel:
    """The file a backend loads for ``model@precision``, and what is known about it."""

    name: str
    precision: str
    path: Path
    sha256: str
    bytes: int
    source_precision: str | None
    license: str | None = None
    tensor_types: dict[str, int] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    #: the context length the model was trained with (``<arch>.context_length``), when stated
    context_length: int | None = None
    #: parameters as stored in the GGUF (every tensor's elements, read from its header)
    params: int | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def _prepare_hint(name: str, precision: str) -> str:
    default = "" if name == DEFAULT_MODEL else f" {name}"
    return f"agentsim models prepare{default} --precision {precision}"


def resolve(model: str | None, precision: str | None) -> ResolvedModel:
    """The file for ``model@precision``: a catalog/added model name, or a path to a ``.gguf``.

    ``model`` None means the default model; ``precision`` None means the top rung (:func:`top_rung`:
    ``f16``, or ``f32`` for a true F32 source) for a named model
    and ``source`` (the file as it is) for a path. The file is checked (header and extents)
    before it is returned; a missing rung names the exact command that builds it.
    """
    prec = (precision or "").lower() or None
    if model and (model.endswith(".gguf") or os.sep in model or model.startswith(".")):
        return _resolve_path(Path(model).expanduser(), prec)
    name = (model or DEFAULT_MODEL).lower()
    manifest = read_manifest(name)
    prec = prec or top_rung(name, manifest)
    if prec not in LLAMA_PRECISIONS:
        raise ModelError(f"unknown precision {prec!r}", hint=f"precisions: {', '.join(LLAMA_PRECISIONS)}")
    if manifest is None or not (model_dir(name) / "source.gguf").is_file():
        if name not in CATALOG:
            raise ModelError(f"unknown model {name!r}",
                             hint=f"catalog: {', '.join(CATALOG)}; a path to a .gguf; or 'agentsim models add PATH.gguf'")
        if prec == "source":
            raise ModelError(f"model {name!r} is not fetched yet",
                             hint=f"agentsim models fetch{'' if name == DEFAULT_MODEL else ' ' + name}")
        raise ModelError(f"model {name!r} is not fetched yet (no {prec} rung)", hint=_prepare_hint(name, prec))
    if prec == "source":
        rec = manifest["source"]
        path = model_dir(name) / "source.gguf"
    else:
        rec = (manifest.get("rungs") or {}).get(prec)
        path = model_dir(name) / f"{prec}.gguf"
        if not rec or not path.is_file():
            raise ModelError(f"model {name!r} has no {prec} rung yet", hint=_prepare_hint(name, prec))
    summary = check_gguf(path)
    st = path.stat()
    if st.st_size != rec.get("bytes"):
        raise ModelError(f"{path}: size {st.st_size} differs from the {rec.get('bytes')} recorded when it was made",
                         hint=f"rebuild it: {_prepare_hint(name, prec)} --force" if prec != "source"
                         else f"agentsim models fetch {name} --force")
    sha = cached_sha256(path, rec)
    if sha != rec.get("sha256"):
        raise ModelError(f"{path}: sha256 {sha} differs from the one recorded when it was made",
                         hint=f"rebuild it: {_prepare_hint(name, prec)} --force")
    recipe = {k: v for k, v in rec.items() if k not in ("path", "sha256", "bytes", "mtime_ns", "tensor_types", "precision")}
    return ResolvedModel(name=name, precision=prec, path=path, sha256=sha, bytes=st.st_size,
                         source_precision=manifest.get("source_precision"), license=manifest.get("license"),
                         tensor_types=summary.tensor_types(), recipe=recipe, context_length=_context_length(summary),
                         params=summary.n_params)


def top_rung(name: str, manifest: dict[str, Any] | None = None) -> str:
    """The top rung of a named model's ladder: ``f32`` for a true F32 source, else ``f16``."""
    manifest = manifest if manifest is not None else read_manifest(name)
    sp = (manifest or {}).get("source_precision") or (CATALOG[name].source_precision if name in CATALOG else None)
    return ladder_rungs(sp)[0]


def _resolve_path(path: Path, prec: str | None) -> ResolvedModel:
    summary = check_gguf(path)
    own = summary.file_type or "unknown"
    if prec not in (None, "source", own):
        raise ModelError(
            f"{path} is {own}; a path is used as it is, not converted to {prec}",
            hint=f"agentsim models add {path} --name NAME, then use llama:NAME@{prec}",
        )
    return ResolvedModel(name=path.stem, precision=prec or "source", path=path.resolve(), sha256=cached_sha256(path),
                         bytes=summary.bytes, source_precision=own, tensor_types=summary.tensor_types(),
                         recipe={"origin": "path"}, context_length=_context_length(summary),
                         params=summary.n_params)


def _context_length(summary: GGUFSummary) -> int | None:
    value = summary.metadata.get(f"{summary.architecture}.context_length")
    return int(value) if isinstance(value, int) else None
