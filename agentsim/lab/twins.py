"""Cost twins: random weights in the published shapes of real models, for what a forward pass costs.

The cost of a forward pass (time, energy, memory) depends on a model's shapes and the kernels,
not on what its weights have learned. A twin is a model with exactly a real architecture's shapes
(Qwen2.5-0.5B/1.5B/7B from their published ``config.json``) and seeded random weights: it needs
no download, and says nothing about accuracy. Everywhere it appears it is labelled
:data:`TWIN_LABEL`. :func:`replay` runs it over recorded token counts (each hop's prompt and
completion tokens from a real CPU run of the demo scenarios, ``benchmarks/data/demo_token_counts.json``),
so the cost is the one those hops would have had on the real model's shapes.

torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentsim.models.catalog import TWIN_LABEL  # one home for the label (the catalog is data only)

__all__ = ["TWIN_LABEL", "SHAPES", "TwinShape", "hf_twin", "replay", "replay_llama", "Hop"]


@dataclass(frozen=True)
class TwinShape:
    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    tie: bool
    #: parameters of the real model (its model card)
    params: int

    def config(self, layers: int | None = None, vocab: int | None = None) -> dict[str, Any]:
        return {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": self.hidden,
                "num_hidden_layers": layers or self.layers, "num_attention_heads": self.heads,
                "num_key_value_heads": self.kv_heads, "intermediate_size": self.ffn, "vocab_size": vocab or self.vocab,
                "tie_word_embeddings": self.tie, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
                "rope_theta": 1000000.0, "hidden_act": "silu", "attention_dropout": 0.0}


#: Qwen2.5 base/instruct shapes, from each model's published config.json
SHAPES: dict[str, TwinShape] = {
    s.name: s
    for s in (
        TwinShape("qwen2.5-0.5b", 896, 24, 14, 2, 4864, 151936, True, 494_032_768),
        TwinShape("qwen2.5-1.5b", 1536, 28, 12, 2, 8960, 151936, True, 1_543_714_304),
        TwinShape("qwen2.5-7b", 3584, 28, 28, 4, 18944, 152064, False, 7_615_616_512),
    )
}

#: (prompt tokens, completion tokens) of one recorded hop
Hop = tuple[int, int]


def hf_twin(shape: TwinShape, *, dtype: Any, device: str, seed: int = 0, layers: int | None = None,
            vocab: int | None = None) -> Any:
    """A transformers Qwen2 model with ``shape``'s dimensions and seeded random weights
    (transformers' initialisation: normal, std 0.02), made on ``device`` in ``dtype`` directly (no
    file, no float32 copy); ``layers`` and ``vocab`` cut it (the ``--tiny`` smoke runs: every other
    dimension is the real one)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(**{k: v for k, v in shape.config(layers, vocab).items() if k not in ("architectures", "model_type")})
    old = torch.get_default_dtype()
    torch.manual_seed(seed)
    try:
        torch.set_default_dtype(dtype)
        with torch.device(device):
            model = Qwen2ForCausalLM(cfg)  # transformers' own init: normal(0, 0.02), norms 1
    finally:
        torch.set_default_dtype(old)
    return model.eval()


def _prefill(model: Any, ids: Any, mask: Any, cache: Any) -> Any:
    """The prompt's forward pass with logits for its last position only, as a serving stack
    computes it (transformers >= 4.50: ``logits_to_keep``; older: ``num_logits_to_keep``)."""
    for kw in ("logits_to_keep", "num_logits_to_keep"):
        try:
            return model(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True, **{kw: 1})
        except TypeError:
            continue
    return model(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True)


