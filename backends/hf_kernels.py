"""Native low-precision matmuls with torch alone: FP8 through ``torch._scaled_mm``, int8 through
``torch._int_mm``. No quantization library is needed, so they run on a bare machine that has
only torch (the device check's GPUs: torchao and bitsandbytes cannot be installed there).

* :class:`Fp8Linear` (W8A8, E4M3): the weight rounded once to E4M3 with one float32 scale per
  output channel; activations rounded per token at every call (dynamic scale ``absmax / 448``);
  ``torch._scaled_mm`` multiplies the FP8 operands with row-wise scales and returns the compute
  dtype. On CUDA this is the FP8 tensor-core path (compute capability >= 8.9; row-wise scales
  need 9.0 for cuBLASLt, and torch says so when they are refused).
* :class:`Int8Linear` (W8A8, int8): the same with symmetric int8 (``absmax / 127``) and
  ``torch._int_mm`` (int8 x int8 -> int32; on CUDA the int8 tensor cores), rescaled in float32.
  ``torch._int_mm`` wants more than 16 rows and dimensions in multiples of 8: smaller inputs are
  padded with zero rows, which change nothing in the rows kept.

* :class:`Int4Linear` (W4A16, int4 weight-only): asymmetric int4 in groups of 32 along the input
  dimension with a bf16 scale and zero per group (``w = (q - 8) * scale + zero``, the "tinygemm"
  layout torchao's ``int4-wo`` uses), packed once by torch and multiplied by torch's own int4 kernel:
  ``torch._weight_int4pack_mm`` on CUDA (bf16 activations, the weights dequantized in registers),
  ``torch._weight_int4pack_mm_for_cpu`` on the CPU. Activations stay bf16. A torch build without the
  op is refused with its name (:func:`int4_problem`), never emulated in its place.

All three replace ``nn.Linear`` modules in place (:func:`replace_linears`); ``lm_head`` stays in the
compute dtype, as in every other agentsim precision. torch is imported inside the functions.
"""

from __future__ import annotations

from typing import Any

__all__ = ["replace_linears", "make_linear", "KINDS", "describe", "int4_problem", "INT4_GROUP"]

#: the int4 kernel's group size along the input dimension (llama.cpp's Q4_0 block)
INT4_GROUP = 32
#: tinygemm's inner K tiles: the input dimension must be a multiple of 16 x this
_INNER_K_TILES = 8

#: kernel kinds and what they run
KINDS = {
    "fp8": "E4M3 weights (one scale per output channel) x dynamic per-token E4M3 activations, torch._scaled_mm",
    "int8": "int8 weights (one scale per output channel) x dynamic per-token int8 activations, torch._int_mm "
            "(int32 accumulation)",
    "int4": "int4 weight-only (asymmetric, groups of 32, bf16 scale and zero) x bf16 activations, "
            "torch._weight_int4pack_mm",
}


def describe(kind: str, device: str) -> str:
    where = {"fp8": "FP8 tensor cores", "int8": "int8 tensor cores", "int4": "tensor cores, int4 weights dequantized in registers"}[kind]
    return f"agentsim hf_kernels {kind}: {KINDS[kind]} ({where if device == 'cuda' else 'CPU kernels'})"


def int4_problem(device: str) -> str | None:
    """Why torch's int4 kernel cannot run on ``device`` here (None when it can)."""
    import torch

    names = ("_convert_weight_to_int4pack", "_weight_int4pack_mm") if device == "cuda" else (
        "_convert_weight_to_int4pack_for_cpu", "_weight_int4pack_mm_for_cpu")
    missing = [n for n in names if not hasattr(torch.ops.aten, n)]
    if missing:
        return f"this torch ({torch.__version__}) has no {' / '.join('torch.ops.aten.' + n for n in missing)}"
    return None


