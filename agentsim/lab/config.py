"""The lab model family's shapes and training recipes: data only, nothing imported.

Every size shares one tokenizer (:mod:`.tokenizer`), one task distribution (:mod:`.task`) and one
recipe; they differ in width, depth and the steps they are trained for. Widths are multiples of
256 (hidden and FFN), so every row of every matrix holds whole 256-value K-quant super-blocks:
every rung of the ladder (Q4_K_M included) quantizes every matrix, with no fallback type.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LabConfig", "LAB_MODELS", "lab_config"]


@dataclass(frozen=True)
class LabConfig:
    name: str
    hidden: int
    layers: int
    heads: int
    ffn: int
    #: optimizer steps, examples per step, peak learning rate, warm-up steps
    steps: int
    batch: int
    lr: float
    warmup: int = 100
    weight_decay: float = 0.01
    seed: int = 0
    #: positions the model is trained and exported for (a hop is at most 16 tokens)
    context: int = 32

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def params(self, vocab: int) -> int:
        """Every stored element: embeddings, untied output, norms, the blocks' matrices."""
        h, f = self.hidden, self.ffn
        per_layer = 4 * h * h + 3 * h * f + 2 * h
        return 2 * vocab * h + h + self.layers * per_layer

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


LAB_MODELS: dict[str, LabConfig] = {
    c.name: c
    for c in (
        LabConfig("lab-0.6m", hidden=256, layers=1, heads=4, ffn=256, steps=1200, batch=128, lr=3e-3),
        LabConfig("lab-1m", hidden=256, layers=2, heads=4, ffn=256, steps=1500, batch=128, lr=3e-3),
        LabConfig("lab-4m", hidden=256, layers=4, heads=4, ffn=1024, steps=600, batch=128, lr=2e-3),
        LabConfig("lab-16m", hidden=512, layers=4, heads=8, ffn=2048, steps=300, batch=128, lr=1.5e-3),
    )
}


def lab_config(name: str) -> LabConfig:
    from agentsim.errors import ModelError

    if name not in LAB_MODELS:
        raise ModelError(f"{name!r} is not a lab model", hint=f"lab models: {', '.join(LAB_MODELS)}")
    return LAB_MODELS[name]
