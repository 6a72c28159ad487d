"""Casting-overhead profiler: dequantization time vs matmul time, by batch size.

Why: the "quantization trap" (arXiv:2602.13595) blames the cost of turning 4-bit weights back
into the compute dtype ("casting") for 4-bit being slower and costlier than 16-bit in sequential
agent steps, where the batch is 1 and nothing amortises it. This tool measures that mechanism
on the user's own device for the model's own linear-layer shapes.

Method: for every distinct linear layer of one decoder block (shapes read from the model's
config.json or its GGUF tensor table) a random weight is quantized once into its packed storage
(:mod:`agentsim.quant`). For each batch size ``b``, the tool times, separately and with the
device synchronised around each, (1) ``dequantize``: packed storage -> dense weight in the
compute dtype, and (2) the matmul ``x[b, K] @ W^T`` in that dtype; each is the median of
``repeats`` runs after a warm-up. A block's time is the sum over its layers (weighted by how
often each shape occurs), and

    casting overhead ratio = dequantize time / (dequantize time + matmul time)

The batch from which dequantization is *amortised* is the smallest measured batch from which
the ratio stays below ``threshold`` (default 0.5: the matmul takes more time than the casting)
for every larger measured batch.

Real kernels: for ``int8-wo`` and ``int4-wo`` the tool also times torchao's quantized linear
(the packed weights and the kernel the hf backend runs at that precision; ``kernel_s``) beside
its emulated form (agentsim's ``int8`` / ``int4``: dequantize, then the dense matmul), so the
casting cost of the non-fused path and of a real kernel are read side by side.

Limits: this is the torch path (dequantize the whole weight, then a dense matmul), as a
non-fused kernel pays it; llama.cpp and fused GPU kernels dequantize inside the matmul, tile by
tile, so they do not pay this cost in this form. On a CPU the figure is a CPU figure.
Attention, norms and the sampling step are not included: only the linear layers.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import AgentsimError, ModelError
from .precision import EMULATED_SCHEMES, TORCH_DTYPES, TORCHAO_PRECISIONS

__all__ = [
    "LinearShape",
    "BatchRow",
    "CastingReport",
    "shapes_from_config",
    "shapes_from_gguf",
    "model_shapes",
    "profile_casting",
    "CastingConfig",
    "ShapesOrigin",
    "parse_batches",
    "amortised_batch",
    "CASTING_PRECISIONS",
    "EMULATED_FORM",
]

#: a real-kernel precision and the agentsim.quant scheme that is its emulated form
EMULATED_FORM: dict[str, str] = {"int8-wo": "int8", "int4-wo": "int4"}
#: what the profiler takes: the emulated schemes, and the torchao precisions (timed as real kernels too)
CASTING_PRECISIONS: tuple[str, ...] = (*EMULATED_SCHEMES, *TORCHAO_PRECISIONS)


# GGUF tensor names of a llama-style block -> (HF-style layer name)
_GGUF_LINEARS = {
    "attn_q": "q_proj", "attn_k": "k_proj", "attn_v": "v_proj", "attn_output": "o_proj",
    "attn_qkv": "qkv_proj", "ffn_gate": "gate_proj", "ffn_up": "up_proj", "ffn_down": "down_proj",
}


@dataclass(frozen=True)
class LinearShape:
    """One linear layer of a decoder block: weight ``[out_features, in_features]``."""

    name: str
    out_features: int
    in_features: int
    count: int = 1  # occurrences per block (e.g. experts)


@dataclass
class BatchRow:
    """One batch size: per-block seconds of dequantization and of matmul, and their ratio."""

    batch: int
    dequant_s: float
    matmul_s: float
    total_s: float
    ratio: float  # dequant_s / total_s
    slowdown: float  # total_s / matmul_s: the quantized layer vs the same matmul on dense weights
    kernel_s: float | None = None  # the real quantized kernel (int8-wo, int4-wo), per block
    kernel_vs_dense: float | None = None  # kernel_s / matmul_s
    kernel_vs_emulated: float | None = None  # kernel_s / total_s


@dataclass
class CastingReport:
    model: str
    shapes_from: str
    precision: str
    block: int
    dtype: str
    device: str
    threads: int | None
    clock: str
    repeats: int
    threshold: float
    layers: int  # decoder blocks in the model
    shapes: list[LinearShape]
    rows: list[BatchRow]
    per_shape: list[dict[str, Any]] = field(default_factory=list)
    amortised_batch: int | None = None
    notes: list[str] = field(default_factory=list)
    #: the real kernel timed beside the emulated form (None: emulated only)
    kernel: str | None = None
    #: the agentsim.quant scheme whose dequantize + matmul the rows' dequant/matmul columns time
    emulated_as: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# shapes


def shapes_from_config(cfg: dict[str, Any]) -> tuple[list[LinearShape], int]:
    """(shapes of one decoder block, number of blocks) from a transformers ``config.json``."""
    try:
        hidden = int(cfg["hidden_size"])
        inter = int(cfg["intermediate_size"])
        heads = int(cfg["num_attention_heads"])
        layers = int(cfg["num_hidden_layers"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"config.json lacks {exc}: cannot derive the linear-layer shapes") from None
    kv = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    shapes = [
        LinearShape("q_proj", heads * head_dim, hidden),
        LinearShape("k_proj", kv * head_dim, hidden),
        LinearShape("v_proj", kv * head_dim, hidden),
        LinearShape("o_proj", hidden, heads * head_dim),
        LinearShape("gate_proj", inter, hidden),
        LinearShape("up_proj", inter, hidden),
        LinearShape("down_proj", hidden, inter),
    ]
    return shapes, layers


def shapes_from_gguf(path: str | Path) -> tuple[list[LinearShape], int]:
    """(shapes of block 0, number of blocks) from a GGUF's tensor table (exact, any architecture)."""
    from .models import check_gguf

    summary = check_gguf(path)
    shapes = []
    for t in summary.tensors:
        if not t.name.startswith("blk.0.") or not t.name.endswith(".weight") or len(t.shape) != 2:
            continue
        stem = t.name[len("blk.0."):-len(".weight")]
        if stem not in _GGUF_LINEARS and not stem.startswith(("attn_", "ffn_")):
            continue
        # ggml order: shape[0] is the row length (in_features)
        shapes.append(LinearShape(_GGUF_LINEARS.get(stem, stem), int(t.shape[1]), int(t.shape[0])))
    if not shapes:
        raise ModelError(f"{path}: no 2-D block weights (blk.0.*.weight) found: cannot derive the shapes")
    arch = summary.architecture
    n = summary.metadata.get(f"{arch}.block_count") if arch else None
    layers = int(n) if n is not None else 1 + max(int(t.name.split(".")[1]) for t in summary.tensors if t.name.startswith("blk."))
    return shapes, layers