def _int4_linear(linear: Any) -> Any:
    import torch
    from torch import nn

    class Int4Linear(nn.Module):
        def __init__(self, lin: nn.Linear) -> None:
            super().__init__()
            w = lin.weight.detach().float()
            n, k = w.shape
            g = INT4_GROUP
            self.in_features, self.out_features = k, n
            self.out_dtype = lin.weight.dtype
            wg = w.reshape(n, k // g, g)
            lo, hi = wg.amin(-1, keepdim=True), wg.amax(-1, keepdim=True)
            scale = ((hi - lo) / 15).clamp(min=1e-6)
            zero = lo + 8 * scale  # tinygemm: w = (q - 8) * scale + zero
            q = torch.round((wg - lo) / scale).clamp(0, 15).to(torch.int32).reshape(n, k)
            self.cuda = w.is_cuda
            if self.cuda:
                packed = torch.ops.aten._convert_weight_to_int4pack(
                    (q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8), _INNER_K_TILES)
            else:
                packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, _INNER_K_TILES)
            sz = torch.stack([scale.reshape(n, k // g).t(), zero.reshape(n, k // g).t()], dim=-1)
            self.register_buffer("qweight", packed, persistent=False)
            self.register_buffer("scales_zeros", sz.to(torch.bfloat16).contiguous(), persistent=False)  # (k/g, n, 2)
            self.bias = lin.bias

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shape = x.shape
            x2 = x.reshape(-1, shape[-1]).to(torch.bfloat16)
            mm = torch.ops.aten._weight_int4pack_mm if self.cuda else torch.ops.aten._weight_int4pack_mm_for_cpu
            y = mm(x2, self.qweight, INT4_GROUP, self.scales_zeros).to(self.out_dtype)
            if self.bias is not None:
                y = y + self.bias
            return y.reshape(*shape[:-1], self.out_features)

    return Int4Linear(linear)


def make_linear(linear: Any, kind: str) -> Any:
    import torch
    from torch import nn

    if kind == "int4":
        return _int4_linear(linear)

    class _W8A8(nn.Module):
        def __init__(self, lin: nn.Linear) -> None:
            super().__init__()
            w = lin.weight.detach().float()
            self.in_features, self.out_features = lin.in_features, lin.out_features
            self.out_dtype = lin.weight.dtype
            qmax = 448.0 if kind == "fp8" else 127.0
            scale = (w.abs().amax(dim=1, keepdim=True) / qmax).clamp(min=1e-12)
            if kind == "fp8":
                q = (w / scale).to(torch.float8_e4m3fn)
            else:
                q = torch.round(w / scale).clamp(-127, 127).to(torch.int8)
            self.register_buffer("qweight_t", q.t().contiguous().t(), persistent=False)  # column-major for _scaled_mm
            self.register_buffer("wscale", scale.t().contiguous(), persistent=False)  # (1, out)
            self.bias = lin.bias

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shape = x.shape
            x2 = x.reshape(-1, shape[-1]).float()
            qmax = 448.0 if kind == "fp8" else 127.0
            xs = (x2.abs().amax(dim=1, keepdim=True) / qmax).clamp(min=1e-12)  # (rows, 1)
            if kind == "fp8":
                xq = (x2 / xs).to(torch.float8_e4m3fn)
                y = torch._scaled_mm(xq, self.qweight_t.t(), scale_a=xs, scale_b=self.wscale, out_dtype=self.out_dtype)
            else:
                xq = torch.round(x2 / xs).clamp(-127, 127).to(torch.int8)
                rows = xq.shape[0]
                pad = max(17 - rows, (-rows) % 8)
                if pad:
                    xq = torch.cat([xq, xq.new_zeros(pad, xq.shape[1])])
                acc = torch._int_mm(xq, self.qweight_t.t())[:rows]
                y = (acc.float() * xs * self.wscale).to(self.out_dtype)
            if self.bias is not None:
                y = y + self.bias
            return y.reshape(*shape[:-1], self.out_features)

    return _W8A8(linear)


def replace_linears(model: Any, kind: str) -> int:
    """Swap every ``nn.Linear`` but ``lm_head`` (dimensions multiples of 16; for int4 the input
    dimension a multiple of 128 and the output one of 8) for the ``kind`` kernel; returns how many.
    int4 on a torch without its kernel raises ``RuntimeError`` naming the missing op."""
    from torch import nn

    if kind not in KINDS:
        raise ValueError(f"kernel kind must be one of {', '.join(KINDS)}, not {kind!r}")

    def fits(mod: Any) -> bool:
        if kind == "int4":
            return mod.in_features % (16 * _INNER_K_TILES) == 0 and mod.out_features % 8 == 0
        return mod.in_features % 16 == 0 and mod.out_features % 16 == 0

    todo = [(name, mod) for name, mod in model.named_modules()
            if isinstance(mod, nn.Linear) and not name.endswith("lm_head") and fits(mod)]
    if kind == "int4" and todo:
        problem = int4_problem("cuda" if todo[0][1].weight.is_cuda else "cpu")
        if problem:
            raise RuntimeError(f"int4 weight-only needs torch's int4 kernel: {problem}")
    for name, mod in todo:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, make_linear(mod, kind))
    return len(todo)
