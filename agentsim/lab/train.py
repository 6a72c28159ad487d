"""Training a lab model at F32 on CPU, deterministically, with progress.

One thread (``torch.set_num_threads(1)``), deterministic algorithms, seeded weights and a seeded
stream of examples: the same config on the same machine gives the same weights bit for bit, so
the GGUF it writes has the same sha256. (Another CPU may round a matmul differently: the sha256
pinned in the catalog is checked after a rebuild, and a differing file is refused, not used.)

Loss is cross-entropy on the answer tokens and the EOS only (the prompt is given). AdamW, linear
warm-up then cosine decay, gradients clipped to norm 1.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import LabConfig
from .model import build, greedy
from .task import examples
from .tokenizer import EOS, PAD, decode, encode

__all__ = ["TrainResult", "train", "accuracy", "batch_tensors"]

#: (step, steps, loss) after each step
Progress = Callable[[int, int, float], None]

SEQ = 12  # "999-999=000" + EOS


@dataclass
class TrainResult:
    model: Any
    cfg: LabConfig
    final_loss: float
    seconds: float
    heldout_accuracy: float
    heldout_n: int


def batch_tensors(pairs: list[tuple[str, str]]) -> tuple[Any, Any]:
    """(inputs, targets) of shape (n, SEQ); targets are -100 except on the answer and EOS."""
    import torch

    ids = torch.full((len(pairs), SEQ + 1), PAD, dtype=torch.long)
    tgt = torch.full((len(pairs), SEQ), -100, dtype=torch.long)
    for i, (p, a) in enumerate(pairs):
        seq = encode(p) + encode(a) + [EOS]
        ids[i, : len(seq)] = torch.tensor(seq)
        n_p = len(encode(p))
        tgt[i, n_p - 1 : len(seq) - 1] = torch.tensor(seq[n_p:])
    return ids[:, :SEQ], tgt


def train(cfg: LabConfig, *, progress: Progress | None = None, steps: int | None = None, eval_n: int = 512) -> TrainResult:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(cfg.seed)
        model = build(cfg)
        total = steps or cfg.steps
        decay = [p for n, p in model.named_parameters() if p.dim() == 2]
        other = [p for n, p in model.named_parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                 {"params": other, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98))
        rng = random.Random(f"{cfg.name}:{cfg.seed}:train")
        t0 = time.perf_counter()
        loss_v = math.nan
        model.train()
        for step in range(total):
            lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * step / total))
            for g in opt.param_groups:
                g["lr"] = lr
            x, y = batch_tensors(examples(rng, cfg.batch))
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            loss_v = float(loss.detach())
            if progress:
                progress(step + 1, total, loss_v)
        seconds = time.perf_counter() - t0
        acc, n = accuracy(model, eval_n)
        return TrainResult(model.eval(), cfg, loss_v, seconds, acc, n)
    finally:
        torch.use_deterministic_algorithms(det)
        torch.set_num_threads(threads)


def accuracy(model: Any, n: int = 512, seed: int = 1) -> tuple[float, int]:
    """Exact-match accuracy of greedy answers on ``n`` held-out problems (never trained on)."""
    pairs = examples(random.Random(f"heldout:{seed}"), n, split="heldout")
    outs = greedy(model, [encode(p) for p, _ in pairs])
    right = sum(decode(o) == a for o, (_, a) in zip(outs, pairs, strict=True))
    return right / n, n