def model_shapes(model: str | None) -> tuple[list[LinearShape], int, str]:
    """Shapes for ``--model``: a model folder, a ``.gguf``, or a catalog name (None: the default)."""
    if model:
        p = Path(model).expanduser()
        if p.is_dir():
            cfg_path = p / "config.json"
            if not cfg_path.is_file():
                raise ModelError(f"{p} has no config.json")
            try:
                cfg = json.loads(cfg_path.read_text())
            except ValueError as exc:
                raise ModelError(f"{cfg_path}: not valid JSON ({exc})") from None
            shapes, layers = shapes_from_config(cfg.get("text_config", cfg))
            return shapes, layers, str(cfg_path)
        if p.is_file() or p.suffix.lower() == ".gguf" or "/" in model:
            if not p.is_file():
                raise ModelError(f"model file {p} does not exist")
            shapes, layers = shapes_from_gguf(p)
            return shapes, layers, str(p)
    from . import models

    last: AgentsimError | None = None
    for rung in ("f16", "source"):  # every rung has the same shapes; any one that exists will do
        try:
            path = models.resolve(model, rung).path
        except AgentsimError as exc:
            last = last or exc
            continue
        shapes, layers = shapes_from_gguf(path)
        return shapes, layers, str(path)
    assert last is not None
    raise last


# --------------------------------------------------------------------------------------------
# timing


def parse_batches(text: str) -> list[int]:
    """``"1,2,4,8"`` -> [1, 2, 4, 8] (sorted, unique, each >= 1)."""
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise AgentsimError(f"--batch {text!r}: give batch sizes as integers, e.g. 1,2,4,8,16,32,64") from None
    if not values or values[0] < 1:
        raise AgentsimError(f"--batch {text!r}: batch sizes must be >= 1")
    return values


def _timer(device: str, clock: str = "wall") -> Callable[[Callable[[], Any], int, int], float]:
    """Median-of-repeats timer. ``clock="cpu"`` counts this thread's CPU time (``time.thread_time``):
    with torch on one CPU thread it is the work itself, immune to other processes on a busy machine."""
    import torch

    now = time.thread_time if clock == "cpu" else time.perf_counter

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def median_time(fn: Callable[[], Any], repeats: int, warmup: int) -> float:
        for _ in range(warmup):
            fn()
        sync()
        times = []
        for _ in range(repeats):
            sync()
            t0 = now()
            fn()
            sync()
            times.append(now() - t0)
        return statistics.median(times)

    return median_time


