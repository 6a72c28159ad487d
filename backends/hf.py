"""The ``hf`` backend: transformers + torch, in f32/bf16/f16 or with emulated int8/int4/FP4 weights.

Why it exists: the same weights the ``llama`` backend runs (a catalog GGUF, dequantized by
transformers' GGUF loader) or a user's own HF folder, computed by torch. It lets a user compare
llama.cpp's Q8/Q4 against 16-bit transformers and against FP4 on one workflow.

Spec: ``hf:MODEL@PRECISION[,dtype=bf16|f16|f32,native=true|false,device=auto|cpu|cuda,...]``.
MODEL is a folder with ``config.json`` and safetensors, a ``.gguf`` file, or a catalog name;
where it lives and how a GGUF becomes (cached) torch weights is :mod:`agentsim.models.hf_source`.

* ``f32``, ``bf16``, ``f16``: the model computed in that dtype (``precision_mode`` native).
* ``int8``, ``int4``, ``mxfp4``, ``nvfp4``: every ``nn.Linear`` weight of the decoder (not the
  embeddings, not ``lm_head``) is rounded exactly as the format stores it (:mod:`agentsim.quant`)
  and dequantized to the compute dtype ``dtype``: ``precision_mode`` emulated. This answers the
  accuracy question on any machine, not the speed one (the matmuls run in ``dtype``).
* ``fp8`` (E4M3; ``format=e5m2`` for E5M2): emulated the same way, one scale per output channel.
* ``native=true`` (FP4, FP8 and int8) uses tensor cores: FP4 through torchao on a Blackwell GPU
  (compute capability >= 10.0); FP8 on an Ada/Hopper one (>= 8.9) through torchao, or without it
  through ``torch._scaled_mm`` (:mod:`agentsim.backends.hf_kernels`); int8 (W8A8) through
  ``torch._int_mm`` on a CUDA GPU; int4 weight-only (W4A16: asymmetric int4 in groups of 32 with a
  bf16 scale and zero, the ``int4-wo`` format without torchao) through ``torch._weight_int4pack_mm``
  on a CUDA GPU; refused elsewhere, naming the requirement.
* ``nf4``, ``fp4-bnb``, ``int8-bnb`` (bitsandbytes, ``double_quant=true`` for the 4-bit ones) and
  ``int8-wo``, ``int4-wo`` (torchao weight-only): real packed weights and the library's kernels,
  ``precision_mode`` native, with the kernel that runs told from the library and the device
  (:mod:`agentsim.backends.hf_precisions`; the ``quant`` extra).

Decoding is greedy (argmax; ties to the lowest token id) in a manual loop over the KV cache, so
that the time to the first token (prefill) and the decode time are measured exactly. Grammars
(``GenerationRequest.grammar``) are not supported and are ignored (``SUPPORTS_GRAMMAR`` False).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from agentsim.errors import AgentsimError, BackendError, HardwareError
from agentsim.hardware import (
    Accelerator,
    detect,
    f16_matmul_problem,
    f16_note,
    require_native_fp4,
    require_native_fp8,
)
from agentsim.models.hf_source import load_hf_model, resolve_hf_model, source_dtype
from agentsim.precision import (
    BNB_4BIT,
    BNB_PRECISIONS,
    EMULATED_SCHEMES,
    FP4,
    FP8,
    FP8_FORMATS,
    HF_DTYPES,
    HF_PRECISIONS,
    LIBRARY_PRECISIONS,
    NATIVE_OPTION_PRECISIONS,
    TORCH_DTYPES,
    TORCHAO_PRECISIONS,
)
from agentsim.versions import dist_version

from .base import (
    Backend,
    BackendInfo,
    BackendSpec,
    Completion,
    GenerationRequest,
    OptionSpec,
    first_stop,
)

__all__ = ["HFBackend"]

_GRAMMAR_NOTE = "not supported by hf: GenerationRequest.grammar is ignored (decoding is unconstrained greedy)"


# --------------------------------------------------------------------------------------------
# the backend


@dataclass
class _Decoded:
    """What the decode loop produced for its prompts, in their order."""

    outs: list[list[int]]
    finish: list[str]
    eos: set[int]
    prefill_s: float
    decode_s: float
    peak: int | None
    peak_source: str
    width: int


class HFBackend(Backend):
    """transformers/torch model at one precision (see the module docstring)."""

    NAME: ClassVar[str] = "hf"
    DESCRIPTION: ClassVar[str] = ("transformers/torch (f32, bf16, f16; emulated int8/int4/mxfp4/nvfp4/fp8; "
                                  "bitsandbytes nf4/fp4-bnb/int8-bnb; torchao int8-wo/int4-wo)")
    EXTRA: ClassVar[str | None] = "hf"
    REQUIRES: ClassVar[tuple[str, ...]] = ("torch", "transformers")
    PRECISIONS: ClassVar[tuple[str, ...]] = HF_PRECISIONS
    SUPPORTS_GRAMMAR: ClassVar[bool] = False
    FIDELITY: ClassVar[str] = "exact"
    OPTIONS: ClassVar[dict[str, OptionSpec]] = {
        "dtype": OptionSpec(str, "bf16", "compute dtype of the quantized precisions: bf16, f16 or f32"),
        "native": OptionSpec(bool, False, "tensor-core kernels: mxfp4/nvfp4 (Blackwell, compute capability >= 10.0), "
                                          "fp8 (Ada/Hopper, >= 8.9), int8 (W8A8, CUDA), "
                                          "int4 (weight-only, torch's int4 kernel, CUDA)"),
        "format": OptionSpec(str, "e4m3", "fp8 element format: e4m3 or e5m2"),
        "double_quant": OptionSpec(bool, False, "nf4/fp4-bnb: quantize the block scales too (bitsandbytes)"),
        "device": OptionSpec(str, "auto", "auto, cpu or cuda"),
        "group": OptionSpec(int, 0, "int8/int4 group size (0: 32, the block of llama.cpp's Q8_0/Q4_0); "
                                    "int4-wo: 32, 64 or 128 (0: 32); int8-wo: 0 per output channel"),
        "threads": OptionSpec(int, 0, "torch CPU threads (0: torch's default)"),
        "cache": OptionSpec(bool, True, "cache a GGUF's dequantized model as safetensors for fast reloads"),
    }

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self.precision = spec.precision or "bf16"
        o = self.options
        if o["dtype"] not in HF_DTYPES:
            raise BackendError(f"hf: dtype={o['dtype']!r} is not one of {', '.join(HF_DTYPES)}")
        if "dtype" in spec.options_dict and self.precision in HF_DTYPES and o["dtype"] != self.precision:
            raise BackendError(
                f"hf: dtype={o['dtype']} contradicts @{self.precision}",
                hint="dtype= sets the compute dtype of quantized precisions (int8, int4, mxfp4, nvfp4)",
            )
        if o["group"] and self.precision not in ("int8", "int4", *TORCHAO_PRECISIONS):
            raise BackendError(f"hf: group= applies to int8/int4 only, and to {'/'.join(TORCHAO_PRECISIONS)} "
                               f"(the block of {self.precision} is fixed)")
        if o["group"] and self.precision == "int4-wo" and o["group"] not in (32, 64, 128):
            raise BackendError(f"hf: int4-wo takes group=32, 64 or 128 (torchao's int4 kernels), not {o['group']}")
        if "format" in spec.options_dict and self.precision not in FP8:
            raise BackendError(f"hf: format= applies to fp8 only, not @{self.precision}")
        if o["format"] not in FP8_FORMATS:
            raise BackendError(f"hf: format={o['format']!r} is not one of {', '.join(FP8_FORMATS)}")
        if o["double_quant"] and self.precision not in BNB_4BIT:
            raise BackendError(f"hf: double_quant=true applies to {'/'.join(BNB_4BIT)} only, not @{self.precision}")
        if o["group"] < 0 or o["group"] % 2:
            raise BackendError(f"hf: group={o['group']} must be an even number >= 2 (or 0 for the default)")
        if o["threads"] < 0:
            raise BackendError("hf: threads must be >= 0")
        if o["native"] and self.precision not in NATIVE_OPTION_PRECISIONS:
            raise BackendError(
                f"hf: native=true applies to FP4 precisions only ({', '.join(FP4)}), and to fp8, int8 and int4, not @{self.precision}",
                hint=f"@{self.precision} already runs natively ({'torch' if self.precision in HF_DTYPES else 'its library'})"
                if self.precision in HF_DTYPES + LIBRARY_PRECISIONS else None,
            )
        if o["native"] and self.precision in FP8 and o["format"] != "e4m3":
            raise BackendError("hf: native fp8 runs E4M3 (torchao's float8 matmuls); format=e5m2 is emulated only",
                               hint=f"hf:{spec.model or 'MODEL'}@fp8,format=e5m2 (emulated)")
        self.compute = self.precision if self.precision in HF_DTYPES else o["dtype"]
        # hardware refusals happen here, before any model is loaded, so `agentsim run` stops up front
        self.accelerator: Accelerator = detect(o["device"])
        if o["native"] and o["device"] == "cpu":
            units = "FP8" if self.precision in FP8 else ("int8" if self.precision == "int8" else "FP4")
            where = "a CUDA GPU (torch's int4 weight-only kernel)" if self.precision == "int4" else f"{units} tensor cores"
            raise BackendError(f"hf: native=true runs on {where}, not on device=cpu",
                               hint=f"hf:{spec.model or 'MODEL'}@{self.precision} (emulated) runs on the CPU")
        if o["native"] and self.precision in FP8:
            self.accelerator = require_native_fp8(self.precision, backend="hf", model=spec.model or "MODEL")
        elif o["native"] and self.precision == "int8":
            if self.accelerator.kind != "cuda":
                raise HardwareError(f"hf: int8,native=true runs torch._int_mm on a CUDA GPU; this machine has "
                                    f"{self.accelerator.describe()}",
                                    hint=f"hf:{spec.model or 'MODEL'}@int8 (emulated) runs anywhere")
        elif o["native"] and self.precision == "int4":
            self._require_native_int4(spec.model or "MODEL")
        elif o["native"]:
            self.accelerator = require_native_fp4(self.precision, backend="hf", model=spec.model or "MODEL")
        #: the agentsim.quant scheme of an emulated precision (fp8,format=e5m2 -> fp8_e5m2)
        self.scheme = f"fp8_{o['format']}" if self.precision in FP8 and o["format"] != "e4m3" else self.precision
        #: the kernel a library precision (or native fp8) runs, told now: a missing library or a
        #: device without kernels stops the run before any model is loaded
        self.library_kernel: str | None = None
        if o["native"] and self.precision in ("int8", "int4"):
            from .hf_kernels import describe

            self.library_kernel = describe(self.precision, self.accelerator.kind) + f" ({self.accelerator.describe()})"
        if self.precision in LIBRARY_PRECISIONS or (o["native"] and self.precision in FP8):
            from .hf_precisions import check_library

            self.library_kernel = check_library(self.precision, self.accelerator, compute=self.compute,
                                                group=o["group"], double_quant=o["double_quant"],
                                                native_fp8=bool(o["native"]) and self.precision in FP8)
        self.f16_note: str | None = None
        if self.compute == "f16":
            problem = f16_matmul_problem(self.accelerator)
            if problem:
                raise HardwareError(f"hf: f16 is unusable here: {problem}", hint="use @bf16 or @f32 (or dtype=bf16)")
            self.f16_note = f16_note(self.accelerator)
        self.model: Any = None
        self.tokenizer: Any = None
        self._loaded: dict[str, Any] = {}

    def _require_native_int4(self, model: str) -> None:
        """int4,native=true: torch's int4 weight-only kernel on a CUDA GPU (bf16 activations, group 32)."""
        o = self.options
        if self.accelerator.kind != "cuda":
            raise HardwareError(f"hf: int4,native=true runs torch._weight_int4pack_mm on a CUDA GPU; this machine has "
                                f"{self.accelerator.describe()}", hint=f"hf:{model}@int4 (emulated) runs anywhere")
        if o["group"] not in (0, 32):
            raise BackendError(f"hf: int4,native=true packs groups of 32 (torch's int4 kernel here), not group={o['group']}")
        if self.compute != "bf16":
            raise BackendError(f"hf: int4,native=true computes in bf16 (torch's int4 kernel), not dtype={self.compute}")
        from .hf_kernels import int4_problem

        problem = int4_problem("cuda")
        if problem:
            raise HardwareError(f"hf: int4,native=true needs torch's int4 kernel: {problem}",
                                hint=f"hf:{model}@int4 (emulated), or @int4-wo with torchao")

    # ---------------------------------------------------------------- loading

    @property
    def mode(self) -> str:
        if self.precision in EMULATED_SCHEMES:
            return "native" if self.options["native"] else "emulated"
        return "native"  # f32/bf16/f16, and the library precisions (bitsandbytes, torchao)

    def resources(self, cluster_gpus: float = 0.0) -> dict[str, float]:
        """A GPU on ``device=cuda``, or on ``auto`` where the cluster has any; one CPU."""
        device = str(self.options["device"])
        gpu = device == "cuda" or (device == "auto" and cluster_gpus > 0)
        return {"num_cpus": 1.0, "num_gpus": 1.0 if gpu else 0.0}

    def load(self) -> None:
        if self.model is not None:
            return
        import torch

        src = resolve_hf_model(self.spec.model)
        if self.options["threads"]:
            torch.set_num_threads(self.options["threads"])
        t0 = time.perf_counter()
        compute = getattr(torch, TORCH_DTYPES[self.compute])
        # quantized precisions round from float32 weights; dtype precisions load straight in theirs
        load_dtype = torch.float32 if self.precision in EMULATED_SCHEMES else compute
        n_quant = 0
        from .hf_precisions import quiet

        if self.precision in BNB_PRECISIONS:
            # bitsandbytes quantizes while transformers loads (a bnb model cannot be cast or moved after)
            from .hf_precisions import bnb_config, count_bnb_linears

            qc = bnb_config(self.precision, compute, double_quant=self.options["double_quant"])
            with quiet():
                model, tok, sha, cache_state = load_hf_model(src, compute, cache=self.options["cache"],
                                                             quantization_config=qc, device_map=self.accelerator.kind)
            n_quant = count_bnb_linears(model)
        else:
            with quiet():  # transformers imports torchao/bitsandbytes when they are installed
                model, tok, sha, cache_state = load_hf_model(src, load_dtype, cache=self.options["cache"])
            if self.precision in EMULATED_SCHEMES and not self.options["native"]:
                n_quant = self._fake_quantize(model, compute)
            model = model.to(dtype=compute)
            model = model.to(self.accelerator.kind)
        if self.options["native"] and self.precision in FP8:
            from .hf_precisions import native_fp8

            n_quant = native_fp8(model)
        elif self.options["native"] and self.precision in ("int8", "int4"):
            from .hf_kernels import replace_linears

            n_quant = replace_linears(model, self.precision)
        elif self.options["native"]:
            n_quant = self._native_fp4(model)
        if self.precision in TORCHAO_PRECISIONS:
            from .hf_precisions import torchao_quantize

            n_quant = torchao_quantize(model, self.precision, self.accelerator, group=self.options["group"])
        model.eval()
        self.model, self.tokenizer = model, tok
        self._loaded = {
            "kind": src.kind, "path": str(src.path), "sha256": sha, "cache": cache_state,
            "load_s": round(time.perf_counter() - t0, 3), "quantized_linears": n_quant,
            "source_dtype": source_dtype(src),
            "catalog_name": src.name,
            **_model_size(src),
        }

    def _fake_quantize(self, model: Any, compute: Any) -> int:
        """Round every decoder ``nn.Linear`` weight as the format stores it; returns how many."""
        import torch

        from agentsim import quant

        group = self.options["group"] or None
        n = 0
        with torch.no_grad():
            for name, mod in model.named_modules():
                if isinstance(mod, torch.nn.Linear) and not name.endswith("lm_head"):
                    mod.weight.data = quant.fake_quantize(mod.weight.data, self.scheme, group, dtype=compute)
                    n += 1
        return n

    def _native_fp4(self, model: Any) -> int:
        """FP4 tensor-core matmuls through torchao (weights and activations in FP4, dynamic scales).

        Reached only after :func:`require_native_fp4` accepted the GPU (compute capability >= 10.0).
        """
        import torch

        try:
            from torchao.prototype.mx_formats import inference_workflow as wf
            from torchao.quantization import quantize_
        except ImportError:
            raise BackendError(
                f"native {self.precision} runs on torchao's FP4 kernels, and torchao is not installed",
                hint="pip install torchao (a build matching your torch), or use native=false",
            ) from None
        if self.precision == "nvfp4":
            cls = getattr(wf, "NVFP4DynamicActivationNVFP4WeightConfig", None)
            if cls is not None:
                config = cls()
            else:
                config = wf.NVFP4InferenceConfig(mm_config=wf.NVFP4MMConfig.DYNAMIC)
        else:
            cls = getattr(wf, "MXDynamicActivationMXWeightConfig", None) or wf.MXFPInferenceConfig
            config = cls(activation_dtype=torch.float4_e2m1fn_x2, weight_dtype=torch.float4_e2m1fn_x2)
        n = 0

        def want(mod: Any, fqn: str) -> bool:
            nonlocal n
            ok = isinstance(mod, torch.nn.Linear) and not fqn.endswith("lm_head") and mod.in_features % 32 == 0 and mod.out_features % 16 == 0
            n += int(ok)
            return ok

        quantize_(model, config, filter_fn=want)
        return n

    # ---------------------------------------------------------------- generation

    def _prompt_ids(self, request: GenerationRequest) -> tuple[list[int], bool]:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            messages = []
            if request.system:
                messages.append({"role": "system", "content": request.system})
            messages.append({"role": "user", "content": request.prompt})
            text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return list(tok(text, add_special_tokens=False)["input_ids"]), True
        text = f"{request.system}\n\n{request.prompt}" if request.system else request.prompt
        return list(tok(text)["input_ids"]), False

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for src in (getattr(self.model, "generation_config", None), self.model.config, self.tokenizer):
            val = getattr(src, "eos_token_id", None) if src is not None else None
            if isinstance(val, int):
                ids.add(val)
            elif isinstance(val, (list, tuple)):
                ids.update(int(v) for v in val)
        return ids

    def generate(self, request: GenerationRequest) -> Completion:
        if self.model is None:
            self.load()
        ids, templated = self._prompt_ids(request)
        if not ids:
            raise BackendError("hf: the prompt tokenizes to nothing")
        d = self._greedy([ids], [request], scope="hop")
        out_ids = d.outs[0]
        return Completion(
            text=self._text(out_ids, d.eos, request.stop),
            prompt_tokens=len(ids),
            completion_tokens=len(out_ids),
            prefill_s=d.prefill_s if out_ids else None,
            ttft_s=d.prefill_s if out_ids else None,
            decode_s=d.decode_s if out_ids else None,
            peak_mem_bytes=d.peak,
            finish_reason=d.finish[0],
            extra={"token_ids": out_ids, "chat_template": templated, "peak_mem_source": d.peak_source,
                   "grammar": _GRAMMAR_NOTE if request.grammar else None},
        )

    def generate_batch(self, requests: Any, *, return_exceptions: bool = False) -> list[Any]:
        """Several requests in one padded batch: prompts left-padded (attention mask and position
        ids skip the padding), one forward pass per step for every live sequence, each stopping
        on its own end-of-sequence token, stop strings or budget. Greedy, as :meth:`generate`.
        prefill_s/decode_s are each hop's share (prompt tokens / generated tokens) of the batch's
        times ("attributed"). A prompt that tokenizes to nothing fails its own slot only. A batch
        of one is :meth:`generate`."""
        reqs = list(requests)
        if len(reqs) <= 1:
            return super().generate_batch(reqs, return_exceptions=return_exceptions)
        if self.model is None:
            self.load()
        slots: list[Any] = [None] * len(reqs)
        todo: list[tuple[int, list[int], bool]] = []
        for i, r in enumerate(reqs):
            ids, templated = self._prompt_ids(r)
            if ids:
                todo.append((i, ids, templated))
            elif not return_exceptions:
                raise BackendError("hf: the prompt tokenizes to nothing")
            else:
                slots[i] = BackendError("hf: the prompt tokenizes to nothing")
        if len(todo) <= 1:  # what is left is a batch of one (or nothing)
            for i, _, _ in todo:
                slots[i] = super().generate_batch([reqs[i]], return_exceptions=True)[0]
            return slots
        live = [reqs[i] for i, _, _ in todo]
        d = self._greedy([ids for _, ids, _ in todo], live, scope="batch")
        p_total = sum(len(ids) for _, ids, _ in todo)
        g_total = sum(len(o) for o in d.outs) or 1
        for s, (i, ids, templated) in enumerate(todo):
            r, out_ids = reqs[i], d.outs[s]
            slots[i] = Completion(
                text=self._text(out_ids, d.eos, r.stop), prompt_tokens=len(ids), completion_tokens=len(out_ids),
                prefill_s=d.prefill_s * len(ids) / p_total, ttft_s=d.prefill_s,
                decode_s=d.decode_s * len(out_ids) / g_total, peak_mem_bytes=d.peak, finish_reason=d.finish[s],
                batch_timing="attributed", batch_prefill_s=d.prefill_s, batch_decode_s=d.decode_s,
                extra={"token_ids": out_ids, "chat_template": templated, "peak_mem_source": d.peak_source,
                       "grammar": _GRAMMAR_NOTE if r.grammar else None, "batch_sequences": len(todo),
                       "padded_to": d.width},
            )
        return slots

    def _greedy(self, prompts: list[list[int]], reqs: list[GenerationRequest], *, scope: str) -> _Decoded:
        """The one decode loop: greedy tokens for every prompt together, one forward pass per step
        for all live sequences, each ending on its own end-of-sequence token, stop strings or
        budget. Several prompts are left-padded (attention mask and position ids skip the
        padding); one goes as it is."""
        import torch

        torch.manual_seed(reqs[0].seed)
        dev = self.accelerator.kind
        cuda = dev == "cuda"
        rss = _start_peak_memory(cuda)
        eos = self._eos_ids()
        n, width = len(prompts), max(len(ids) for ids in prompts)
        padded = n > 1
        pad = self.tokenizer.pad_token_id
        pad = int(pad) if pad is not None else (min(eos) if eos else 0)
        outs: list[list[int]] = [[] for _ in range(n)]
        finish = ["length"] * n
        live = [r.max_tokens > 0 for r in reqs]

        def sync() -> None:
            if cuda:
                torch.cuda.synchronize()

        with torch.inference_mode():
            x = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompts], device=dev)
            mask = pos = None
            if padded:
                mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], device=dev)
                pos = (mask.cumsum(-1) - 1).clamp(min=0)
            sync()
            t0 = time.perf_counter()
            prefill_s: float | None = None
            past = None
            while any(live):
                extra = {"attention_mask": mask, "position_ids": pos} if padded else {}
                out = self.model(input_ids=x, past_key_values=past, use_cache=True, **extra)
                past = out.past_key_values
                logits = out.logits[:, -1]
                nxt = torch.argmax(logits, dim=-1).tolist()  # synchronises the device
                if prefill_s is None:
                    prefill_s = time.perf_counter() - t0  # time to the first token
                if self.compute == "f16" and not bool(torch.isfinite(logits).all()):
                    raise BackendError("hf: f16 overflowed (non-finite logits): this model's activations exceed "
                                       "f16's range", hint="use @bf16 or @f32")
                for s in range(n):
                    if not live[s]:
                        continue
                    outs[s].append(int(nxt[s]))
                    if nxt[s] in eos:
                        finish[s], live[s] = "eos", False
                    elif reqs[s].stop and first_stop(self._decode(outs[s], eos), reqs[s].stop) is not None:
                        finish[s], live[s] = "stop", False
                    elif len(outs[s]) >= reqs[s].max_tokens:
                        live[s] = False
                x = torch.tensor([[t if live[s] else pad] for s, t in enumerate(nxt)], device=dev)
                if padded:
                    mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=dev)], dim=-1)
                    pos = pos[:, -1:] + 1
            sync()
            total = time.perf_counter() - t0
        prefill = prefill_s or 0.0
        peak, source = _peak_memory(cuda, rss, scope)
        return _Decoded(outs, finish, eos, prefill, max(0.0, total - prefill), peak, source, width)

    def _text(self, ids: list[int], eos: set[int], stop: list[str]) -> str:
        text = self._decode(ids, eos)
        cut = first_stop(text, stop)
        return text if cut is None else text[:cut]

    def score(self, items: Any, *, n_seq: int = 1) -> list[Any]:
        """Teacher-forced, full-vocabulary logits at every completion position (agentsim.fidelity):
        one forward pass over the templated prompt's ids and the completion text's ids. hf has
        no batch layout of its own to imitate (``n_seq`` is ignored): each item is its own pass."""
        import numpy as np
        import torch

        from .base import TokenScores

        if self.model is None:
            self.load()
        out: list[Any] = []
        dev = self.accelerator.kind
        with torch.inference_mode():
            for request, text in items:
                ids, _templated = self._prompt_ids(request)
                comp = list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []
                if not ids:
                    out.append(TokenScores("unavailable", reason="the prompt tokenizes to nothing"))
                    continue
                if not comp:
                    out.append(TokenScores("exact", [], np.zeros((0, 0), dtype=np.float32)))
                    continue
                x = torch.tensor([ids + comp[:-1]], device=dev)
                logits = self.model(input_ids=x, use_cache=False).logits[0, len(ids) - 1:]
                out.append(TokenScores("exact", comp, logits.float().cpu().numpy()))
        return out

    def _decode(self, ids: list[int], eos: set[int]) -> str:
        return str(self.tokenizer.decode([i for i in ids if i not in eos], skip_special_tokens=True))

    def close(self) -> None:
        self.model = None
        self.tokenizer = None
        if self.accelerator.kind == "cuda":
            import torch

            torch.cuda.empty_cache()

    # ---------------------------------------------------------------- info

    def info(self) -> BackendInfo:
        o = self.options
        if self.precision in HF_DTYPES:
            kernel = f"torch {self.accelerator.kind} matmul in {self.precision}"
        elif self.library_kernel:
            kernel = self.library_kernel
        elif o["native"]:
            kernel = f"torchao {self.precision} FP4 tensor cores (weights and activations FP4, dynamic scales)"
        else:
            from agentsim.quant import DEFAULT_BLOCK

            what = (f"{o['format']}, one scale per output channel" if self.precision in FP8
                    else f"block {o['group'] or DEFAULT_BLOCK[self.precision]}")
            kernel = (f"agentsim.quant fake-quantize ({self.precision}, {what}) -> weights dequantized "
                      f"to {self.compute}; torch {self.accelerator.kind} matmul in {self.compute}")
        loaded = self._loaded
        extra: dict[str, Any] = {
            "compute_dtype": self.compute,
            "grammar": _GRAMMAR_NOTE,
            "accelerator": self.accelerator.describe(),
            "compute_capability": self.accelerator.capability_str,
            "peak_mem_source": "torch.cuda.max_memory_allocated" if self.accelerator.kind == "cuda" else "process peak RSS (CPU)",
            "transformers": dist_version("transformers"),
            "torch": dist_version("torch"),
        }
        if self.precision in EMULATED_SCHEMES and not o["native"]:
            extra["quantized"] = "decoder nn.Linear weights (embeddings and lm_head kept in the compute dtype)"
        elif self.precision in LIBRARY_PRECISIONS:
            lib = "bitsandbytes" if self.precision in BNB_PRECISIONS else "torchao"
            extra["quantized"] = f"decoder nn.Linear weights by {lib} (embeddings and lm_head kept in the compute dtype)"
            extra[lib] = dist_version(lib)
        if self.precision in FP8:
            extra["fp8_format"] = o["format"]
        if self.precision in BNB_4BIT:
            extra["double_quant"] = bool(o["double_quant"])
        if self.f16_note:
            extra["f16_note"] = self.f16_note
        for k in ("kind", "cache", "load_s", "quantized_linears", "catalog_name"):
            if loaded.get(k) is not None:
                extra[k if k != "kind" else "source_kind"] = loaded[k]
        return BackendInfo(
            name="hf",
            model=self.spec.model or loaded.get("catalog_name"),
            precision=self.precision,
            precision_mode=self.mode,
            kernel=kernel,
            model_path=loaded.get("path"),
            model_sha256=loaded.get("sha256"),
            source_precision=loaded.get("source_dtype"),
            device=self.accelerator.kind,
            model_params=loaded.get("model_params"),
            model_bytes=loaded.get("model_bytes"),
            extra=extra,
        )


