"""The lab models' torch side: deterministic training, a lossless F32 GGUF round trip."""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")

from agentsim.lab.config import LAB_MODELS  # noqa: E402
from agentsim.lab.export import load_gguf, write_gguf  # noqa: E402
from agentsim.lab.model import greedy  # noqa: E402
from agentsim.lab.task import examples  # noqa: E402
from agentsim.lab.tokenizer import EOS, encode  # noqa: E402
from agentsim.lab.train import batch_tensors, train  # noqa: E402

CFG = replace(LAB_MODELS["lab-1m"], batch=16, warmup=2)


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_training_is_deterministic_and_shows_progress(tmp_path):
    seen = []
    a = train(CFG, steps=3, eval_n=8, progress=lambda s, n, loss: seen.append((s, n)))
    b = train(CFG, steps=3, eval_n=8)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    pa, pb = write_gguf(a.model, CFG, tmp_path / "a.gguf"), write_gguf(b.model, CFG, tmp_path / "b.gguf")
    assert _sha(pa) == _sha(pb)
    c = train(replace(CFG, seed=1), steps=3, eval_n=8)
    assert _sha(write_gguf(c.model, CFG, tmp_path / "c.gguf")) != _sha(pa)  # the check can fail


def test_gguf_round_trip_is_lossless(tmp_path):
    torch.manual_seed(0)
    r = train(CFG, steps=2, eval_n=8)
    p = write_gguf(r.model, CFG, tmp_path / "m.gguf")
    back = load_gguf(p, "lab-1m")
    for (n1, t1), (n2, t2) in zip(r.model.state_dict().items(), back.state_dict().items(), strict=True):
        assert n1 == n2 and torch.equal(t1, t2), n1


def test_loss_is_on_the_answer_and_eos_only():
    x, y = batch_tensors([("12+3=", "15")])
    assert x[0, :7].tolist() == encode("12+3=15")
    assert [t for t in y[0].tolist() if t != -100] == encode("15") + [EOS]


def test_greedy_batches_by_length_like_one_at_a_time():
    torch.manual_seed(0)
    r = train(CFG, steps=2, eval_n=8)
    prompts = [encode(p) for p, _ in examples(random.Random(0), 12, split="heldout")]
    assert greedy(r.model, prompts) == [greedy(r.model, [p])[0] for p in prompts]
