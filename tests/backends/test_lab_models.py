"""The shipped lab model on the real loaders: its sha256 pin, the ladder from a true F32 source,
and greedy answers identical in torch, llama.cpp and transformers on held-out problems."""

from __future__ import annotations

import random

import pytest

from agentsim import models
from agentsim.backends.base import GenerationRequest, create_backend
from agentsim.errors import ModelError
from agentsim.lab.task import examples
from agentsim.lab.tokenizer import decode, encode
from agentsim.models.catalog import CATALOG
from agentsim.models.lab_source import shipped_file
from agentsim.precision import LLAMA_TRUE_SOURCE_RUNGS

pytestmark = pytest.mark.llama

HELD = examples(random.Random("backend-test"), 64, split="heldout")


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> object:
    return tmp_path_factory.mktemp("lab_home")


@pytest.fixture
def lab1m(lab_home, monkeypatch):
    monkeypatch.setenv("AGENTSIM_HOME", str(lab_home))
    models.prepare("lab-1m")  # copies the shipped file, checks its sha256, builds all 8 rungs
    return lab_home


def test_shipped_file_is_the_pinned_one():
    p = shipped_file("lab-1m")
    assert p is not None and p.stat().st_size == CATALOG["lab-1m"].bytes < 5_000_000
    assert models.sha256_file(p) == CATALOG["lab-1m"].sha256
    assert shipped_file("lab-16m") is None  # over 5 MB: never package data


def test_ladder_from_the_true_source(lab1m):
    (entry,) = [m for m in models.list_models() if m["name"] == "lab-1m"]
    assert entry["source_precision"] == "f32" and entry["fetched"]
    rungs = {r["precision"]: r for r in entry["rungs"]}
    assert list(rungs) == list(LLAMA_TRUE_SOURCE_RUNGS)
    assert rungs["f32"]["sha256"] == CATALOG["lab-1m"].sha256  # the F32 rung is the source
    expect = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q4_0": "Q4_0", "mxfp4": "MXFP4",
              "nvfp4": "NVFP4"}
    for rung, t in expect.items():
        assert t in rungs[rung]["tensor_types"], (rung, rungs[rung]["tensor_types"])
    assert "Q4_K" in rungs["q4_k_m"]["tensor_types"]
    manifest = models.cache.read_manifest("lab-1m")
    for rung in LLAMA_TRUE_SOURCE_RUNGS:
        rec = manifest["rungs"][rung]
        assert rec["made_from_sha256"] == CATALOG["lab-1m"].sha256  # every rung from the F32 weights
        assert not rec.get("fallback_types"), (rung, rec.get("fallback_types"))  # widths fit every block
    assert models.resolve("lab-1m", None).precision == "f32"  # the top rung by default


def test_a_16_bit_source_has_no_wider_rungs(tiny_gguf_f16, tmp_path, monkeypatch):
    """An F16 (or quantized) source keeps the short ladder: an F32 rung would hold nothing more."""
    monkeypatch.setenv("AGENTSIM_HOME", str(tmp_path / "home"))
    name = models.add(tiny_gguf_f16, name="tiny16")
    with pytest.raises(ModelError, match="has no f32, bf16 rung"):
        models.prepare(name, ["f32", "bf16"])


def test_greedy_answers_equal_in_torch_and_llama_cpp(lab1m):
    pytest.importorskip("torch")
    from agentsim.lab.export import load_gguf
    from agentsim.lab.model import greedy

    path = models.resolve("lab-1m", "f32").path
    want = [decode(o) for o in greedy(load_gguf(path, "lab-1m"), [encode(p) for p, _ in HELD])]
    b = create_backend("llama:lab-1m@f32,n_threads=1")
    try:
        got = [b.generate(GenerationRequest(prompt=p, max_tokens=6)).text for p, _ in HELD]
    finally:
        b.close()
    assert got == want
    right = sum(g == a for g, (_, a) in zip(got, HELD, strict=True))
    assert right > 0  # a trained model: some held-out answers are right


@pytest.mark.hf
def test_greedy_answers_equal_in_transformers(lab1m):
    pytest.importorskip("torch")
    from agentsim.lab.export import load_gguf
    from agentsim.lab.model import greedy

    path = models.resolve("lab-1m", "f32").path
    want = [decode(o) for o in greedy(load_gguf(path, "lab-1m"), [encode(p) for p, _ in HELD[:24]])]
    b = create_backend("hf:lab-1m@f32,device=cpu,threads=1")
    try:
        got = [b.generate(GenerationRequest(prompt=p, max_tokens=6)).text for p, _ in HELD[:24]]
    finally:
        b.close()
    assert got == want
