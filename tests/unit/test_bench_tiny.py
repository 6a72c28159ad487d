"""Every benchmark's ``--tiny`` mode runs in the default tier, so a benchmark that breaks is
noticed (``llama_overhead.py`` once broke unseen). gpu_batching's is in test_bench_scripts.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.llama


def test_llama_overhead_tiny_agrees_with_raw_llama_cpp(capsys) -> None:
    from benchmarks import llama_overhead

    assert llama_overhead.main(["--tiny", "--instances", "1", "--reps", "1", "--scenarios", "chain-linear",
                                "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{"):])
    row = summary["rows"][0]
    assert summary["hops_per_rep"] == 3 and row["same_outputs"] == 3  # agentsim's texts are raw llama.cpp's
    assert row["agentsim_completion_tokens"] == row["raw_completion_tokens"] > 0
    assert summary["median_ratio"] > 0 and summary["engine_ms_per_hop"] is not None


def test_batch_throughput_tiny_prints_every_batch_and_agrees(tmp_path: Path, capsys) -> None:
    from benchmarks import batch_throughput

    out = tmp_path / "bt.json"
    assert batch_throughput.main(["--tiny", "--instances", "2", "--batches", "1,2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "decode-heavy" in text and "prefill ceiling" in text
    (result,) = json.loads(out.read_text())
    for rows in result["sets"].values():
        assert [r["B"] for r in rows] == [1, 2]
        assert rows[1]["agree"] == 1.0  # batch 2 answers exactly as batch 1


def test_llama_twins_tiny_replays_the_recorded_counts(tmp_path: Path, capsys) -> None:
    from benchmarks import llama_twins

    out = tmp_path / "tw.json"
    assert llama_twins.main(["--tiny", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["rung"] for r in result["rows"]] == ["f16", "q8_0", "q4_0"] and result["hops"] == 4
    assert all(r["label"] == "cost twin (random weights of the same shapes)" for r in result["rows"])
    assert result["rows"][0]["s_per_hop_x_f16"] == 1.0 and all(r["seconds"] > 0 for r in result["rows"])
    assert all(r["completion_tokens"] == result["rows"][0]["completion_tokens"] > 0 for r in result["rows"])
    assert "x f16" in capsys.readouterr().out
    assert llama_twins.main(["--rungs", "q4_0"]) == 2  # no f16 baseline: refused, nothing run
