"""Models for the ``hf`` backend: where a spec's MODEL lives, and loading it into transformers.

MODEL is a folder (``config.json`` + safetensors), a ``.gguf`` file, or a catalog name (None:
the catalog's default model), which resolves to its ``f16`` rung: the same weights the ``llama``
backend runs at ``@f16``, so the two families compare on one file.

A GGUF is loaded by transformers' GGUF loader, dequantized to dense float32 weights, and cached
as an ordinary safetensors model folder in ``<cache_dir>/hf/gguf-<sha256>`` so that a second
load is fast. torch and transformers are imported inside the functions that need them only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentsim.errors import ModelError
from agentsim.hashing import cached_sha256
from agentsim.paths import hf_cache_dir
from agentsim.versions import dist_version

from .catalog import DEFAULT_MODEL
from .gguf_header import check_gguf
from .resolution import resolve, top_rung

__all__ = ["ModelSource", "resolve_hf_model", "load_hf_model", "folder_sha256", "source_dtype", "hf_cache_dir"]


@dataclass(frozen=True)
class ModelSource:
    """Where a spec's MODEL lives: a model folder or a GGUF (with what the catalog knows of it)."""

    kind: str  # "hf" (folder) | "gguf"
    path: Path
    sha256: str | None = None  # known already (catalog manifest), else computed at load
    source_precision: str | None = None
    name: str | None = None  # catalog name


def resolve_hf_model(model: str | None) -> ModelSource:
    """A spec's MODEL: a folder (config.json + safetensors), a ``.gguf``, or a catalog name.

    A catalog name (None: the catalog's default model) resolves through
    :func:`agentsim.models.resolve` to its top rung (``f16``; ``f32`` for a true F32 source).
    """
    if model:
        p = Path(model).expanduser()
        if p.is_dir():
            if not (p / "config.json").is_file():
                raise ModelError(f"{p} is a folder without config.json: not a transformers model folder")
            if not any(p.glob("*.safetensors")) and not any(p.glob("*.bin")):
                raise ModelError(f"{p} has a config.json but no weights (*.safetensors)")
            return ModelSource("hf", p)
        if p.is_file():
            if p.suffix.lower() != ".gguf":
                raise ModelError(f"{p} is a file but not a .gguf", hint="give a .gguf file or a model folder")
            return ModelSource("gguf", p)
        if "/" in model or os.sep in model or model.endswith(".gguf"):
            raise ModelError(f"model {model!r} does not exist")
    name = (model or DEFAULT_MODEL).lower()
    top = top_rung(name)
    # a true F32 source is its own f32 rung (same bytes): no ladder needed (nor llama.cpp to build one)
    resolved = resolve(model, "source" if top == "f32" else top)
    return ModelSource("gguf", resolved.path, resolved.sha256, resolved.source_precision, resolved.name)


def folder_sha256(folder: Path) -> str:
    """sha256 over a model folder's weight files (names and bytes), so a resume can tell models apart."""
    h = hashlib.sha256()
    for f in sorted([*folder.glob("*.safetensors"), *folder.glob("*.bin")]):
        h.update(f.name.encode())
        h.update(cached_sha256(f).encode())
    return h.hexdigest()


def load_hf_model(src: ModelSource, dtype: Any, *, cache: bool = True, quantization_config: Any = None,
                  device_map: str | None = None) -> tuple[Any, Any, str, str]:
    """(model, tokenizer, sha256, cache state) for ``src``, the model's weights in torch ``dtype``.

    The cache state says how a GGUF was loaded: ``hit``, ``miss (written)``, ``miss (not written:
    ...)`` or ``off``; a folder is ``n/a (model folder)``.

    ``quantization_config`` (a transformers quantization config, e.g. ``BitsAndBytesConfig``) is
    applied while loading, which transformers does from a folder only: a GGUF is loaded from its
    cache folder (written first when missing), or from a temporary folder when ``cache`` is off
    or the cache cannot be written.
    """
    if src.kind == "hf":
        return _load_folder(src.path, dtype, quantization_config, device_map)
    if quantization_config is None:
        return _load_gguf(src.path, dtype, src.sha256, cache=cache)
    return _load_gguf_quantized(src.path, dtype, src.sha256, quantization_config, device_map, cache=cache)


