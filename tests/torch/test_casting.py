"""The casting profiler: shapes from configs and GGUFs, and internally consistent timings on tiny
shapes (never a fixed number: the figures depend on the machine)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from agentsim.casting import (
    BatchRow,
    CastingConfig,
    LinearShape,
    amortised_batch,
    model_shapes,
    parse_batches,
    profile_casting,
    shapes_from_config,
    shapes_from_gguf,
)
from agentsim.errors import AgentsimError, ModelError

pytest.importorskip("torch")
pytestmark = pytest.mark.hf

TINY = [LinearShape("q_proj", 64, 64), LinearShape("down_proj", 64, 128), LinearShape("up_proj", 128, 64, count=2)]

QWEN_05B = {  # the published config.json of Qwen2.5-0.5B (the fields the profiler reads)
    "hidden_size": 896, "intermediate_size": 4864, "num_attention_heads": 14,
    "num_key_value_heads": 2, "num_hidden_layers": 24,
}


def test_shapes_from_config():
    shapes, layers = shapes_from_config(QWEN_05B)
    assert layers == 24
    got = {s.name: (s.out_features, s.in_features) for s in shapes}
    assert got == {"q_proj": (896, 896), "k_proj": (128, 896), "v_proj": (128, 896), "o_proj": (896, 896),
                   "gate_proj": (4864, 896), "up_proj": (4864, 896), "down_proj": (896, 4864)}
    with pytest.raises(ModelError, match="hidden_size"):
        shapes_from_config({"intermediate_size": 3})


def test_shapes_from_gguf_match_the_file(tiny_gguf: Path):
    from tests.tiny_models import TINY_CONFIG

    shapes, layers = shapes_from_gguf(tiny_gguf)
    h, f, kv = TINY_CONFIG["hidden"], TINY_CONFIG["ffn"], TINY_CONFIG["kv_heads"] * TINY_CONFIG["hidden"] // TINY_CONFIG["heads"]
    assert layers == TINY_CONFIG["layers"]
    assert {s.name: (s.out_features, s.in_features) for s in shapes} == {
        "q_proj": (h, h), "k_proj": (kv, h), "v_proj": (kv, h), "o_proj": (h, h),
        "gate_proj": (f, h), "up_proj": (f, h), "down_proj": (h, f),
    }


def test_model_shapes_sources(tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AGENTSIM_HOME", str(tmp_path / "home"))  # an empty catalog cache
    shapes, layers, src = model_shapes(str(tiny_gguf))
    assert src == str(tiny_gguf) and len(shapes) == 7
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(QWEN_05B))
    shapes, layers, src = model_shapes(str(folder))
    assert layers == 24 and src.endswith("config.json")
    with pytest.raises(ModelError):
        model_shapes(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelError, match="unknown model"):
        model_shapes("no-such-model")


def _check_consistent(report, batches):
    assert [r.batch for r in report.rows] == sorted(batches)
    for row in report.rows:
        assert 0.0 <= row.ratio <= 1.0
        assert row.dequant_s > 0 and row.matmul_s > 0
        assert math.isclose(row.total_s, row.dequant_s + row.matmul_s, rel_tol=1e-12)
        assert math.isclose(row.ratio, row.dequant_s / row.total_s, rel_tol=1e-12)
        assert math.isclose(row.slowdown, row.total_s / row.matmul_s, rel_tol=1e-12) and row.slowdown >= 1.0
        # the block totals are the per-shape medians, weighted by each shape's count
        d = sum(s["dequant_s"][row.batch] * s["count"] for s in report.per_shape)
        m = sum(s["matmul_s"][row.batch] * s["count"] for s in report.per_shape)
        assert math.isclose(d, row.dequant_s, rel_tol=1e-12) and math.isclose(m, row.matmul_s, rel_tol=1e-12)
    assert report.amortised_batch == amortised_batch(report.rows, report.threshold)
    if report.amortised_batch is not None:
        assert all(r.ratio < report.threshold for r in report.rows if r.batch >= report.amortised_batch)


@pytest.mark.parametrize("precision", ["int8", "int4", "mxfp4", "nvfp4", "fp8"])
def test_profile_is_internally_consistent(precision):
    batches = [1, 2, 8]
    rep = profile_casting(TINY, precision, batches, CastingConfig(dtype="f32", device="cpu", repeats=2, threads=1))
    _check_consistent(rep, batches)
    assert rep.precision == precision and rep.device.startswith("CPU") and rep.clock == "wall clock"
    assert [s["name"] for s in rep.per_shape] == ["q_proj", "down_proj", "up_proj"]
    assert all(s["storage_bytes"] > 0 for s in rep.per_shape)
    assert any("CPU figure" in n for n in rep.notes)


def test_more_batches_give_more_rows():
    few = profile_casting(TINY[:1], "int4", [1, 4], CastingConfig(dtype="f32", device="cpu", repeats=1, clock="cpu"))
    many = profile_casting(TINY[:1], "int4", [4, 1, 2, 16, 2], CastingConfig(dtype="f32", device="cpu", repeats=1, clock="cpu"))
    assert len(few.rows) == 2 and len(many.rows) == 4
    _check_consistent(many, [1, 2, 4, 16])
    assert many.clock == "thread CPU time" and many.threads == 1


def test_profile_restores_torch_threads():
    import torch

    before = torch.get_num_threads()
    profile_casting(TINY[:1], "int8", [1], CastingConfig(device="cpu", repeats=1, clock="cpu"))
    assert torch.get_num_threads() == before


def test_amortised_batch_definition():
    def rows(ratios):
        return [BatchRow(b, r, 1 - r, 1.0, r, 1 / (1 - r)) for b, r in ratios]

    assert amortised_batch(rows([(1, 0.9), (2, 0.6), (4, 0.4), (8, 0.2)]), 0.5) == 4
    assert amortised_batch(rows([(1, 0.9), (2, 0.4), (4, 0.6), (8, 0.2)]), 0.5) == 8  # must stay below
    assert amortised_batch(rows([(1, 0.9), (2, 0.8)]), 0.5) is None
    assert amortised_batch(rows([(1, 0.1)]), 0.5) == 1


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"precision": "bf16"}, "nothing to dequantize"),
        ({"precision": "int4", "dtype": "f8"}, "dtype"),
        ({"precision": "int4", "threshold": 1.5}, "threshold"),
        ({"precision": "int4", "repeats": 0}, "repeats"),
        ({"precision": "mxfp4", "block": 16}, "fixed block"),
        ({"precision": "int4", "clock": "cpu", "threads": 2}, "threads 1"),
        ({"precision": "int4", "device": "tpu"}, "unknown device"),
    ],
)
def test_bad_arguments(kwargs, words):
    precision = kwargs.pop("precision")
    with pytest.raises(AgentsimError, match=words):
        profile_casting(TINY, precision, [1], CastingConfig(**kwargs))


def test_parse_batches():
    assert parse_batches("4,1,2,2") == [1, 2, 4]
    for bad in ("", "0,1", "a,b"):
        with pytest.raises(AgentsimError):
            parse_batches(bad)


def test_cli_json(tiny_gguf: Path, capsys: pytest.CaptureFixture[str]):
    from agentsim.cli import main

    code = main(["casting", "--model", str(tiny_gguf), "--precision", "int4,nvfp4", "--batch", "1,4",
                 "--repeats", "1", "--clock", "cpu", "--dtype", "f32", "--json"])
    assert code == 0
    reports = json.loads(capsys.readouterr().out)
    assert [r["precision"] for r in reports] == ["int4", "nvfp4"]
    for r in reports:
        assert [row["batch"] for row in r["rows"]] == [1, 4]
        assert all(0 <= row["ratio"] <= 1 for row in r["rows"])
        assert r["layers"] == 2 and len(r["shapes"]) == 7


def test_cli_table_and_errors(tiny_gguf: Path, capsys: pytest.CaptureFixture[str]):
    from agentsim.cli import main

    assert main(["casting", "--model", str(tiny_gguf), "--batch", "1,2", "--repeats", "1", "--clock", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "casting ratio" in out and "int4" in out and "CPU figure" in out
    code = main(["casting", "--model", str(tiny_gguf), "--precision", "f16", "--batch", "1"])
    err = capsys.readouterr().err
    assert code != 0 and "nothing to dequantize" in err and "Traceback" not in err
    assert main(["casting", "--model", str(tiny_gguf), "--batch", "0"]) != 0


@pytest.mark.gpu
def test_profile_on_cuda():
    rep = profile_casting(TINY, "nvfp4", [1, 16, 64], CastingConfig(dtype="bf16", device="cuda", repeats=3))
    _check_consistent(rep, [1, 16, 64])
    assert "compute capability" in rep.device
