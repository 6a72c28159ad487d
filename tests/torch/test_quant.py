"""agentsim.quant against an independent reference: numpy float32 arithmetic for the scales and
ml_dtypes' casts (float4_e2m1fn, float8_e4m3fn, float8_e8m0fnu) for the rounding.

The reference below is written from the format specifications (OCP MX v1.0, NVIDIA NVFP4), not
from agentsim.quant: it shares no code with it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ml_dtypes = pytest.importorskip("ml_dtypes")

from agentsim import quant  # noqa: E402
from agentsim.precision import EMULATED_SCHEMES  # noqa: E402

pytestmark = pytest.mark.hf

#: the block-scaled schemes (FP8's per-channel scheme has its own tests: test_quant_fp8.py)
BLOCK_SCHEMES = tuple(s for s in EMULATED_SCHEMES if s != "fp8")

F4 = ml_dtypes.float4_e2m1fn
E4M3 = ml_dtypes.float8_e4m3fn
E8M0 = ml_dtypes.float8_e8m0fnu


# --------------------------------------------------------------------------------------------
# reference implementations (numpy + ml_dtypes)


def _ref_blocks(w: np.ndarray, block: int) -> np.ndarray:
    w = w.astype(np.float32)
    pad = (-w.shape[-1]) % block
    if pad:
        w = np.concatenate([w, np.zeros((*w.shape[:-1], pad), np.float32)], axis=-1)
    return w.reshape(*w.shape[:-1], -1, block)


def _ref_finish(out: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return out.reshape(*shape[:-1], -1)[..., : shape[-1]]


def ref_int(w: np.ndarray, bits: int, block: int) -> np.ndarray:
    qmax = np.float32(2 ** (bits - 1) - 1)
    xb = _ref_blocks(w, block)
    out = np.empty_like(xb)
    for idx in np.ndindex(xb.shape[:-1]):
        v = xb[idx]
        if not np.isfinite(v).all():
            out[idx] = np.nan
            continue
        scale = np.float32(np.abs(v).max()) / qmax
        if scale == 0:
            out[idx] = 0.0
            continue
        q = np.clip(np.rint(v / scale), -qmax, qmax).astype(np.int32).astype(np.float32)  # integers: no -0
        out[idx] = q * scale
    return _ref_finish(out, w.shape)


def ref_mxfp4(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dequantized, E2M1 codes, E8M0 scale codes)."""
    xb = _ref_blocks(w, 32)
    out = np.empty_like(xb)
    codes = np.empty(xb.shape, np.uint8)
    scodes = np.empty(xb.shape[:-1], np.uint8)
    for idx in np.ndindex(xb.shape[:-1]):
        v = xb[idx]
        if not np.isfinite(v).all():
            out[idx] = np.nan
            scodes[idx] = 0xFF
            codes[idx] = 0
            continue
        amax = float(np.abs(v).max())
        e = -127 if amax == 0 else max(-127, min(127, math.floor(math.log2(amax)) - 2))
        scale = np.float32(2.0**e)
        scodes[idx] = np.array(scale, np.float32).astype(E8M0).view(np.uint8)
        y = np.clip(v / scale, -6, 6).astype(np.float32)
        f4 = y.astype(F4)
        codes[idx] = f4.view(np.uint8) & 0x0F
        out[idx] = f4.astype(np.float32) * scale
    return _ref_finish(out, w.shape), codes, scodes


def ref_nvfp4(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.float32]:
    """(dequantized, E2M1 codes, E4M3 scale bytes, tensor scale)."""
    xb = _ref_blocks(w, 16)
    finite = np.where(np.isfinite(xb), xb, 0).astype(np.float32)
    t_amax = np.float32(np.abs(finite).max())
    ts = np.float32(t_amax / np.float32(6 * 448))
    if ts == 0:
        ts = np.float32(1.0)
    out = np.empty_like(xb)
    codes = np.empty(xb.shape, np.uint8)
    sbytes = np.empty(xb.shape[:-1], np.uint8)
    for idx in np.ndindex(xb.shape[:-1]):
        v = xb[idx]
        if not np.isfinite(v).all():
            out[idx] = np.nan
            sbytes[idx] = np.array(np.nan, np.float32).astype(E4M3).view(np.uint8)
            codes[idx] = 0
            continue
        b = np.float32(np.abs(v).max())
        s = np.minimum(np.float32(np.float32(b / np.float32(6)) / ts), np.float32(448)).astype(E4M3)
        sbytes[idx] = s.view(np.uint8)
        denom = np.float32(np.float32(s.astype(np.float32)) * ts)
        if denom == 0:
            y = np.zeros_like(v)
        else:
            y = (v / denom).astype(np.float32)
        f4 = np.clip(y, -6, 6).astype(F4)
        codes[idx] = f4.view(np.uint8) & 0x0F
        out[idx] = (f4.astype(np.float32) * s.astype(np.float32)).astype(np.float32) * ts
    return _ref_finish(out, w.shape), codes, sbytes, ts


# --------------------------------------------------------------------------------------------
# helpers


