"""A small Llama in torch: exactly the graph llama.cpp's ``llama`` architecture computes.

RMSNorm (eps 1e-5) before attention and before the FFN, rotary position embeddings on adjacent
pairs (llama.cpp's "normal" RoPE, base 10000, over the whole head), causal multi-head attention
scaled by ``1/sqrt(head_dim)``, a SwiGLU FFN (``down(silu(gate(x)) * up(x))``), a final RMSNorm and
an untied output matrix. The parameter names map one to one onto GGUF tensor names
(:data:`GGUF_NAMES`), so the export writes the weights as they are, with no permutation.

torch is imported inside the functions (agentsim's core never imports it at import time).
"""

from __future__ import annotations

from typing import Any

from .config import LabConfig
from .tokenizer import EOS, VOCAB_SIZE

__all__ = ["build", "greedy", "gguf_tensors"]

EPS = 1e-5
ROPE_BASE = 10000.0


def build(cfg: LabConfig) -> Any:
    """A freshly initialised model (``torch.manual_seed`` decides its weights)."""
    import torch
    from torch import nn

    h, nh, hd = cfg.hidden, cfg.heads, cfg.head_dim

    class RMSNorm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(h))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * self.weight

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn_norm = RMSNorm()
            self.q = nn.Linear(h, nh * hd, bias=False)
            self.k = nn.Linear(h, nh * hd, bias=False)
            self.v = nn.Linear(h, nh * hd, bias=False)
            self.o = nn.Linear(nh * hd, h, bias=False)
            self.ffn_norm = RMSNorm()
            self.gate = nn.Linear(h, cfg.ffn, bias=False)
            self.up = nn.Linear(h, cfg.ffn, bias=False)
            self.down = nn.Linear(cfg.ffn, h, bias=False)

        def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            b, t, _ = x.shape
            y = self.attn_norm(x)
            q = _rope(self.q(y).view(b, t, nh, hd), cos, sin).transpose(1, 2)
            k = _rope(self.k(y).view(b, t, nh, hd), cos, sin).transpose(1, 2)
            v = self.v(y).view(b, t, nh, hd).transpose(1, 2)
            att = (q @ k.transpose(-1, -2)) * hd**-0.5 + mask[:t, :t]
            y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, nh * hd)
            x = x + self.o(y)
            y = self.ffn_norm(x)
            return x + self.down(nn.functional.silu(self.gate(y)) * self.up(y))

    class LabLlama(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cfg = cfg
            self.embed = nn.Embedding(VOCAB_SIZE, h)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.layers))
            self.norm = RMSNorm()
            self.output = nn.Linear(h, VOCAB_SIZE, bias=False)
            inv = ROPE_BASE ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
            ang = torch.arange(cfg.context, dtype=torch.float64)[:, None] * inv[None, :]
            self.register_buffer("cos", ang.cos().float(), persistent=False)
            self.register_buffer("sin", ang.sin().float(), persistent=False)
            self.register_buffer("mask", torch.full((cfg.context, cfg.context), float("-inf")).triu(1), persistent=False)
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    std = 0.02 if not name.endswith(("o.weight", "down.weight")) else 0.02 / (2 * cfg.layers) ** 0.5
                    nn.init.normal_(p, std=std)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            t = ids.shape[1]
            x = self.embed(ids)
            for blk in self.blocks:
                x = blk(x, self.cos[:t], self.sin[:t], self.mask)
            return self.output(self.norm(x))

    return LabLlama()


def _rope(x: Any, cos: Any, sin: Any) -> Any:
    """Rotate adjacent pairs (x[2i], x[2i+1]) by position * base**(-2i/d): llama.cpp's mode 0."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    out = x.new_empty(x.shape)
    out[..., 0::2] = x1 * c - x2 * s
    out[..., 1::2] = x1 * s + x2 * c
    return out


def greedy(model: Any, prompts: list[list[int]], max_new: int = 6) -> list[list[int]]:
    """Greedy continuations (token ids, the EOS token excluded) of each prompt, batched by length."""
    import torch

    out: list[list[int] | None] = [None] * len(prompts)
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    model.eval()
    with torch.no_grad():
        for _n, idx in sorted(by_len.items()):
            ids = torch.tensor([prompts[i] for i in idx], dtype=torch.long)
            done = torch.zeros(len(idx), dtype=torch.bool)
            gen: list[list[int]] = [[] for _ in idx]
            for _ in range(max_new):
                nxt = model(ids)[:, -1].argmax(-1)
                for j, tok in enumerate(nxt.tolist()):
                    if not done[j]:
                        if tok == EOS:
                            done[j] = True
                        else:
                            gen[j].append(tok)
                if bool(done.all()):
                    break
                ids = torch.cat([ids, nxt[:, None]], dim=1)
            for j, i in enumerate(idx):
                out[i] = gen[j]
    return [o or [] for o in out]


def gguf_tensors(model: Any) -> list[tuple[str, Any]]:
    """(GGUF tensor name, float32 numpy array) for every weight, in llama.cpp's order."""
    m = model
    out = [("token_embd.weight", m.embed.weight)]
    for i, b in enumerate(m.blocks):
        out += [
            (f"blk.{i}.attn_norm.weight", b.attn_norm.weight),
            (f"blk.{i}.attn_q.weight", b.q.weight),
            (f"blk.{i}.attn_k.weight", b.k.weight),
            (f"blk.{i}.attn_v.weight", b.v.weight),
            (f"blk.{i}.attn_output.weight", b.o.weight),
            (f"blk.{i}.ffn_norm.weight", b.ffn_norm.weight),
            (f"blk.{i}.ffn_gate.weight", b.gate.weight),
            (f"blk.{i}.ffn_up.weight", b.up.weight),
            (f"blk.{i}.ffn_down.weight", b.down.weight),
        ]
    out += [("output_norm.weight", m.norm.weight), ("output.weight", m.output.weight)]
    return [(n, t.detach().to("cpu").float().contiguous().numpy()) for n, t in out]