def _load_folder(path: Path, dtype: Any, quantization_config: Any = None,
                 device_map: str | None = None) -> tuple[Any, Any, str, str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw: dict[str, Any] = {}
    if quantization_config is not None:
        kw = {"quantization_config": quantization_config, "device_map": device_map or "cpu"}
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kw)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot load the model folder {path}: {exc}") from None
    return model, tok, folder_sha256(path), "n/a (model folder)"


def _load_gguf_quantized(path: Path, dtype: Any, sha: str | None, quantization_config: Any,
                         device_map: str | None, *, cache: bool) -> tuple[Any, Any, str, str]:
    """A GGUF through a folder, so that transformers applies ``quantization_config`` while loading."""
    import tempfile

    sha = sha or cached_sha256(path)
    cached = hf_cache_dir() / f"gguf-{sha}"
    state = "hit"
    if not (cache and (cached / "config.json").is_file() and any(cached.glob("*.safetensors"))):
        model, tok, sha, state = _load_gguf(path, dtype, sha, cache=cache)
        if state != "miss (written)":  # no cache folder to load from: a temporary one
            with tempfile.TemporaryDirectory(prefix="agentsim-hf-") as tmp:
                model.save_pretrained(tmp)
                tok.save_pretrained(tmp)
                del model
                qmodel, qtok, _, _ = _load_folder(Path(tmp), dtype, quantization_config, device_map)
            return qmodel, qtok, sha, state
        del model
    qmodel, qtok, _, _ = _load_folder(cached, dtype, quantization_config, device_map)
    return qmodel, qtok, sha, state


def _load_gguf(path: Path, dtype: Any, sha: str | None = None, *, cache: bool = True) -> tuple[Any, Any, str, str]:
    """GGUF -> torch via transformers' GGUF loader, cached as safetensors by the file's sha256."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    sha = sha or cached_sha256(path)
    cached = hf_cache_dir() / f"gguf-{sha}"
    if cache and (cached / "config.json").is_file() and any(cached.glob("*.safetensors")):
        try:
            tok = AutoTokenizer.from_pretrained(cached)
            model = AutoModelForCausalLM.from_pretrained(cached, dtype=dtype)
            return model, tok, sha, "hit"
        except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt from the GGUF
            shutil.rmtree(cached, ignore_errors=True)
    import torch

    try:
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        # dense float32 weights (dequantize=True: no packed GGUF modules), so the cache is lossless
        # whatever the GGUF holds and every precision starts from the same tensors
        model = AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
        )
    except Exception as exc:  # noqa: BLE001 - unsupported architecture, corrupt file, ...
        raise ModelError(f"transformers cannot load {path}: {type(exc).__name__}: {exc}") from None
    _forget_gguf_quantizer(model)
    state = "off"
    if cache:
        state = "miss (written)"
        tmp = cached.with_name(f"{cached.name}.tmp{os.getpid()}")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            (tmp / "agentsim-source.json").write_text(json.dumps({
                "gguf": str(path), "sha256": sha, "transformers": dist_version("transformers"),
            }))
            if cached.exists():
                shutil.rmtree(cached, ignore_errors=True)
            os.replace(tmp, cached)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            state = f"miss (not written: {exc})"
    return model.to(dtype=dtype), tok, sha, state


def _forget_gguf_quantizer(model: Any) -> None:
    """A GGUF loaded with ``dequantize=True`` is a plain dense model; drop transformers' record of
    the GGUF quantizer so that it saves (as safetensors) and later loads like any model folder."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    for attr in ("quantization_config",):
        if hasattr(model.config, attr):
            delattr(model.config, attr)
    if hasattr(model, "is_quantized"):
        try:
            model.is_quantized = False
        except AttributeError:
            pass


def source_dtype(src: ModelSource) -> str | None:
    """What the source weights were stored in: the GGUF's file type (``LlamaFileType`` name, e.g.
    ``MOSTLY_F16``), or the folder's config dtype; None when it cannot be told."""
    if src.source_precision:
        return src.source_precision
    if src.kind == "gguf":
        try:
            import gguf

            ft = check_gguf(src.path).metadata.get("general.file_type")
            return gguf.LlamaFileType(int(ft)).name if ft is not None else None
        except Exception:  # noqa: BLE001 - informative only
            return None
    try:
        cfg = json.loads((src.path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    val = cfg.get("dtype") or cfg.get("torch_dtype")
    return str(val) if val else None
