"""The llama backend's cost twins: a GGUF with a real model's shapes and random weights, loaded by
llama.cpp, quantized by the ladder and replayed over recorded token counts; the catalog's twins and
their label; the sha256 pin's refusal path. The files here are cut (1 layer, a 1024-token
vocabulary) so the default tier stays fast; the catalog's full files are measured by
benchmarks/llama_twins.py (docs/scale.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsim import models
from agentsim.errors import ModelError
from agentsim.hashing import sha256_file
from agentsim.lab.twin_gguf import twin_params, twin_tensors, write_twin_gguf
from agentsim.lab.twins import SHAPES, TWIN_LABEL, replay_llama
from agentsim.models.catalog import CATALOG
from agentsim.models.gguf_header import check_gguf

pytestmark = pytest.mark.llama


def test_full_shapes_have_the_published_parameter_counts():
    for shape in SHAPES.values():
        assert twin_params(shape) == shape.params  # every tensor of the model card, tied output counted once
    names = [n for n, _, _ in twin_tensors(SHAPES["qwen2.5-7b"])]
    assert "output.weight" in names and len(names) == 1 + 28 * 12 + 2  # untied 7B
    assert "output.weight" not in [n for n, _, _ in twin_tensors(SHAPES["qwen2.5-0.5b"])]


@pytest.mark.parametrize("shape", ["qwen2.5-0.5b"])  # a 7B layer is 233M parameters: too slow for this tier
def test_a_cut_twin_loads_in_llama_cpp_and_replays_the_counts(shape, tmp_path: Path):
    s = SHAPES[shape]
    path = write_twin_gguf(s, tmp_path / "t.gguf", layers=1, vocab=1024)
    summary = check_gguf(path)
    assert summary.n_params == twin_params(s, 1, 1024)
    assert write_twin_gguf(s, tmp_path / "again.gguf", layers=1, vocab=1024) and \
        sha256_file(tmp_path / "again.gguf") == sha256_file(path)  # a function of shape and seed
    assert sha256_file(write_twin_gguf(s, tmp_path / "s1.gguf", layers=1, vocab=1024, seed=1)) != sha256_file(path)
    hops = [(40, 3), (25, 1)]
    r = replay_llama(str(path), hops, n_threads=1)
    assert r["label"] == TWIN_LABEL and r["hops"] == 2 and r["batch"] == 1
    assert r["prompt_tokens"] == 65 and r["completion_tokens"] == 4 and r["decode_steps"] == 2
    assert r["seconds"] > 0 and r["prefill_s"] > 0 and r["s_per_token"] == pytest.approx(r["seconds"] / 4)
    assert r["joules"] is None  # no meter given: no energy figure, not a zero


def test_the_ladder_quantizes_a_twin_like_any_f16_source(tmp_path: Path):
    path = write_twin_gguf(SHAPES["qwen2.5-1.5b"], tmp_path / "t.gguf", layers=1, vocab=1024)
    name = models.add(path, name="twin-cut", license="Apache-2.0")
    built = models.prepare(name, ["f16", "q8_0", "q4_0"])
    assert set(built) >= {"f16", "q8_0", "q4_0"}
    q4 = models.resolve(name, "q4_0").path
    assert "Q4_0" in check_gguf(q4).tensor_types()
    r = replay_llama(str(q4), [(30, 2)], n_threads=1)
    assert r["completion_tokens"] == 2 and r["seconds"] > 0


def test_catalog_twins_are_labelled_and_pinned():
    twins = {n: m for n, m in CATALOG.items() if m.twin}
    assert set(twins) == {"twin-qwen2.5-0.5b", "twin-qwen2.5-1.5b"}
    for m in twins.values():
        assert m.description.startswith(TWIN_LABEL) and TWIN_LABEL in m.notes
        assert m.source_precision == "f16" and not m.parts and not m.lab and len(m.sha256) == 64 and m.bytes > 9e8
    listed = {it["name"]: it for it in models.list_models()}
    assert listed["twin-qwen2.5-0.5b"]["twin"] and listed["twin-qwen2.5-0.5b"]["label"] == TWIN_LABEL
    assert not listed["lab-1m"]["twin"] and listed["lab-1m"]["label"] is None


def test_a_twin_that_comes_out_different_is_refused_and_kept(monkeypatch):
    """The pin's refusal path, on a cut shape so it is fast: the file written is not the catalogued one."""
    from dataclasses import replace

    from agentsim.lab import twins as twins_mod
    from agentsim.models import twin_source

    cut = replace(SHAPES["qwen2.5-0.5b"], layers=1, vocab=1024)
    monkeypatch.setitem(twins_mod.SHAPES, "qwen2.5-0.5b", cut)
    with pytest.raises(ModelError, match="is not the catalogued one") as ei:
        twin_source.fetch_twin(CATALOG["twin-qwen2.5-0.5b"])
    assert "agentsim models add" in (ei.value.hint or "")
    from agentsim.models.cache import model_dir

    mdir = model_dir("twin-qwen2.5-0.5b")
    assert not (mdir / "source.gguf").exists() and list(mdir.glob("written-*.gguf"))
