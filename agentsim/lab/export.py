"""A lab model to and from GGUF at F32, with the ``gguf`` package (llama.cpp's own writer).

The file is an ordinary ``llama``-architecture GGUF: llama.cpp, llama-cpp-python and
transformers' GGUF reader load it like any other. Everything written is a function of the
weights and the config (no time stamps), so the same weights give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import LabConfig, lab_config
from .model import EPS, ROPE_BASE, build, gguf_tensors
from .tokenizer import BOS, CHAT_TEMPLATE, EOS, MERGES, PAD, VOCAB_SIZE, token_types, tokens

__all__ = ["write_gguf", "load_gguf"]


def write_gguf(model: Any, cfg: LabConfig, path: str | Path, *, description: str = "") -> Path:
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(f"agentsim-{cfg.name}")
    if description:
        w.add_description(description)
    w.add_context_length(cfg.context)
    w.add_embedding_length(cfg.hidden)
    w.add_block_count(cfg.layers)
    w.add_feed_forward_length(cfg.ffn)
    w.add_head_count(cfg.heads)
    w.add_head_count_kv(cfg.heads)
    w.add_rope_dimension_count(cfg.head_dim)
    w.add_rope_freq_base(ROPE_BASE)
    w.add_layer_norm_rms_eps(EPS)
    w.add_vocab_size(VOCAB_SIZE)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens())
    w.add_token_types(token_types())
    w.add_token_merges(list(MERGES))
    w.add_bos_token_id(BOS)
    w.add_eos_token_id(EOS)
    w.add_pad_token_id(PAD)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)
    for name, arr in gguf_tensors(model):
        w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def load_gguf(path: str | Path, name: str) -> Any:
    """The torch model whose weights are the F32 GGUF's (the inverse of :func:`write_gguf`)."""
    import gguf
    import numpy as np
    import torch

    cfg = lab_config(name)
    model = build(cfg)
    reader = gguf.GGUFReader(str(path))
    arrays = {t.name: np.asarray(t.data) for t in reader.tensors}
    with torch.no_grad():
        for tname, _arr in gguf_tensors(model):
            src = arrays[tname]
            param = _param(model, tname)
            param.copy_(torch.from_numpy(np.array(src, dtype=np.float32)).reshape(param.shape))
    return model.eval()


def _param(model: Any, tname: str) -> Any:
    if tname == "token_embd.weight":
        return model.embed.weight
    if tname == "output_norm.weight":
        return model.norm.weight
    if tname == "output.weight":
        return model.output.weight
    _, i, part, _ = tname.split(".")
    blk = model.blocks[int(i)]
    attr = {"attn_norm": "attn_norm", "attn_q": "q", "attn_k": "k", "attn_v": "v", "attn_output": "o",
            "ffn_norm": "ffn_norm", "ffn_gate": "gate", "ffn_up": "up", "ffn_down": "down"}[part]
    mod = getattr(blk, attr)
    return mod.weight
