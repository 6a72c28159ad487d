"""Cost twins as GGUF files: Qwen2 architecture, a real model's published shapes, seeded random weights.

The ``llama`` backend's side of :mod:`agentsim.lab.twins`: :func:`write_twin_gguf` writes an
ordinary ``qwen2`` GGUF at F16 with exactly the tensors (names, shapes, biases, tied or untied
output) of Qwen2.5-0.5B/1.5B/7B and normal(0, 0.02) weights drawn from a seeded generator (norm
weights 1), so llama.cpp loads it, the ladder quantizes it like any F16 source, and a forward
pass costs what the real model's costs. Its vocabulary has the real size (the output matrix is a
large part of a small model's cost): the lab tokenizer's 259 tokens and fillers. It answers
nothing; everywhere it appears it is labelled :data:`agentsim.lab.twins.TWIN_LABEL`.

The file is written one tensor at a time (memory stays at one tensor, not the model), and is a
function of the shape and the seed alone: the same bytes on every machine with the same numpy
generator, so the catalog pins its sha256 like any other model. numpy and gguf only (no torch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from .tokenizer import CHAT_TEMPLATE, EOS, MERGES, PAD, token_types, tokens
from .twins import TWIN_LABEL, TwinShape

__all__ = ["write_twin_gguf", "twin_tensors", "twin_params"]

#: the weights' standard deviation (transformers' Qwen2 initialiser)
STD = 0.02
#: Qwen2.5's RMSNorm epsilon and RoPE base (their config.json)
EPS = 1e-6
ROPE_BASE = 1_000_000.0
#: the context a twin declares (the replayed hops are ~100 tokens; llama.cpp sizes its KV cache by n_ctx)
CONTEXT = 32768


def twin_tensors(shape: TwinShape, layers: int | None = None,
                 vocab: int | None = None) -> Iterator[tuple[str, tuple[int, ...], bool]]:
    """(GGUF tensor name, numpy shape, is a matrix) of every tensor, in file order."""
    h, kv = shape.hidden, shape.hidden // shape.heads * shape.kv_heads
    v = vocab or shape.vocab
    yield "token_embd.weight", (v, h), True
    for i in range(layers or shape.layers):
        b = f"blk.{i}."
        yield b + "attn_norm.weight", (h,), False
        yield b + "attn_q.weight", (h, h), True
        yield b + "attn_q.bias", (h,), False
        yield b + "attn_k.weight", (kv, h), True
        yield b + "attn_k.bias", (kv,), False
        yield b + "attn_v.weight", (kv, h), True
        yield b + "attn_v.bias", (kv,), False
        yield b + "attn_output.weight", (h, h), True
        yield b + "ffn_norm.weight", (h,), False
        yield b + "ffn_gate.weight", (shape.ffn, h), True
        yield b + "ffn_up.weight", (shape.ffn, h), True
        yield b + "ffn_down.weight", (h, shape.ffn), True
    yield "output_norm.weight", (h,), False
    if not shape.tie:
        yield "output.weight", (v, h), True


def twin_params(shape: TwinShape, layers: int | None = None, vocab: int | None = None) -> int:
    """Elements of every tensor the file holds (a tied output matrix counted once, as GGUF stores it)."""
    total = 0
    for _, dims, _ in twin_tensors(shape, layers, vocab):
        n = 1
        for d in dims:
            n *= d
        total += n
    return total


def _vocab(n: int) -> tuple[list[str], list[int]]:
    base, types = tokens(), token_types()
    fill = n - len(base)
    if fill < 0:
        raise ValueError(f"a twin vocabulary needs at least {len(base)} tokens, not {n}")
    return base + [f"<|twin_{i}|>" for i in range(fill)], types + [5] * fill  # UNUSED: never produced by text


def write_twin_gguf(shape: TwinShape, path: str | Path, *, seed: int = 0, layers: int | None = None,
                    vocab: int | None = None, progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``shape``'s twin to ``path`` at F16; returns the path. ``layers`` and ``vocab`` cut it
    (tests and ``--tiny`` runs: every other dimension is the real one)."""
    import gguf
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_layers = layers or shape.layers
    w = gguf.GGUFWriter(str(path), "qwen2")
    n_vocab = vocab or shape.vocab
    w.add_name(f"agentsim-twin-{shape.name}" + (f"-l{n_layers}" if layers else "") + (f"-v{n_vocab}" if vocab else ""))
    w.add_description(f"{TWIN_LABEL}: {shape.name}'s published shapes, normal(0, {STD}) weights, seed {seed}")
    w.add_context_length(CONTEXT)
    w.add_embedding_length(shape.hidden)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(shape.ffn)
    w.add_head_count(shape.heads)
    w.add_head_count_kv(shape.kv_heads)
    w.add_rope_freq_base(ROPE_BASE)
    w.add_layer_norm_rms_eps(EPS)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    toks, types = _vocab(n_vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_token_merges(list(MERGES))
    w.add_bos_token_id(PAD)
    w.add_eos_token_id(EOS)
    w.add_pad_token_id(PAD)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)
    specs = list(twin_tensors(shape, layers, vocab))
    for name, dims, matrix in specs:
        dtype = np.float16 if matrix else np.float32
        n = int(np.prod(dims))
        w.add_tensor_info(name, dims, np.dtype(dtype), n * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for i, (name, dims, matrix) in enumerate(specs):
        if name.endswith("norm.weight"):
            arr = np.ones(dims, dtype=np.float32)
        else:
            rng = np.random.default_rng([seed, i])
            arr = rng.standard_normal(dims, dtype=np.float32)
            arr *= STD
            if matrix:
                arr = arr.astype(np.float16)
        w.write_tensor_data(arr)
        if progress:
            progress(i + 1, len(specs))
    w.close()
    return path
