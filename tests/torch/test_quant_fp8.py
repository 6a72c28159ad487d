"""agentsim.quant's FP8 (E4M3 and E5M2, one scale per output channel) against an independent
reference: numpy float32 arithmetic for the scales and ml_dtypes' casts (float8_e4m3fn,
float8_e5m2) for the rounding. The reference shares no code with agentsim.quant."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ml_dtypes = pytest.importorskip("ml_dtypes")

from agentsim import quant  # noqa: E402
from agentsim.precision import EMULATED_SCHEMES, FP8_FORMATS, QUANT_SCHEMES  # noqa: E402

pytestmark = pytest.mark.hf

FORMATS = {"fp8": (ml_dtypes.float8_e4m3fn, 448.0), "fp8_e5m2": (ml_dtypes.float8_e5m2, 57344.0)}
SCHEMES = tuple(FORMATS)


def ref_fp8(w: np.ndarray, scheme: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dequantized, codes as uint8, scales) from the definition: a scale per row, RNE casts."""
    dt, fmax = FORMATS[scheme]
    w = w.astype(np.float32)
    rows = w.reshape(-1, w.shape[-1])
    out = np.empty_like(rows)
    codes = np.zeros(rows.shape, np.uint8)
    scales = np.empty(rows.shape[0], np.float32)
    for i, v in enumerate(rows):
        if not np.isfinite(v).all():
            out[i], scales[i] = np.nan, np.nan
            continue
        scale = np.float32(np.abs(v).max()) / np.float32(fmax)
        scales[i] = scale
        if scale == 0:
            out[i] = 0.0
            continue
        c = np.clip(v / scale, -fmax, fmax).astype(dt)
        codes[i] = c.view(np.uint8)
        out[i] = c.astype(np.float32) * scale
    return out.reshape(w.shape), codes.reshape(w.shape), scales.reshape(w.shape[:-1])