def replay(model: Any, hops: list[Hop], batch: int, *, device: str, meter: Any = None,
           sync: Callable[[], None] | None = None, vocab: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Run ``hops`` through ``model`` ``batch`` at a time: one prefill of the group's longest
    prompt (the prompts left-padded to it), then as many greedy decode steps as its longest
    completion (every sequence decodes; the finished ones are padding, as in a real batch).
    Returns seconds, joules (the meter's reading, or None), tokens, and the per-token figures."""
    import torch
    from transformers import DynamicCache

    gen = torch.Generator(device="cpu").manual_seed(seed)
    sync = sync or (lambda: None)
    seconds = 0.0
    joules: float | None = 0.0 if meter is not None else None
    energy_kind = None
    below = 0
    prompt_tokens = sum(p for p, _ in hops)
    completion_tokens = sum(c for _, c in hops)
    steps = 0
    with torch.no_grad():
        for i in range(0, len(hops), batch):
            group = hops[i: i + batch]
            p_len = max(p for p, _ in group)
            c_len = max(c for _, c in group)
            ids = torch.randint(0, vocab, (len(group), p_len), generator=gen).to(device)
            mask = torch.zeros((len(group), p_len), dtype=torch.long)
            for j, (p, _) in enumerate(group):
                mask[j, p_len - p:] = 1
            mask = mask.to(device)
            sync()
            token = meter.begin() if meter is not None else None
            t0 = time.perf_counter()
            cache = DynamicCache()
            out = _prefill(model, ids, mask, cache)
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(max(c_len - 1, 0)):
                mask = torch.cat([mask, mask.new_ones((len(group), 1))], dim=1)
                out = model(input_ids=nxt, attention_mask=mask, past_key_values=out.past_key_values, use_cache=True)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
                steps += 1
            sync()
            seconds += time.perf_counter() - t0
            if meter is not None:
                r = meter.end(token)
                energy_kind = r.kind
                below += int(r.below_resolution)
                joules = None if r.joules is None or joules is None else joules + r.joules
    n = len(hops)
    return {"hops": n, "batch": batch, "seconds": seconds, "joules": joules, "energy_kind": energy_kind,
            "intervals_below_resolution": below, "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens, "decode_steps": steps,
            "s_per_hop": seconds / n if n else None, "s_per_token": seconds / completion_tokens if completion_tokens else None,
            "j_per_token": joules / completion_tokens if joules is not None and completion_tokens else None,
            "label": TWIN_LABEL}


def replay_llama(path: str, hops: list[Hop], *, n_threads: int = 1, meter: Any = None, vocab: int | None = None,
                 seed: int = 0, n_ctx: int = 1024) -> dict[str, Any]:
    """The llama backend's side of :func:`replay`: a twin GGUF (any rung) through llama.cpp, one hop at
    a time (batch 1, the sequential agent's case): the prompt's tokens (random ids, every one
    evaluated: no prefix reuse), then greedy decode steps (argmax of llama.cpp's logits) to the
    recorded completion length. Returns what :func:`replay` returns, plus llama.cpp's own prefill and
    decode seconds. llama_cpp and numpy are imported here."""
    import ctypes

    import llama_cpp
    import numpy as np

    llm = llama_cpp.Llama(str(path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, n_batch=512,
                          n_gpu_layers=0, seed=seed, verbose=False)
    n_vocab = int(llm.n_vocab())
    top = min(vocab or n_vocab, n_vocab)
    rng = np.random.default_rng(seed)

    def greedy() -> int:
        ptr = llm._ctx.get_logits_ith(-1)
        return int(np.argmax(np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,))))

    seconds = prefill_s = decode_s = 0.0
    joules: float | None = 0.0 if meter is not None else None
    energy_kind = None
    below = steps = 0
    try:
        llm.reset()
        llm.eval([int(t) for t in rng.integers(0, top, 8)])  # warm-up: kernels, buffers
        for p, c in hops:
            ids = [int(t) for t in rng.integers(0, top, p)]
            token = meter.begin() if meter is not None else None
            llm.reset()
            t0 = time.perf_counter()
            llm.eval(ids)
            nxt = greedy()
            t1 = time.perf_counter()
            for _ in range(max(c - 1, 0)):
                llm.eval([nxt])
                nxt = greedy()
                steps += 1
            t2 = time.perf_counter()
            prefill_s += t1 - t0
            decode_s += t2 - t1
            seconds += t2 - t0
            if meter is not None:
                r = meter.end(token)
                energy_kind = r.kind
                below += int(r.below_resolution)
                joules = None if r.joules is None or joules is None else joules + r.joules
    finally:
        llm.close()
    n = len(hops)
    completion_tokens = sum(c for _, c in hops)
    return {"hops": n, "batch": 1, "seconds": seconds, "prefill_s": prefill_s, "decode_s": decode_s,
            "joules": joules, "energy_kind": energy_kind, "intervals_below_resolution": below,
            "prompt_tokens": sum(p for p, _ in hops), "completion_tokens": completion_tokens, "decode_steps": steps,
            "s_per_hop": seconds / n if n else None,
            "s_per_token": seconds / completion_tokens if completion_tokens else None,
            "j_per_token": joules / completion_tokens if joules is not None and completion_tokens else None,
            "label": TWIN_LABEL}