@dataclass(frozen=True)
class CastingConfig:
    """How the profiler times: the compute dtype and device, the median of ``repeats`` runs after
    ``warmup`` ones, the amortisation ``threshold``, the quantization ``block`` (None: the
    scheme's), torch's ``threads`` (None: as they are), the ``clock`` (``wall``, or ``cpu``: this
    thread's CPU time, CPU only, one thread) and the random weights' ``seed``."""

    dtype: str = "bf16"
    device: str = "auto"
    repeats: int = 5
    warmup: int = 1
    threshold: float = 0.5
    block: int | None = None
    threads: int | None = None
    clock: str = "wall"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dtype not in TORCH_DTYPES:
            raise AgentsimError(f"casting: dtype {self.dtype!r} is not one of {', '.join(TORCH_DTYPES)}")
        if self.repeats < 1:
            raise AgentsimError("casting: --repeats must be >= 1")
        if not 0 < self.threshold < 1:
            raise AgentsimError("casting: --threshold must be within (0, 1)")
        if self.clock not in ("wall", "cpu"):
            raise AgentsimError(f"casting: clock {self.clock!r} is not wall or cpu")
        if self.clock == "cpu" and self.threads not in (None, 1):
            raise AgentsimError("casting: --clock cpu needs --threads 1 (it counts the calling thread's CPU time)")


@dataclass(frozen=True)
class ShapesOrigin:
    """Where the profiled shapes came from, as the report states it: the model asked for, the
    file they were read from, and the model's number of decoder blocks."""

    model: str = ""
    shapes_from: str = ""
    layers: int = 1


def profile_casting(
    shapes: Sequence[LinearShape],
    precision: str,
    batches: Sequence[int],
    config: CastingConfig = CastingConfig(),
    origin: ShapesOrigin = ShapesOrigin(),
) -> CastingReport:
    """Time dequantize vs matmul for ``shapes`` at every batch size (see the module docstring)."""
    import torch

    from . import quant
    from .hardware import detect

    if precision not in CASTING_PRECISIONS:
        raise AgentsimError(
            f"casting: {precision!r} has nothing to dequantize",
            hint=f"precisions: {', '.join(CASTING_PRECISIONS)} (f32/bf16/f16 weights are used as they are)",
        )
    scheme = EMULATED_FORM.get(precision, precision)
    if not shapes:
        raise AgentsimError("casting: no layer shapes to profile")
    batches = sorted(set(batches))
    if not batches or batches[0] < 1:
        raise AgentsimError("casting: batch sizes must be >= 1")
    try:
        quant.block_size(scheme, config.block)
    except ValueError as exc:
        raise AgentsimError(f"casting: {exc}") from None
    acc = detect(config.device)
    kernel = None
    if precision in EMULATED_FORM:
        from .backends.hf_precisions import check_library

        kernel = check_library(precision, acc, compute=config.dtype, group=0)
    if config.clock == "cpu":
        if acc.kind != "cpu":
            raise AgentsimError("casting: --clock cpu is for the CPU only (a GPU's work is not this thread's CPU time)")
        config = replace(config, threads=1)
    before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        report = _profile(shapes, scheme, batches, acc, config, origin, real=precision if kernel else None)
    finally:
        torch.set_num_threads(before)
    if kernel:
        report.precision, report.kernel, report.emulated_as = precision, kernel, scheme
        report.notes.append(f"kernel: {kernel}; dequant/matmul columns: the emulated form (agentsim {scheme}, "
                            f"block {report.block})")
    return report


def _profile(shapes: Sequence[LinearShape], precision: str, batches: list[int], acc: Any, config: CastingConfig,
             origin: ShapesOrigin, real: str | None = None) -> CastingReport:
    import torch

    dev = acc.kind
    bench = _Bench(acc, config, getattr(torch, TORCH_DTYPES[config.dtype]), _timer(dev, config.clock),
                   torch.Generator().manual_seed(config.seed))
    per_shape = [_time_shape(s, precision, batches, bench, real) for s in shapes]
    rows = [_batch_row(b, per_shape, real) for b in batches]
    notes = [
        "torch path: the whole weight is dequantized, then a dense matmul; fused kernels (llama.cpp, "
        "Marlin-style GPU kernels) dequantize inside the matmul and do not pay this cost in this form",
        "linear layers only (no attention, norms or sampling); random weights of the model's shapes",
    ]
    if dev == "cpu":
        notes.append(f"measured on the CPU ({acc.name}): a CPU figure, not a GPU one")
    from . import quant

    return CastingReport(
        model=origin.model, shapes_from=origin.shapes_from, precision=precision,
        block=quant.block_size(precision, config.block), dtype=config.dtype, device=acc.describe(),
        threads=torch.get_num_threads() if dev == "cpu" else None,
        clock="thread CPU time" if config.clock == "cpu" else "wall clock", repeats=config.repeats,
        threshold=config.threshold, layers=origin.layers, shapes=list(shapes), rows=rows,
        per_shape=per_shape, amortised_batch=amortised_batch(rows, config.threshold), notes=notes,
    )