def _weights(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """Rows over 16 orders of magnitude, so that small rows reach FP8's subnormals."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape).astype(np.float32)
    return (w * np.exp(rng.uniform(-14, 6, (*shape[:-1], 1)))).astype(np.float32)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a.astype(np.float32).view(np.uint32), b.astype(np.float32).view(np.uint32))


def test_fp8_is_an_emulated_precision_with_two_formats():
    assert "fp8" in EMULATED_SCHEMES and "fp8_e5m2" in QUANT_SCHEMES
    assert FP8_FORMATS == ("e4m3", "e5m2")
    assert quant.fp8_scheme("e4m3") == "fp8" and quant.fp8_scheme("e5m2") == "fp8_e5m2"
    with pytest.raises(ValueError, match="unknown FP8 format"):
        quant.fp8_scheme("e3m4")


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("shape", [(64, 200), (3, 7, 48), (5, 1)])
def test_bit_exact_against_ml_dtypes(scheme: str, shape: tuple[int, ...]) -> None:
    w = _weights(1, shape)
    w.reshape(-1, shape[-1])[0, :] *= 1e-3  # one row mostly subnormal after scaling
    w.reshape(-1, shape[-1])[0, 0] = 1.0
    q = quant.quantize(torch.from_numpy(w), scheme)
    ref, ref_codes, ref_scales = ref_fp8(w, scheme)
    assert q.codes.dtype == getattr(torch, {"fp8": "float8_e4m3fn", "fp8_e5m2": "float8_e5m2"}[scheme])
    assert np.array_equal(q.codes.view(torch.uint8).numpy(), ref_codes)
    assert _same_bits(q.scales.numpy(), ref_scales)
    assert _same_bits(quant.dequantize(q).numpy(), ref)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_ties_round_to_even(scheme: str) -> None:
    """Exact midpoints between neighbouring FP8 values go to the one with the even code."""
    dt, fmax = FORMATS[scheme]
    grid = np.arange(0, 256, dtype=np.uint8).view(dt).astype(np.float32)
    pos = np.unique(grid[np.isfinite(grid) & (grid >= 0) & (grid <= fmax)])
    mids = ((pos[:-1].astype(np.float64) + pos[1:]) / 2).astype(np.float32)
    row = np.concatenate([[fmax], mids, -mids]).astype(np.float32)  # fmax: the scale is exactly 1
    q = quant.quantize(torch.from_numpy(row[None, :]), scheme)
    assert float(q.scales[0]) == 1.0
    codes = q.codes.view(torch.uint8).numpy()[0]
    assert np.array_equal(codes, row.astype(dt).view(np.uint8))
    assert np.all(codes[1:] % 2 == 0)  # every tie lands on an even mantissa


@pytest.mark.parametrize("scheme", SCHEMES)
def test_scale_per_output_channel(scheme: str) -> None:
    w = torch.from_numpy(_weights(2, (6, 40)))
    q = quant.quantize(w, scheme)
    fmax = FORMATS[scheme][1]
    assert q.scales.shape == (6,) and q.block == 40 and q.padded_k == 40
    assert torch.equal(q.scales, w.abs().amax(dim=-1) / fmax)
    # each row's largest magnitude maps to fmax exactly (or its float32 neighbour)
    assert torch.allclose(q.codes.to(torch.float32).abs().amax(dim=-1), torch.full((6,), fmax))
    # scaling a row does not change its codes (up to float32 rounding of the scale)
    w2 = w.clone()
    w2[3] *= 2.0
    q2 = quant.quantize(w2, scheme)
    assert torch.equal(q2.codes[3].view(torch.uint8), q.codes[3].view(torch.uint8))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_zeros_and_nonfinite_rows(scheme: str) -> None:
    w = _weights(3, (4, 32))
    w[1] = 0.0
    w[2, 5] = np.nan
    w[3, 0] = -np.inf
    out = quant.fake_quantize(torch.from_numpy(w), scheme).numpy()
    assert np.array_equal(out[1], np.zeros(32, np.float32)) and not np.signbit(out[1]).any()
    assert np.isnan(out[2]).all() and np.isnan(out[3]).all()
    assert np.isfinite(out[0]).all()
    ref, _, _ = ref_fp8(w, scheme)
    assert _same_bits(out[0], ref[0])


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_fake_quantize_casts_once(scheme: str, dtype: str) -> None:
    dt = getattr(torch, dtype)
    w = torch.from_numpy(_weights(4, (8, 96))).to(dt)
    out = quant.fake_quantize(w, scheme)
    assert out.dtype == dt and out.shape == w.shape
    assert torch.equal(out, quant.dequantize(quant.quantize(w, scheme)).to(dt))


def test_e4m3_finer_than_e5m2_and_error_bounded():
    w = torch.randn(32, 256, generator=torch.Generator().manual_seed(5))
    rel = {}
    for scheme in SCHEMES:
        err = (quant.fake_quantize(w, scheme) - w).abs()
        rel[scheme] = float((err / w.abs().amax(dim=-1, keepdim=True)).max())
    # half an ulp at the top binade: 2**-4 / 2 (E4M3: 3 mantissa bits), 2**-3 / 2 (E5M2: 2 bits)
    assert 0 < rel["fp8"] <= 2**-4 and 0 < rel["fp8_e5m2"] <= 2**-3
    assert rel["fp8"] < rel["fp8_e5m2"]


def test_storage_and_bad_arguments():
    w = torch.randn(8, 64)
    q = quant.quantize(w, "fp8")
    assert q.nbytes() == 8 * 64 + 8 * 4  # one byte per weight, one float32 per row
    assert quant.bits_per_weight("fp8") == 8.0 and quant.bits_per_weight("fp8", 64) == 8.5
    assert quant.block_size("fp8", None) == 0
    with pytest.raises(ValueError, match="per output channel"):
        quant.quantize(w, "fp8", 32)
    with pytest.raises(ValueError, match="scalar"):
        quant.quantize(torch.tensor(1.0), "fp8")