def _unpacked_codes(q: quant.QuantizedTensor) -> np.ndarray:
    packed = q.codes.numpy()
    lo, hi = packed & 0x0F, packed >> 4
    return np.stack([lo, hi], axis=-1).reshape(*packed.shape[:-1], -1)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical float32 arrays (so -0.0 != +0.0, NaN == NaN)."""
    return a.shape == b.shape and np.array_equal(
        np.ascontiguousarray(a, np.float32).view(np.uint32), np.ascontiguousarray(b, np.float32).view(np.uint32)
    )


def _nan_same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal, with NaN matching NaN regardless of payload."""
    na, nb = np.isnan(a), np.isnan(b)
    return a.shape == b.shape and np.array_equal(na, nb) and _same_bits(np.where(na, 0, a), np.where(nb, 0, b))


def _weights(seed: int, shape: tuple[int, ...], spread: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape).astype(np.float32)
    if spread:  # a wide dynamic range: per-row magnitudes over 2**-20 .. 2**10
        w *= (2.0 ** rng.integers(-20, 10, size=(*shape[:-1], 1))).astype(np.float32)
    return w


SHAPES = [(4, 64), (3, 48), (5, 37), (2, 3, 40), (1, 1), (7, 129)]


# --------------------------------------------------------------------------------------------
# bit-exact against the reference


def test_e2m1_rounding_all_midpoints_and_grid():
    """Every grid value, every midpoint (ties), values just around them, and saturation."""
    grid = np.array(quant.E2M1_VALUES, np.float32)
    mids = (grid[:-1] + grid[1:]) / 2
    near = np.concatenate([mids, np.nextafter(mids, np.float32(0)), np.nextafter(mids, np.float32(10))])
    vals = np.concatenate([grid, near, [6.5, 7.0, 1e6, 1e-30, 0.0]]).astype(np.float32)
    vals = np.concatenate([vals, -vals]).astype(np.float32)
    ours = quant.round_e2m1(torch.from_numpy(vals).clamp(-6, 6)).numpy()
    ref = np.clip(vals, -6, 6).astype(F4).view(np.uint8) & 0x0F
    assert np.array_equal(ours, ref)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_mxfp4_bit_exact(shape, seed):
    w = _weights(seed, shape)
    q = quant.quantize(torch.from_numpy(w), "mxfp4")
    ref, ref_codes, ref_scodes = ref_mxfp4(w)
    assert np.array_equal(_unpacked_codes(q).reshape(ref_codes.shape), ref_codes)
    assert np.array_equal(q.scales.numpy(), ref_scodes)
    assert _same_bits(quant.dequantize(q).numpy(), ref)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_nvfp4_bit_exact(shape, seed):
    w = _weights(seed, shape, spread=False)
    # a few rows far below the tensor maximum, so some block scales are E4M3 subnormals or zero
    w[..., :1, :] *= np.float32(2.0**-12)
    q = quant.quantize(torch.from_numpy(w), "nvfp4")
    ref, ref_codes, ref_sbytes, ts = ref_nvfp4(w)
    assert float(q.tensor_scale[0]) == float(ts)
    assert np.array_equal(q.scales.view(torch.uint8).numpy(), ref_sbytes)
    assert np.array_equal(_unpacked_codes(q).reshape(ref_codes.shape), ref_codes)
    assert _same_bits(quant.dequantize(q).numpy(), ref)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("block", [32, 16, 128])
def test_int_bit_exact(bits, shape, block):
    w = _weights(3, shape)
    scheme = f"int{bits}"
    got = quant.fake_quantize(torch.from_numpy(w), scheme, block).numpy()
    assert _same_bits(got, ref_int(w, bits, block))


def test_int_midpoints_round_half_to_even():
    # absmax 7 -> scale 1: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -3.5 -> -4
    w = torch.tensor([[7.0, 0.5, 1.5, 2.5, -3.5, -0.5, 6.5, 0.0]])
    got = quant.fake_quantize(w, "int4", 8)
    assert got.tolist() == [[7.0, 0.0, 2.0, 2.0, -4.0, 0.0, 6.0, 0.0]]
    q = quant.quantize(w, "int4", 8)
    assert float(q.scales[0, 0]) == 1.0


def test_mxfp4_scale_and_saturation_conventions():
    # absmax 7.5 -> floor(log2 7.5) = 2 -> X = 2**0 = 1; 7.5 saturates to 6 (OCP convention)
    w = torch.tensor([[7.5, 5.0, 3.5, -0.25] + [0.0] * 28])
    q = quant.quantize(w, "mxfp4")
    assert int(q.scales[0, 0]) == 127
    assert quant.dequantize(q)[0, :4].tolist() == [6.0, 4.0, 4.0, -0.0]


# --------------------------------------------------------------------------------------------
# edge cases


@pytest.mark.parametrize("scheme", BLOCK_SCHEMES)
def test_zeros_stay_zero(scheme):
    w = torch.zeros(3, 40)
    q = quant.quantize(w, scheme)
    out = quant.dequantize(q)
    assert out.shape == w.shape and torch.equal(out, w) and not torch.signbit(out).any()


