"""A tiny llama-architecture GGUF the tests write themselves (a few hundred KB, loads in ms).

Why: real models are hundreds of MB and need a download; the fast test tier must exercise the
real loaders (llama-cpp-python *and* transformers' GGUF reader) on a real file instead. The model
is random (seeded) but complete: a byte-level BPE tokenizer with learned merges, a ChatML chat
template, and every tensor llama.cpp's ``llama`` architecture needs. Both loaders accept it:

    path = write_tiny_gguf(tmp_path / "tiny.gguf", seed=0, dtype="f32")
    llama_cpp.Llama(model_path=str(path))                                   # llama.cpp
    AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="tiny.gguf")   # transformers
    AutoTokenizer.from_pretrained(tmp_path, gguf_file="tiny.gguf")

Its outputs are deterministic (same seed → same token ids) but meaningless: assert on token ids,
never on text.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

__all__ = ["write_tiny_gguf", "TINY_CONFIG", "TINY_SPECIAL_TOKENS", "tiny_vocab"]

#: shapes of the tiny model (row lengths are multiples of 32 so Q8_0/Q4_0 blocks fit)
TINY_CONFIG = {
    "hidden": 64,
    "layers": 2,
    "heads": 4,
    "kv_heads": 2,
    "ffn": 128,
    "context": 512,
    "merges": 48,
}

TINY_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# The text the merges are learned from: short, English, with the words prompts use.
_CORPUS = (
    "the answer is the number of the item. what is the value of the sum? "
    "answer with the number only. the city is in the country. "
    "you are a helpful assistant. the result of the question is the answer. "
    "there are three apples and the total is the sum of them. "
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable-character map (the byte-level BPE alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


def _learn_merges(n_merges: int) -> list[tuple[str, str]]:
    """Plain BPE training on the corpus's words (space attached to the next word, like GPT-2)."""
    enc = _bytes_to_unicode()
    words: Counter[tuple[str, ...]] = Counter()
    for i, w in enumerate(_CORPUS.split(" ")):
        if not w:
            continue
        text = (" " if i else "") + w
        words[tuple(enc[b] for b in text.encode())] += 1
    merges: list[tuple[str, str]] = []
    for _ in range(n_merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, count in words.items():
            for a, b in zip(word, word[1:], strict=False):
                pairs[(a, b)] += count
        if not pairs:
            break
        # most frequent pair; ties broken lexically so the result never depends on dict order
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for word, count in words.items():
            out: list[str] = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += count
        words = merged
    return merges


def tiny_vocab() -> tuple[list[str], list[int], list[str]]:
    """(tokens, token types, merges): 256 byte tokens, the merged tokens, then the specials."""
    enc = _bytes_to_unicode()
    tokens = [enc[b] for b in range(256)]
    merges = _learn_merges(int(TINY_CONFIG["merges"]))
    for a, b in merges:
        if a + b not in tokens:
            tokens.append(a + b)
    types = [1] * len(tokens)  # NORMAL
    for special in TINY_SPECIAL_TOKENS:
        tokens.append(special)
        types.append(3)  # CONTROL
    return tokens, types, [f"{a} {b}" for a, b in merges]


def write_tiny_gguf(path: str | Path, *, seed: int = 0, dtype: str = "f32") -> Path:
    """Write the tiny model to ``path`` and return it.

    ``dtype`` is the storage of the 2-D weights (``"f32"`` or ``"f16"``); norms stay F32 as in
    every llama.cpp conversion. The weights come from ``numpy.random.default_rng(seed)``, so two
    calls with the same seed write byte-identical files.
    """
    import gguf

    if dtype not in ("f32", "f16"):
        raise ValueError(f"dtype must be 'f32' or 'f16', not {dtype!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = TINY_CONFIG
    hidden, layers, heads, kv_heads, ffn = (int(cfg[k]) for k in ("hidden", "layers", "heads", "kv_heads", "ffn"))
    head_dim = hidden // heads
    tokens, types, merges = tiny_vocab()
    vocab = len(tokens)
    eos = tokens.index("<|im_end|>")
    bos = tokens.index("<|endoftext|>")

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("agentsim-tiny-llama")
    w.add_context_length(int(cfg["context"]))
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_pad_token_id(bos)
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML_TEMPLATE)

    rng = np.random.default_rng(seed)
    wtype = np.float32 if dtype == "f32" else np.float16

    def mat(name: str, rows: int, cols: int, scale: float) -> None:
        # numpy (rows, cols) is ggml ne = (cols, rows): `cols` is the input dimension
        w.add_tensor(name, (rng.standard_normal((rows, cols)) * scale).astype(np.float32).astype(wtype))

    def norm(name: str) -> None:
        w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(hidden)).astype(np.float32))

    # Large-ish scales so that logits are well separated: greedy decoding then agrees between
    # f32 and f16 storage, and between llama.cpp and transformers, for many tokens.
    mat("token_embd.weight", vocab, hidden, 1.0)
    for i in range(layers):
        norm(f"blk.{i}.attn_norm.weight")
        mat(f"blk.{i}.attn_q.weight", heads * head_dim, hidden, hidden**-0.5)
        mat(f"blk.{i}.attn_k.weight", kv_heads * head_dim, hidden, hidden**-0.5)
        mat(f"blk.{i}.attn_v.weight", kv_heads * head_dim, hidden, hidden**-0.5)
        mat(f"blk.{i}.attn_output.weight", hidden, heads * head_dim, hidden**-0.5)
        norm(f"blk.{i}.ffn_norm.weight")
        mat(f"blk.{i}.ffn_gate.weight", ffn, hidden, hidden**-0.5)
        mat(f"blk.{i}.ffn_up.weight", ffn, hidden, hidden**-0.5)
        mat(f"blk.{i}.ffn_down.weight", hidden, ffn, ffn**-0.5)
    norm("output_norm.weight")
    mat("output.weight", vocab, hidden, 2.0 * hidden**-0.5)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