def _start_peak_memory(cuda: bool) -> Any:
    """Start measuring a call's peak memory: torch's CUDA peak is reset, or an RSS probe begins
    (returned, for :func:`_peak_memory`)."""
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
        return None
    from agentsim.measure import PeakRSS

    rss = PeakRSS()
    rss.begin()
    return rss


def _peak_memory(cuda: bool, rss: Any, what: str) -> tuple[int, str]:
    """The peak memory of one call (``what``: "hop" or "batch") and where the figure comes from:
    torch's peak CUDA allocation, or the process's peak RSS (closing the RSS probe)."""
    if cuda:
        import torch

        return int(torch.cuda.max_memory_allocated()), "torch.cuda.max_memory_allocated" + (
            " (the batch)" if what == "batch" else "")
    assert rss is not None
    peak = rss.end()
    source = f"process peak RSS during the {what}" if rss.per_hop else "process peak RSS since start"
    rss.close()
    return peak, source


def _model_size(src: Any) -> dict[str, int | None]:
    """The source's parameter count (a GGUF's header: counted as stored, the same way as the llama
    backend's) and its bytes on disk, for the scale axis; None where they cannot be read."""
    from pathlib import Path

    path = Path(src.path)
    try:
        if path.is_file():
            from agentsim.models.gguf_header import check_gguf

            return {"model_params": check_gguf(path).n_params, "model_bytes": path.stat().st_size}
        files = [f for f in path.glob("*.safetensors")]
        return {"model_params": None, "model_bytes": sum(f.stat().st_size for f in files) or None}
    except (OSError, AgentsimError):
        return {"model_params": None, "model_bytes": None}