@pytest.mark.parametrize("scheme", BLOCK_SCHEMES)
@pytest.mark.parametrize("value", [1.0, -0.3, 6.0, 1e-3])
def test_all_equal_blocks(scheme, value):
    """A constant block is its own maximum: exact for int and (power-of-two) FP4 values."""
    w = torch.full((2, 64), value)
    out = quant.fake_quantize(w, scheme)
    ref = {
        "int8": ref_int(w.numpy(), 8, 32),
        "int4": ref_int(w.numpy(), 4, 32),
        "mxfp4": ref_mxfp4(w.numpy())[0],
        "nvfp4": ref_nvfp4(w.numpy())[0],
    }[scheme]
    assert _same_bits(out.numpy(), ref)
    # int: q = qmax exactly; relative error only from float32 (absmax / qmax) * qmax
    assert torch.allclose(out, w, rtol=1e-6 if scheme.startswith("int") else 0.25)


@pytest.mark.parametrize("scheme", BLOCK_SCHEMES)
def test_nonfinite_policy_poisons_only_its_block(scheme):
    w = _weights(5, (2, 64), spread=False)
    w[0, 3] = np.nan
    w[1, 40] = np.inf
    out = quant.fake_quantize(torch.from_numpy(w), scheme).numpy()
    block = quant.DEFAULT_BLOCK[scheme]
    nan = np.isnan(out)
    expect = np.zeros_like(nan)
    expect[0, 0:block] = True
    b1 = (40 // block) * block
    expect[1, b1:b1 + block] = True
    assert np.array_equal(nan, expect)
    ref = {"int8": lambda a: ref_int(a, 8, 32), "int4": lambda a: ref_int(a, 4, 32),
           "mxfp4": lambda a: ref_mxfp4(a)[0], "nvfp4": lambda a: ref_nvfp4(a)[0]}[scheme](w)
    assert _nan_same(out, ref)


@pytest.mark.parametrize("scheme", BLOCK_SCHEMES)
@pytest.mark.parametrize("shape", [(3, 33), (5, 1), (2, 17), (4, 31)])
def test_shapes_not_divisible_by_block(scheme, shape):
    w = torch.from_numpy(_weights(7, shape, spread=False))
    q = quant.quantize(w, scheme)
    out = quant.dequantize(q)
    assert out.shape == w.shape
    assert q.padded_k % q.block == 0 and q.padded_k >= shape[-1]
    # padding must not change the result: the same values in a wider, zero-padded tensor agree
    wide = torch.nn.functional.pad(w, (0, q.padded_k - shape[-1]))
    assert torch.equal(quant.fake_quantize(wide, scheme)[..., : shape[-1]], out)


@pytest.mark.parametrize("scheme", BLOCK_SCHEMES)
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_fake_quantize_keeps_shape_and_casts_once(scheme, dtype):
    dt = getattr(torch, dtype)
    w = torch.from_numpy(_weights(11, (8, 96), spread=False)).to(dt)
    out = quant.fake_quantize(w, scheme)
    assert out.dtype == dt and out.shape == w.shape
    f32 = quant.dequantize(quant.quantize(w, scheme))
    assert torch.equal(out, f32.to(dt))


@pytest.mark.parametrize("scheme", BLOCK_SCHEMES)
def test_error_shrinks_with_more_bits(scheme):
    """Sanity on top of bit-exactness: the rounding error is bounded by half a step."""
    w = torch.from_numpy(_weights(13, (16, 256), spread=False))
    err = (quant.fake_quantize(w, scheme) - w).abs().mean().item()
    bound = {"int8": 0.01, "int4": 0.15, "mxfp4": 0.2, "nvfp4": 0.15}[scheme]
    assert 0 < err < bound


def test_int8_finer_than_int4():
    w = torch.from_numpy(_weights(17, (16, 256), spread=False))
    e8 = (quant.fake_quantize(w, "int8") - w).abs().mean()
    e4 = (quant.fake_quantize(w, "int4") - w).abs().mean()
    assert e8 < e4 / 8


def test_storage_is_packed():
    w = torch.randn(8, 64)
    assert quant.quantize(w, "int4").codes.shape == (8, 32)
    assert quant.quantize(w, "mxfp4").codes.shape == (8, 32)
    assert quant.quantize(w, "nvfp4").scales.dtype == torch.float8_e4m3fn
    assert quant.quantize(w, "int8").codes.dtype == torch.int8
    assert quant.quantize(w, "int4").nbytes() < quant.quantize(w, "int8").nbytes()
    assert quant.bits_per_weight("mxfp4") == 4.25 and quant.bits_per_weight("nvfp4") == 4.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown"):
        quant.quantize(torch.ones(2, 32), "fp3")
    with pytest.raises(ValueError, match="fixed block"):
        quant.quantize(torch.ones(2, 32), "mxfp4", 16)
    with pytest.raises(ValueError, match="even"):
        quant.quantize(torch.ones(2, 32), "int4", 7)
    with pytest.raises(ValueError, match="scalar"):
        quant.quantize(torch.tensor(1.0), "int8")
