"""The casting profiler's real kernels: torchao's int8-wo/int4-wo linears timed beside their
emulated form (agentsim int8/int4: dequantize, then the dense matmul). Timings are checked for
consistency only, never against a fixed number (they depend on the machine)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from agentsim.casting import (
    CASTING_PRECISIONS,
    EMULATED_FORM,
    CastingConfig,
    LinearShape,
    profile_casting,
)
from agentsim.errors import AgentsimError, MissingDependencyError

pytest.importorskip("torch")
pytest.importorskip("torchao")
pytestmark = pytest.mark.hf

TINY = [LinearShape("q_proj", 64, 64), LinearShape("down_proj", 64, 128), LinearShape("up_proj", 128, 64, count=2)]


def test_precisions_offered():
    assert {"int8-wo", "int4-wo", "fp8"} <= set(CASTING_PRECISIONS)
    assert EMULATED_FORM == {"int8-wo": "int8", "int4-wo": "int4"}


@pytest.mark.parametrize("precision", ["int8-wo", "int4-wo"])
def test_real_kernel_beside_its_emulated_form(precision: str) -> None:
    batches = [1, 4]
    rep = profile_casting(TINY, precision, batches, CastingConfig(dtype="bf16", device="cpu", repeats=2, threads=1))
    assert rep.precision == precision and rep.emulated_as == EMULATED_FORM[precision] and rep.block == 32
    assert rep.kernel and rep.kernel.startswith("torchao ")
    assert any(n.startswith("kernel: torchao") for n in rep.notes)
    for row in rep.rows:
        k = sum(s["kernel_s"][row.batch] * s["count"] for s in rep.per_shape)
        assert row.kernel_s is not None and row.kernel_s > 0 and math.isclose(row.kernel_s, k, rel_tol=1e-12)
        assert math.isclose(row.kernel_vs_dense, row.kernel_s / row.matmul_s, rel_tol=1e-12)
        assert math.isclose(row.kernel_vs_emulated, row.kernel_s / row.total_s, rel_tol=1e-12)
    assert [row.batch for row in rep.rows] == batches


def test_emulated_precisions_have_no_kernel_columns():
    rep = profile_casting(TINY[:1], "int4", [1], CastingConfig(dtype="f32", device="cpu", repeats=1, clock="cpu"))
    assert rep.kernel is None and rep.emulated_as is None and rep.rows[0].kernel_s is None


def test_real_kernel_needs_whole_groups():
    with pytest.raises(AgentsimError, match="unquantized"):
        profile_casting([LinearShape("odd", 64, 40)], "int4-wo", [1], CastingConfig(device="cpu", repeats=1))


def test_missing_torchao_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "torchao", None)
    with pytest.raises(MissingDependencyError, match=r"agentsim\[quant\]"):
        profile_casting(TINY[:1], "int8-wo", [1], CastingConfig(device="cpu", repeats=1))


def test_cli_json_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from agentsim.cli import main
    from tests.tiny_models import write_tiny_gguf

    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    assert main(["casting", "--model", str(gguf), "--precision", "int4-wo", "--batch", "1,2", "--repeats", "1",
                 "--threads", "1", "--json"]) == 0
    (r,) = json.loads(capsys.readouterr().out)
    assert r["precision"] == "int4-wo" and r["emulated_as"] == "int4" and r["kernel"].startswith("torchao")
    assert all(row["kernel_s"] > 0 for row in r["rows"])
    assert main(["casting", "--model", str(gguf), "--precision", "int8-wo", "--batch", "1", "--repeats", "1",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "emulated as int8" in out and "real kernel: torchao" in out
