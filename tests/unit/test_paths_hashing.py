"""The leaves under the models layer: paths (the one reader of AGENTSIM_HOME / AGENTSIM_DB),
hashing (the one sha256 helper and its cache) and versions (the one version lookup)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from pathlib import Path

import pytest

from agentsim import hashing, paths, versions

# ------------------------------------------------------------------------------------------
# paths


def test_home_places_models_and_caches_under_it(home: Path) -> None:
    assert paths.agentsim_home() == home
    assert paths.models_dir() == home / "models"
    assert paths.cache_dir() == home / "cache"
    assert paths.hf_cache_dir() == home / "cache" / "hf"


def test_home_expands_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSIM_HOME", "~/somewhere")
    assert paths.agentsim_home() == Path.home() / "somewhere"
    assert paths.cache_dir() == Path.home() / "somewhere" / "cache"


def test_defaults_are_the_platform_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("AGENTSIM_HOME", raising=False)
    assert paths.agentsim_home() == Path(platformdirs.user_data_dir("agentsim"))
    assert paths.cache_dir() == Path(platformdirs.user_cache_dir("agentsim"))
    assert paths.hf_cache_dir() == Path(platformdirs.user_cache_dir("agentsim")) / "hf"


def test_default_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AGENTSIM_DB", raising=False)
    assert paths.default_db() == "agentsim.db"
    monkeypatch.setenv("AGENTSIM_DB", str(tmp_path / "x.db"))
    assert paths.default_db() == str(tmp_path / "x.db")
    monkeypatch.setenv("AGENTSIM_DB", "")
    assert paths.default_db() == "agentsim.db"


def test_models_layer_reads_the_same_home(home: Path) -> None:
    from agentsim import models

    assert models.agentsim_home() == home and models.models_dir() == home / "models"


# ------------------------------------------------------------------------------------------
# hashing


def _write(p: Path, data: bytes, mtime_ns: int | None = None) -> Path:
    p.write_bytes(data)
    if mtime_ns is not None:
        os.utime(p, ns=(mtime_ns, mtime_ns))
    return p


def test_sha256_file_is_sha256(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 + 7)
    p = _write(tmp_path / "f.bin", data)
    assert hashing.sha256_file(p) == hashlib.sha256(data).hexdigest()
    assert hashing.sha256_file(p, chunk=10) == hashlib.sha256(data).hexdigest()


def test_cached_sha256_is_not_reread_while_size_and_mtime_hold(home: Path, tmp_path: Path) -> None:
    p = _write(tmp_path / "f.bin", b"a" * 100, mtime_ns=1_000_000_000)
    first = hashing.cached_sha256(p)
    assert first == hashlib.sha256(b"a" * 100).hexdigest()
    memo = json.loads(hashing.memo_path().read_text())
    assert memo == {f"{p.resolve()}|100|1000000000": first}
    assert hashing.memo_path() == home / "cache" / "sha256.json"
    # same size, same mtime, other bytes: the remembered digest is answered (it was not re-read) ...
    _write(p, b"b" * 100, mtime_ns=1_000_000_000)
    assert hashing.cached_sha256(p) == first
    # ... and a new mtime is a new version of the file
    _write(p, b"b" * 100, mtime_ns=2_000_000_000)
    assert hashing.cached_sha256(p) == hashlib.sha256(b"b" * 100).hexdigest()


def test_cached_sha256_trusts_a_matching_record_only(home: Path, tmp_path: Path) -> None:
    p = _write(tmp_path / "f.bin", b"abc", mtime_ns=5_000)
    real = hashlib.sha256(b"abc").hexdigest()
    record = {"sha256": "recorded", "bytes": 3, "mtime_ns": 5_000}
    assert hashing.cached_sha256(p, record) == "recorded"
    assert not hashing.memo_path().exists()  # a trusted record costs no read and no memo
    assert hashing.cached_sha256(p, {**record, "mtime_ns": 6_000}) == real
    assert hashing.cached_sha256(p, {**record, "bytes": 4}) == real
    assert hashing.cached_sha256(p, {"bytes": 3, "mtime_ns": 5_000}) == real


def test_memo_forgets_files_that_are_gone(home: Path, tmp_path: Path) -> None:
    a = _write(tmp_path / "a.bin", b"a")
    hashing.cached_sha256(a)
    a.unlink()
    b = _write(tmp_path / "b.bin", b"b")
    hashing.cached_sha256(b)
    keys = list(json.loads(hashing.memo_path().read_text()))
    assert len(keys) == 1 and keys[0].startswith(str(b.resolve()) + "|")


def test_a_damaged_memo_is_rebuilt(home: Path, tmp_path: Path) -> None:
    hashing.memo_path().parent.mkdir(parents=True)
    hashing.memo_path().write_text("{not json")
    p = _write(tmp_path / "f.bin", b"xyz")
    assert hashing.cached_sha256(p) == hashlib.sha256(b"xyz").hexdigest()
    assert len(json.loads(hashing.memo_path().read_text())) == 1


def test_missing_file_raises(home: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hashing.cached_sha256(tmp_path / "nope")


# ------------------------------------------------------------------------------------------
# versions


def test_dist_version() -> None:
    assert versions.dist_version("pytest") == importlib.metadata.version("pytest")
    assert versions.dist_version("no-such-distribution-agentsim-test") is None
    got = versions.dist_versions(["pytest", "no-such-distribution-agentsim-test"])
    assert list(got) == ["pytest", "no-such-distribution-agentsim-test"]
    assert got["pytest"] == importlib.metadata.version("pytest") and got["no-such-distribution-agentsim-test"] is None