@dataclass
class _Bench:
    """What every shape of one profile is timed with."""

    acc: Any  # the device (agentsim.hardware)
    config: CastingConfig
    tdtype: Any  # the torch compute dtype
    timer: Callable[[Callable[[], Any], int, int], float]
    gen: Any  # the torch.Generator of the random weights and inputs

    def time(self, fn: Callable[[], Any]) -> float:
        return self.timer(fn, self.config.repeats, self.config.warmup)

    def inputs(self, batch: int, features: int) -> Any:
        import torch

        return torch.randn(batch, features, generator=self.gen).to(self.acc.kind, self.tdtype)


def _time_shape(s: LinearShape, precision: str, batches: list[int], bench: _Bench,
                real: str | None) -> dict[str, Any]:
    """One layer shape: a random weight quantized once, then dequantize and matmul (and the real
    kernel, for ``real``) timed at every batch size."""
    import torch

    from . import quant

    tdtype = bench.tdtype
    w = torch.randn(s.out_features, s.in_features, generator=bench.gen) * s.in_features**-0.5
    q = quant.quantize(w.to(bench.acc.kind), precision, bench.config.block)
    dense = quant.dequantize(q, tdtype)
    row: dict[str, Any] = {"name": s.name, "out_features": s.out_features, "in_features": s.in_features,
                           "count": s.count, "storage_bytes": q.nbytes(), "dequant_s": {}, "matmul_s": {}}
    for b in batches:
        x = bench.inputs(b, s.in_features)
        # dequantization is the same work whatever the batch; it is timed per batch all the
        # same, interleaved with the matmul, so both see the same machine state
        row["dequant_s"][b] = bench.time(lambda q=q: quant.dequantize(q, tdtype))
        row["matmul_s"][b] = bench.time(lambda x=x, d=dense: torch.nn.functional.linear(x, d))
    if real:
        lin = _real_linear(w, real, bench.acc, tdtype)
        row["kernel_s"] = {}
        with torch.inference_mode():
            for b in batches:
                x = bench.inputs(b, s.in_features)
                row["kernel_s"][b] = bench.time(lambda x=x, lin=lin: lin(x))
    return row


def _batch_row(b: int, per_shape: list[dict[str, Any]], real: str | None) -> BatchRow:
    """One batch size's per-block figures: each shape's times weighted by its count."""
    d = sum(r["dequant_s"][b] * r["count"] for r in per_shape)
    m = sum(r["matmul_s"][b] * r["count"] for r in per_shape)
    total = d + m
    row = BatchRow(batch=b, dequant_s=d, matmul_s=m, total_s=total,
                   ratio=d / total if total > 0 else 0.0, slowdown=total / m if m > 0 else float("inf"))
    if real:
        k = sum(r["kernel_s"][b] * r["count"] for r in per_shape)
        row.kernel_s = k
        row.kernel_vs_dense = k / m if m > 0 else float("inf")
        row.kernel_vs_emulated = k / total if total > 0 else float("inf")
    return row


def _real_linear(w: Any, precision: str, acc: Any, tdtype: Any) -> Any:
    """An ``nn.Linear`` holding ``w``, quantized by torchao as the hf backend does at ``precision``."""
    import torch

    from .backends.hf_precisions import torchao_quantize

    lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    wrapper = torch.nn.Sequential(lin).to(acc.kind, tdtype)
    if torchao_quantize(wrapper, precision, acc) != 1:
        raise AgentsimError(f"casting: torchao left the {w.shape[0]}x{w.shape[1]} layer unquantized at {precision}",
                            hint="int4-wo needs in_features divisible by 32")
    return wrapper


def amortised_batch(rows: Sequence[BatchRow], threshold: float) -> int | None:
    """The smallest batch from which the ratio stays below ``threshold`` (None: never, in range)."""
    found: int | None = None
    for r in sorted(rows, key=lambda r: r.batch):
        if r.ratio < threshold:
            if found is None:
                found = r.batch
        else:
            found = None
    return found
