"""sha256 of files: the one helper, with the one cache that spares re-reading unchanged files.

Model files are hundreds of MB; runs record the sha256 of the file they used, and reading 1 GB
again at every run start costs seconds. :func:`cached_sha256` trusts a digest while the file's
size and modification time (ns) are unchanged, from either

- a record that already states them (a model manifest's ``sha256``/``bytes``/``mtime_ns``), or
- the memo ``sha256.json`` in :func:`agentsim.paths.cache_dir`, keyed by
  ``(resolved path, size, mtime_ns)``, which forgets files that no longer exist.

:func:`sha256_file` always reads the file: use it where the bytes must be checked (a file just
written or fetched).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .paths import cache_dir

__all__ = ["sha256_file", "cached_sha256", "memo_path"]

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str], chunk: int = _CHUNK) -> str:
    """The sha256 of ``path``, read now (hex digest)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def memo_path() -> Path:
    """Where remembered digests are kept (``<cache_dir>/sha256.json``)."""
    return cache_dir() / "sha256.json"


def _read_memo(memo: Path) -> dict[str, str]:
    try:
        data = json.loads(memo.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_memo(memo: Path, known: dict[str, str]) -> None:
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(known, sort_keys=True))
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only cache only costs a re-read next time


def cached_sha256(path: str | os.PathLike[str], recorded: Mapping[str, Any] | None = None) -> str:
    """The sha256 of ``path``, not re-read while its size and mtime are unchanged.

    ``recorded`` (optional) states ``sha256``, ``bytes`` and ``mtime_ns`` for this file (a
    manifest entry); it is trusted when the file still has that size and mtime. Otherwise the
    memo is asked, and a file read now is remembered there.
    """
    p = Path(path)
    st = p.stat()
    if recorded and recorded.get("sha256") and recorded.get("bytes") == st.st_size \
            and recorded.get("mtime_ns") == st.st_mtime_ns:
        return str(recorded["sha256"])
    key = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo = memo_path()
    known = _read_memo(memo)
    if key in known:
        return known[key]
    digest = sha256_file(p)
    known = {k: v for k, v in known.items() if Path(k.rsplit("|", 2)[0]).exists()}
    known[key] = digest
    _write_memo(memo, known)
    return digest
