"""Weight quantization in torch: int8/int4 group-wise, MXFP4, NVFP4 and FP8, quantize then dequantize.

Why this exists: the ``hf`` backend answers the *accuracy* question of a low-precision format on
any machine by rounding a model's weights exactly as the format would (``fake_quantize``) and
computing in a 16/32-bit dtype. The casting profiler (:mod:`agentsim.casting`) times the other
half of the story, :func:`dequantize` from the packed storage, because that is the cost a
non-fused kernel pays at every sequential agent step.

Blocks run along the **last** dimension (the input features ``K`` of an ``nn.Linear`` weight
``[N, K]``: the dimension a matmul reduces over). A last dimension that is not a multiple of
the block is padded with zeros to the next multiple; padding never changes a block's maximum,
and it is stripped again on dequantization.

Rounding conventions (the tests check them bit-exactly against ``ml_dtypes``):

``int8`` / ``int4`` (group-wise symmetric)
    ``scale = absmax(group) / qmax`` in float32 (``qmax`` 127 or 7), ``q = round(x / scale)``
    with round-half-to-even, clamped to ``[-qmax, qmax]`` (symmetric: -128 and -8 are never
    used). Dequantized value: ``q * scale``. An all-zero group has scale 0 and codes 0.
    Default group: 32 (the block of llama.cpp's Q8_0/Q4_0, so the two families compare).

``mxfp4`` (OCP Microscaling v1.0, 32-value blocks)
    Shared scale ``X = 2**(floor(log2(absmax)) - 2)`` (2 is E2M1's largest exponent), stored as
    an E8M0 byte (biased exponent, bias 127, clamped to [-127, 127]). Elements are ``x / X``
    rounded to E2M1 (values 0, 0.5, 1, 1.5, 2, 3, 4, 6) with round-to-nearest, ties-to-even
    (ties go to the value whose code is even: 0.25->0, 0.75->1, 1.25->1, 1.75->2, 2.5->2,
    3.5->4, 5->4), saturating at +-6: as in the OCP spec, the floor in the scale can put the
    largest values of a block in (6, 8) after scaling, and they clamp to 6. An all-zero block
    gets E8M0 code 0 (2**-127).

``nvfp4`` (NVIDIA, 16-value blocks, two-level scale)
    FP32 tensor scale ``T = absmax(tensor) / (6 * 448)`` (1.0 for an all-zero tensor). Block
    scale ``S = fp8_e4m3(absmax(block) / 6 / T)``, rounded to nearest-even and saturated to 448
    (a block far smaller than the tensor maximum can round to S = 0: it dequantizes to zeros).
    Elements ``e2m1(x / (S * T))`` with the E2M1 rounding above; dequantized ``e * S * T``. All
    arithmetic in float32, in exactly this order.

``fp8`` / ``fp8_e5m2`` (FP8 E4M3 / E5M2, one scale per output channel)
    One float32 scale per row of the weight (all dimensions but the last: the output channels of
    an ``nn.Linear``): ``scale = absmax(row) / fmax`` (``fmax`` 448 for E4M3, 57344 for E5M2),
    elements ``fp8(clamp(x / scale, -fmax, fmax))`` rounded to nearest, ties-to-even, subnormals
    kept (torch's cast, checked against ``ml_dtypes.float8_e4m3fn`` / ``float8_e5m2``).
    Dequantized ``float32(code) * scale``. An all-zero row has scale 0 and codes 0. There is no
    block size (``block`` is the row length; ``block_size`` returns 0 for "per channel").

Dequantization happens in float32 and the result is cast once (round-to-nearest-even) to the
compute dtype.

NaN / inf policy (all formats): a block (FP8: a row) that holds a NaN or +-inf dequantizes to
all-NaN (its scale is NaN: E8M0 code 0xFF, E4M3 code 0x7F, or a NaN float scale); the others are
unaffected and the tensor absmax of NVFP4 is taken over finite values only. Real model weights
are finite; this only makes a corrupt tensor visible instead of silently wrong.

Packed storage: 4-bit codes are packed two per byte, element ``2i`` in the low nibble and
``2i + 1`` in the high nibble. E2M1 codes are ``sign << 3 | magnitude_index``; int4 codes are
two's complement nibbles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .precision import QUANT_SCHEMES

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "DEFAULT_BLOCK",
    "E2M1_VALUES",
    "FP8_MAX",
    "fp8_scheme",
    "QuantizedTensor",
    "quantize",
    "dequantize",
    "fake_quantize",
    "round_e2m1",
    "bits_per_weight",
    "block_size",
]

#: block (group) size of each format; mxfp4 and nvfp4 are fixed by their specifications
DEFAULT_BLOCK: dict[str, int] = {"int8": 32, "int4": 32, "mxfp4": 32, "nvfp4": 16}
#: E2M1 magnitudes by 3-bit magnitude code
E2M1_VALUES: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
_E4M3_MAX = 448.0
#: largest finite magnitude of each FP8 scheme (E4M3 "fn": no inf; E5M2: IEEE-like)
FP8_MAX: dict[str, float] = {"fp8": 448.0, "fp8_e5m2": 57344.0}
_FP8_DTYPE = {"fp8": "float8_e4m3fn", "fp8_e5m2": "float8_e5m2"}
_E2M1_MAX = 6.0
_QMAX = {"int8": 127, "int4": 7}


@dataclass
class QuantizedTensor:
    """A weight in its storage form: codes, block scales, and what is needed to undo it.

    ``codes``: int8 per element (int8) or uint8 with two 4-bit codes per byte (int4, mxfp4,
    nvfp4), over the zero-padded last dimension; ``torch.float8_e4m3fn`` / ``float8_e5m2`` per
    element (fp8, fp8_e5m2; one float32 scale per row, ``block`` = the row length). ``scales``: one per block: float32 (int8/int4),
    uint8 E8M0 codes (mxfp4) or ``torch.float8_e4m3fn`` (nvfp4). ``tensor_scale``: NVFP4's FP32
    second-level scale (None otherwise).
    """

    scheme: str
    shape: tuple[int, ...]
    block: int
    codes: torch.Tensor
    scales: torch.Tensor
    tensor_scale: torch.Tensor | None = None

    @property
    def padded_k(self) -> int:
        k = self.shape[-1]
        return -(-k // self.block) * self.block

    def nbytes(self) -> int:
        """Storage bytes (codes + scales + tensor scale)."""
        n = self.codes.numel() * self.codes.element_size() + self.scales.numel() * self.scales.element_size()
        if self.tensor_scale is not None:
            n += self.tensor_scale.numel() * self.tensor_scale.element_size()
        return int(n)


def bits_per_weight(scheme: str, block: int | None = None) -> float:
    """Average storage bits per weight, scales included."""
    _check_scheme(scheme)
    if scheme in FP8_MAX:  # one float32 scale per row of ``block`` (the row length) values
        return 8.0 + (32 / block if block else 0.0)
    b = block or DEFAULT_BLOCK[scheme]
    elem = 8 if scheme == "int8" else 4
    scale_bits = {"int8": 32, "int4": 32, "mxfp4": 8, "nvfp4": 8}[scheme]
    return elem + scale_bits / b


def _check_scheme(scheme: str) -> None:
    if scheme not in QUANT_SCHEMES:
        raise ValueError(f"unknown quantization scheme {scheme!r}; one of {', '.join(QUANT_SCHEMES)}")


def fp8_scheme(fmt: str) -> str:
    """The quant scheme of FP8 element format ``fmt`` (``e4m3`` -> ``fp8``, ``e5m2`` -> ``fp8_e5m2``)."""
    if fmt == "e4m3":
        return "fp8"
    if fmt == "e5m2":
        return "fp8_e5m2"
    raise ValueError(f"unknown FP8 format {fmt!r}; one of e4m3, e5m2")


def block_size(scheme: str, block: int | None) -> int:
    """The block of ``scheme`` (``block`` checked; None or 0: the default). FP8: 0 (per channel)."""
    _check_scheme(scheme)
    if scheme in FP8_MAX:
        if block:
            raise ValueError(f"{scheme} has one scale per output channel, not blocks (got block {block})")
        return 0
    if block is None or block == 0:
        return DEFAULT_BLOCK[scheme]
    if scheme in ("mxfp4", "nvfp4") and block != DEFAULT_BLOCK[scheme]:
        raise ValueError(f"{scheme} has a fixed block of {DEFAULT_BLOCK[scheme]} values (got {block})")
    if block < 2 or block % 2:
        raise ValueError(f"block size must be an even number >= 2 (got {block})")
    return block


def _blocks(x: torch.Tensor, block: int) -> torch.Tensor:
    """``x`` as float32 ``[..., nblocks, block]``, the last dim zero-padded to a multiple."""
    import torch

    if x.dim() == 0:
        raise ValueError("cannot quantize a scalar")
    x = x.detach().to(torch.float32)
    k = x.shape[-1]
    pad = (-k) % block
    if pad:
        x = torch.nn.functional.pad(x, (0, pad))
    return x.reshape(*x.shape[:-1], -1, block)


def _nonfinite_blocks(xb: torch.Tensor) -> torch.Tensor:
    """Mask ``[..., nblocks, 1]`` of the blocks that hold a NaN or inf."""
    import torch

    return (~torch.isfinite(xb)).any(dim=-1, keepdim=True)


# --------------------------------------------------------------------------------------------
# E2M1


def round_e2m1(y: torch.Tensor) -> torch.Tensor:
    """E2M1 codes (uint8, ``sign << 3 | magnitude``) of float32 ``y``: nearest, ties-to-even,
    saturating at +-6. Non-finite inputs give an arbitrary code (callers mask those blocks)."""
    import torch

    a = y.abs()
    # midpoints between consecutive E2M1 magnitudes; at a tie go to the even code
    mag = (
        (a > 0.25).to(torch.uint8)   # 0 | 0.5: tie -> 0 (code 0)
        + (a >= 0.75).to(torch.uint8)  # 0.5 | 1: tie -> 1 (code 2)
        + (a > 1.25).to(torch.uint8)   # 1 | 1.5: tie -> 1 (code 2)
        + (a >= 1.75).to(torch.uint8)  # 1.5 | 2: tie -> 2 (code 4)
        + (a > 2.5).to(torch.uint8)    # 2 | 3: tie -> 2 (code 4)
        + (a >= 3.5).to(torch.uint8)   # 3 | 4: tie -> 4 (code 6)
        + (a > 5.0).to(torch.uint8)    # 4 | 6: tie -> 4 (code 6)
    )
    sign = torch.signbit(y).to(torch.uint8) << 3
    return sign | mag


def _e2m1_lut(device: Any) -> torch.Tensor:
    import torch

    vals = list(E2M1_VALUES) + [-v for v in E2M1_VALUES]
    return torch.tensor(vals, dtype=torch.float32, device=device)


def _pack4(codes: torch.Tensor) -> torch.Tensor:
    """Two 4-bit codes per byte along the last dim (even element low nibble)."""
    import torch

    c = codes.to(torch.uint8) & 0x0F
    return c[..., 0::2] | (c[..., 1::2] << 4)


def _unpack4(packed: torch.Tensor) -> torch.Tensor:
    import torch

    lo = packed & 0x0F
    hi = packed >> 4
    return torch.stack((lo, hi), dim=-1).reshape(*packed.shape[:-1], packed.shape[-1] * 2)


# --------------------------------------------------------------------------------------------
# quantize


def quantize(w: torch.Tensor, scheme: str, block: int | None = None) -> QuantizedTensor:
    """The storage form of ``w`` in ``scheme`` (see the module docstring for the rounding)."""
    import torch

    block = block_size(scheme, block)
    if scheme in FP8_MAX:
        return _quantize_fp8(w, scheme)
    shape = tuple(w.shape)
    xb = _blocks(w, block)  # [..., nb, block] float32
    bad = _nonfinite_blocks(xb)
    lead = xb.shape[:-2]
    if scheme in _QMAX:
        qmax = _QMAX[scheme]
        amax = torch.where(bad, 0.0, xb).abs().amax(dim=-1, keepdim=True)
        scale = amax / qmax
        safe = torch.where(scale == 0, torch.ones_like(scale), scale)
        q = torch.round(torch.where(bad, 0.0, xb) / safe).clamp_(-qmax, qmax)
        q = torch.where(scale == 0, torch.zeros_like(q), q)
        scale = torch.where(bad, torch.full_like(scale, float("nan")), scale)
        codes = q.to(torch.int8).reshape(*lead, -1)
        if scheme == "int4":
            codes = _pack4(codes.view(torch.uint8))
        return QuantizedTensor(scheme, shape, block, codes, scale.squeeze(-1))
    if scheme == "mxfp4":
        finite = torch.where(bad, 0.0, xb)
        amax = finite.abs().amax(dim=-1, keepdim=True)
        _, exp = torch.frexp(amax)  # amax = m * 2**exp, m in [0.5, 1): floor(log2) = exp - 1
        e = (exp - 1 - 2).clamp(-127, 127)
        e = torch.where(amax == 0, torch.full_like(e, -127), e)
        y = torch.ldexp(finite, -e.to(torch.float32))  # exact: a power-of-two scaling
        codes = round_e2m1(y.clamp(-_E2M1_MAX, _E2M1_MAX))
        scale_codes = (e + 127).to(torch.uint8)
        scale_codes = torch.where(bad, torch.full_like(scale_codes, 0xFF), scale_codes)
        return QuantizedTensor(scheme, shape, block, _pack4(codes.reshape(*lead, -1)), scale_codes.squeeze(-1))
    # nvfp4
    finite = torch.where(bad, 0.0, xb)
    t_amax = finite.abs().amax()
    tscale = (t_amax / (_E2M1_MAX * _E4M3_MAX)).reshape(1)
    if float(tscale) == 0.0:
        tscale = torch.ones(1, dtype=torch.float32, device=xb.device)
    b_amax = finite.abs().amax(dim=-1, keepdim=True)
    s = ((b_amax / _E2M1_MAX) / tscale).clamp(max=_E4M3_MAX).to(torch.float8_e4m3fn)
    denom = s.to(torch.float32) * tscale
    y = torch.where(denom == 0, torch.zeros_like(finite), finite / torch.where(denom == 0, 1.0, denom))
    codes = round_e2m1(y.clamp(-_E2M1_MAX, _E2M1_MAX))
    s = torch.where(bad, torch.full_like(s.to(torch.float32), float("nan")), s.to(torch.float32)).to(torch.float8_e4m3fn)
    return QuantizedTensor(scheme, shape, block, _pack4(codes.reshape(*lead, -1)), s.squeeze(-1), tscale)


def _quantize_fp8(w: torch.Tensor, scheme: str) -> QuantizedTensor:
    import torch

    if w.dim() == 0:
        raise ValueError("cannot quantize a scalar")
    fmax = FP8_MAX[scheme]
    x = w.detach().to(torch.float32)
    bad = (~torch.isfinite(x)).any(dim=-1, keepdim=True)
    finite = torch.where(bad, 0.0, x)
    scale = finite.abs().amax(dim=-1, keepdim=True) / fmax
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    codes = (finite / safe).clamp_(-fmax, fmax).to(getattr(torch, _FP8_DTYPE[scheme]))
    scale = torch.where(bad, torch.full_like(scale, float("nan")), scale)
    return QuantizedTensor(scheme, tuple(w.shape), int(w.shape[-1]), codes, scale.squeeze(-1))


# --------------------------------------------------------------------------------------------
# dequantize


def dequantize(q: QuantizedTensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The tensor ``q`` stands for, in ``dtype`` (float32 when None).

    This is the "casting" a non-fused kernel pays before each matmul: unpack, look up or
    convert, multiply by the block scales, and cast to the compute dtype.
    """
    import torch

    if q.scheme in FP8_MAX:
        out = q.codes.to(torch.float32) * q.scales.to(torch.float32).unsqueeze(-1)
        return out.to(dtype) if dtype is not None and dtype != torch.float32 else out
    lead = q.shape[:-1]
    k = q.shape[-1]
    nb = q.padded_k // q.block
    if q.scheme == "int8":
        vals = q.codes.to(torch.float32)
    elif q.scheme == "int4":
        nib = _unpack4(q.codes).to(torch.int16)
        vals = (nib - ((nib & 0x8) << 1)).to(torch.float32)  # sign-extend a two's complement nibble
    else:
        vals = _e2m1_lut(q.codes.device)[_unpack4(q.codes).long()]
    vals = vals.reshape(*lead, nb, q.block)
    if q.scheme in _QMAX:
        scale = q.scales.to(torch.float32).unsqueeze(-1)
        out = vals * scale
    elif q.scheme == "mxfp4":
        codes = q.scales.to(torch.int32)
        scale = torch.ldexp(torch.ones_like(codes, dtype=torch.float32), (codes - 127).to(torch.float32))
        scale = torch.where(codes == 0xFF, torch.full_like(scale, float("nan")), scale)
        out = vals * scale.unsqueeze(-1)
    else:
        assert q.tensor_scale is not None
        out = (vals * q.scales.to(torch.float32).unsqueeze(-1)) * q.tensor_scale
    out = out.reshape(*lead, nb * q.block)[..., :k]
    return out.to(dtype) if dtype is not None and dtype != torch.float32 else out


def fake_quantize(w: torch.Tensor, scheme: str, block: int | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``dequantize(quantize(w))``: ``w`` with every value rounded as ``scheme`` stores it.

    The result has ``w``'s shape and ``dtype`` (``w.dtype`` when None).
    """
    return dequantize(quantize(w, scheme, block), dtype or w.dtype)
