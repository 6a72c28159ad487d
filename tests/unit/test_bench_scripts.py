"""benchmarks/gpu_batching.py (issue 16's prepared GPU check): its figures, its refusals, its time
budget, and an end-to-end smoke run on the tiny model (CPU; on a GPU too where there is one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.scenario import load_scenario, resolve_scenario
from benchmarks import gpu_batching as gb


def _run(*, hops: int = 10, wall: float = 2.0, ok: int = 2, tasks: int = 4, energy: float | None = 8.0,
         kind: str | None = "measured", decoded: int = 100, decode_s: float = 1.0, agree: float | None = None) -> dict:
    r = {"hops": hops, "wall_s": wall, "tasks_ok": ok, "tasks": tasks, "energy_j": energy, "energy_kind": kind,
         "energy_source": "nvml", "decoded": decoded, "decode_s": decode_s, "evaluated": 50, "prefill_s": 0.5}
    if agree is not None:
        r["agree"] = agree
    return r


def test_merge_weights_rates_by_tokens_and_sums_energy() -> None:
    row = gb.merge(8, [_run(decoded=100, decode_s=1.0, agree=1.0), _run(decoded=300, decode_s=1.0, hops=30, agree=0.5)])
    assert row["gen_tok_s"] == pytest.approx(200.0)  # 400 tokens / 2 s, not the mean of 100 and 300
    assert row["prompt_tok_s"] == pytest.approx(100.0)
    assert row["hops_per_s"] == pytest.approx(40 / 4.0)
    assert row["agree"] == pytest.approx((10 * 1.0 + 30 * 0.5) / 40)
    assert row["s_per_task"] == pytest.approx(4.0 / 4) and row["s_per_instance"] == pytest.approx(4.0 / 8)
    assert row["j_per_task"] == pytest.approx(16.0 / 4) and row["j_per_instance"] == pytest.approx(16.0 / 8)
    assert row["energy_kind"] == "measured"


def test_merge_never_mixes_energy_kinds_nor_drops_a_missing_reading() -> None:
    mixed = gb.merge(1, [_run(kind="measured"), _run(kind="estimated")])
    assert mixed["energy_kind"] == "mixed" and mixed["j_per_task"] is None and mixed["j_per_instance"] is None
    assert mixed["s_per_task"] == pytest.approx(1.0)  # time is still given
    partial = gb.merge(1, [_run(), _run(energy=None)])
    assert partial["j_per_task"] is None  # never the energy of one run over the tasks of two
    none_ok = gb.merge(1, [_run(ok=0), _run(ok=0)])
    assert none_ok["j_per_task"] is None and none_ok["s_per_task"] is None
    assert none_ok["j_per_instance"] == pytest.approx(16.0 / 8)  # a run with no correct task still cost energy


def _result(precision: str, rows: list[dict]) -> dict:
    return {"precision": precision, "spec": f"hf@{precision}", "sets": {"demo": rows}}


def test_trap_ratios_are_against_the_baseline_at_the_same_batch_size() -> None:
    base = _result("bf16", [gb.merge(1, [_run(wall=2.0, energy=8.0)]), gb.merge(8, [_run(wall=1.0, energy=4.0)])])
    q4 = _result("int4", [gb.merge(1, [_run(wall=3.0, energy=10.0, ok=1)]),
                          gb.merge(8, [_run(wall=1.0, energy=2.0, kind="estimated")])])
    b1, b8 = gb.trap([base, q4])
    assert (b1["precision"], b1["B"], b8["B"]) == ("int4", 1, 8)
    assert b1["s_ratio"] == pytest.approx((3.0 / 1) / (2.0 / 2))  # per correct task: one right against two
    assert b1["j_ratio"] == pytest.approx((10.0 / 1) / (8.0 / 2))
    assert b1["s_instance_ratio"] == pytest.approx(1.5) and b1["j_instance_ratio"] == pytest.approx(1.25)
    assert b1["energy_kind"] == "measured"
    # estimated against measured: no energy ratio, the time ratio stays
    assert b8["j_ratio"] is None and b8["j_instance_ratio"] is None and b8["energy_kind"] == "unavailable"
    assert b8["s_ratio"] == pytest.approx(1.0)
    assert gb.trap([q4, base], "hf@bf16") == [b1, b8]  # the baseline named, wherever it stands
    assert gb.trap([q4], "hf@bf16") == []  # the baseline did not run: no ratios, no stand-in
    assert gb.trap([q4, base])[0]["baseline_precision"] == "int4"  # unnamed: the first result


def test_the_defaults_fit_the_gpu_budget(tmp_path: Path) -> None:
    """At the assumed step time the default run (3 precisions, B = 1, 8, 32, 32 instances, one
    warm-up load) is estimated at no more than 8 minutes: the GPU session has 15 in all."""
    (tmp_path / "d.yaml").write_text(gb.DECODE_HEAVY)
    scenarios = [resolve_scenario(s) for s in gb.DEMO] + [load_scenario(tmp_path / "d.yaml")]
    est = gb.estimate_s(scenarios, len(gb.PRECISIONS), gb.BATCHES, gb.INSTANCES, gb.STEP_S["cuda"], gb.LOAD_S["cuda"])
    assert 120 < est + gb.LOAD_S["cuda"] <= 8 * 60
    # B = 1: every LLM hop of every instance, each to its max_tokens plus the prefill step
    one = gb.estimate_s(scenarios[:1], 1, [1], 5, 1.0, 0.0)
    assert one == 5 * sum(h.max_tokens + 1 for h in scenarios[0].spec.hops if h.kind == "llm")
    # B = 4 on 5 instances: two calls per depth of LLM hops
    assert gb.estimate_s(scenarios[:1], 1, [4], 5, 1.0, 0.0) == 2 * 3 * 9


@pytest.mark.parametrize(("argv", "words"), [
    (["--batches", "8,32"], "must include 1"),
    (["--batches", "1,eight"], "as integers"),
    (["--instances", "0"], "at least 1"),
    (["--tiny", "--model", "x.gguf"], "give one"),
    (["--tiny", "--precisions", "bf16+native=true"], "every precision was refused"),
])
def test_bad_arguments_are_refused_with_the_reason(argv: list[str], words: str, capsys) -> None:
    assert gb.main(["--device", "cpu", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpu_batching: ") and words in err and "Traceback" not in err


def _nvml_sees_a_gpu() -> bool:
    from agentsim.hardware import probe_nvml

    return bool(probe_nvml().gpus)


@pytest.mark.skipif(_nvml_sees_a_gpu(), reason="NVML sees a GPU here")
def test_nvml_energy_without_a_gpu_is_a_clear_error(capsys) -> None:
    assert gb.main(["--device", "cpu", "--tiny", "--energy", "nvml"]) == 2
    err = capsys.readouterr().err
    assert "NVML" in err and "hint: " in err and "Traceback" not in err


@pytest.mark.hf
def test_cuda_without_a_gpu_is_a_clear_error(capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here")
    assert gb.main(["--tiny"]) == 2  # the default device is cuda
    err = capsys.readouterr().err
    assert "device=cuda" in err and "no CUDA GPU" in err and "Traceback" not in err


def _smoke(argv: list[str], tmp_path: Path, capsys) -> tuple[str, dict]:
    out = tmp_path / "gb.json"
    assert gb.main([*argv, "--tiny", "--batches", "1,2", "--instances", "2", "--precisions", "bf16,int4+group=3,int4",
                    "--json", str(out)]) == 0
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert len(data["refused"]) == 1 and "@int4,group=3," in data["refused"][0][0]
    assert "refused: " in text and "group=3" in text  # refused up front, the other precisions run
    assert "estimated wall time: at most" in text and "warm-up" in text
    assert [r["precision"] for r in data["results"]] == ["bf16", "int4"]
    for r in data["results"]:
        assert r["spec"] in text
        assert [row["B"] for row in r["sets"]["demo"]] == [1, 2]
        assert [row["B"] for row in r["sets"]["decode-heavy"]] == [1, 2]
        for rows in r["sets"].values():
            assert rows[0]["agree"] is None and rows[1]["agree"] is not None  # B = 1 is the reference
            assert all(row["hops"] and row["gen_tok_s"] and row["prompt_tok_s"] for row in rows)
    lines = text.splitlines()
    table = [ln.split() for ln in lines if ln.startswith("  ") and ln.split()[0] in ("1", "2")]
    assert len(table) == 2 * 2 * 2  # two precisions x two sets x two batch sizes
    assert all(row[1] != "-" and row[2] != "-" for row in table)  # gen tok/s and prompt tok/s printed
    trap = [ln.split() for ln in lines if ln.startswith("  int4 ")]
    assert [(t[1], t[2]) for t in trap] == [("demo", "1"), ("demo", "2"), ("decode-heavy", "1"), ("decode-heavy", "2")]
    assert len(data["trap"]) == 4
    kinds = {row["energy_kind"] for r in data["results"] for rows in r["sets"].values() for row in rows}
    assert len(kinds) == 1  # one meter, one kind
    if kinds <= {"measured", "estimated"}:
        assert all(t["s_instance_ratio"] and t["j_instance_ratio"] for t in data["trap"])
        assert f"J/task ({kinds.pop()})" in text
    return text, data


@pytest.mark.hf  # torch, transformers and three tiny-model loads: ~10 s, in the default tier (its --tiny mode)
def test_tiny_run_on_the_cpu_prints_every_row(tmp_path: Path, capsys) -> None:
    text, data = _smoke(["--device", "cpu"], tmp_path, capsys)
    assert data["energy_meter"]["kind"] in ("measured", "estimated")
    assert "(int4, emulated;" in text and "(bf16, native;" in text


@pytest.mark.hf
@pytest.mark.gpu
def test_tiny_run_on_the_gpu_with_nvml_energy(tmp_path: Path, capsys) -> None:
    """The GPU path itself (cuda, NVML) on the tiny model: what the prepared run will take."""
    _, data = _smoke([], tmp_path, capsys)
    assert data["energy_meter"]["name"] == "nvml"
    assert {row["energy_kind"] for r in data["results"] for row in r["sets"]["demo"]} == {"measured"}
