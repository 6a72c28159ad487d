"""The lab task, tokenizer, family and catalog entries (no torch)."""

from __future__ import annotations

import random

import pytest

from agentsim.lab import task, tokenizer
from agentsim.lab.config import LAB_MODELS
from agentsim.models.catalog import CATALOG
from agentsim.precision import LLAMA_RUNGS, LLAMA_TRUE_SOURCE_RUNGS, ladder_rungs


def test_chains_stay_in_range_and_mix_operations():
    rng = random.Random(0)
    ops = {"+": 0, "-": 0, "*": 0}
    three_digit = total = 0
    for _ in range(2000):
        v = task.draw_start(rng)
        for _ in range(8):
            op, b = task.draw_step(rng, v)
            ops[op] += 1
            if op in "+-":
                total += 1
                three_digit += b >= 100
            v = task.apply(v, op, b)
            assert 0 <= v <= task.MAX_VALUE
    assert min(ops.values()) > 2000  # all three operations, each often
    assert three_digit / total > 0.75  # mostly 3-digit operands (79 %)


def test_heldout_split_is_disjoint_and_a_sixteenth():
    train = task.examples(random.Random(1), 3000)
    held = task.examples(random.Random(1), 300, split="heldout")
    assert not {p for p, _ in train} & {p for p, _ in held}
    share = sum(task.held_out(v, "+", 100) for v in range(900)) / 900
    assert 0.03 < share < 0.10
    for p, a in held[:50]:
        a_, op, b = None, None, None
        for o in "+-*":
            if o in p:
                a_, b = p[:-1].split(o)
                op = o
        assert task.answer(task.apply(int(a_), op, int(b))) == a
    with pytest.raises(ValueError):
        task.examples(random.Random(1), 1, split="test")


def test_tokenizer_is_bytes_plus_one_merge_and_three_controls():
    toks = tokenizer.tokens()
    assert len(toks) == tokenizer.VOCAB_SIZE == 260
    assert toks[tokenizer.EOS] == "<|im_end|>" and toks[tokenizer.BOS] == "<|endoftext|>"
    assert tokenizer.encode("412+37=") == list(b"412+37=")
    assert tokenizer.decode(tokenizer.encode("-12") + [tokenizer.EOS]) == "-12"
    with pytest.raises(ValueError):
        tokenizer.encode("a  b")


def test_lab_arith_family_answers_are_exact():
    from agentsim.scenario.resolve import resolve_scenario

    sc = resolve_scenario("lab-arith", {"depth": 6})
    for inst in sc.instances(20, seed=3):
        v = inst.vars["start"]
        for i, (op, b) in enumerate(zip(inst.vars["ops"], inst.vars["operands"], strict=True)):
            v = task.apply(v, op, b)
            assert inst.expected[f"h{i + 1}"] == v and 0 <= v <= 999
    assert sc.hops["h2"].prompt == "{{ '%03d' | format(h1) }}{{ ops[1] }}{{ '%03d' | format(operands[1]) }}="
    assert sc.render_system(sc.instances(1)[0]) is None  # no system text: the hop text alone


def test_catalog_lab_entries_are_true_f32_sources():
    labs = [m for m in CATALOG.values() if m.lab]
    assert {"lab-0.6m", "lab-1m"} <= {m.name for m in labs} <= set(LAB_MODELS)
    from agentsim.lab.tokenizer import VOCAB_SIZE

    for m in labs:
        assert m.source_precision == "f32" and not m.parts and len(m.sha256) == 64
        assert m.params == LAB_MODELS[m.name].params(VOCAB_SIZE)
        assert m.bytes > 4 * m.params  # F32 weights and the header
        cfg = LAB_MODELS[m.name]
        assert cfg.hidden % 256 == 0 and cfg.ffn % 256 == 0  # every K-quant super-block fits
    assert ladder_rungs("f32") == LLAMA_TRUE_SOURCE_RUNGS
    assert ladder_rungs("q4_k_m") == LLAMA_RUNGS
    assert set(LLAMA_TRUE_SOURCE_RUNGS) >= {"f32", "f16", "bf16", "q8_0", "q4_k_m", "q4_0", "mxfp4", "nvfp4"}


def test_models_train_refuses_a_model_that_is_not_a_lab_model(capsys):
    from agentsim.cli import main

    assert main(["models", "train", "qwen2.5-coder-0.5b"]) == 2
    err = capsys.readouterr()
    assert "not a lab model" in err.out + err.err and "lab-1m" in err.out + err.err
