"""agentsim's torch-only kernels (torch._scaled_mm FP8 and torch._int_mm int8 W8A8, torch's int4
weight-only pack/mm) on the CPU: the same code the device check runs on a GPU, checked against the
float matmul (and int4 against its own dequantized weights)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from agentsim.backends import hf_kernels  # noqa: E402
from agentsim.backends.hf_kernels import replace_linears  # noqa: E402


@pytest.mark.parametrize(("kind", "tol"), [("fp8", 0.08), ("int8", 0.03)])
@pytest.mark.parametrize("rows", [1, 5, 40])
def test_w8a8_linears_match_the_float_matmul(kind, tol, rows):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512, bias=False), torch.nn.Linear(512, 128, bias=True))
    model = model.to(torch.bfloat16)
    x = torch.randn(rows, 3, 256, dtype=torch.bfloat16)
    ref = model(x).float()
    assert replace_linears(model, kind) == 2
    y = model(x)
    assert y.dtype == torch.bfloat16 and y.shape == ref.shape
    rel = ((y.float() - ref).norm() / ref.norm()).item()
    assert 0 < rel < tol, rel  # quantized (not the float result), and close to it


def test_lm_head_and_odd_shapes_stay_float():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(256, 250)
            self.lm_head = torch.nn.Linear(256, 64)

    m = M()
    assert replace_linears(m, "int8") == 0
    assert replace_linears(m, "int4") == 0  # 250 outputs: not a multiple of 8 either
    with pytest.raises(ValueError, match="int8, int4"):
        replace_linears(m, "int3")


def _tinygemm_dequant(w, g=32):
    n, k = w.shape
    wg = w.float().reshape(n, k // g, g)
    lo, hi = wg.amin(-1, keepdim=True), wg.amax(-1, keepdim=True)
    scale = ((hi - lo) / 15).clamp(min=1e-6)
    q = torch.round((wg - lo) / scale).clamp(0, 15)
    scale_b, zero_b = scale.bfloat16().float(), (lo + 8 * scale).bfloat16().float()
    return ((q - 8) * scale_b + zero_b).reshape(n, k)


@pytest.mark.skipif(hf_kernels.int4_problem("cpu") is not None, reason="this torch has no CPU int4 kernel")
@pytest.mark.parametrize("rows", [1, 7, 40])
def test_int4_weight_only_is_the_real_kernel_on_its_own_int4_weights(rows):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512, bias=False), torch.nn.Linear(512, 128, bias=True))
    model = model.to(torch.bfloat16)
    x = torch.randn(rows, 256, dtype=torch.bfloat16)
    ref = model(x).float()
    deq = [_tinygemm_dequant(m.weight.detach()) for m in model]
    h = x.float() @ deq[0].t()
    ref_int4 = h.bfloat16().float() @ deq[1].t() + model[1].bias.float()
    assert replace_linears(model, "int4") == 2
    assert type(model[0]).__name__ == "Int4Linear" and model[0].qweight.dtype != torch.bfloat16  # packed, not a float copy
    y = model(x)
    assert y.dtype == torch.bfloat16 and y.shape == ref.shape
    rel_float = ((y.float() - ref).norm() / ref.norm()).item()
    rel_int4 = ((y.float() - ref_int4).norm() / ref_int4.norm()).item()
    assert 0.01 < rel_float < 0.2, rel_float  # 4-bit weights: visibly not the float result
    assert rel_int4 < 0.01, rel_int4  # but the int4 weights' own product (bf16 rounding apart)


def test_int4_without_the_kernel_is_refused_by_name(monkeypatch):
    import types

    monkeypatch.setattr(torch.ops, "aten", types.SimpleNamespace())
    problem = hf_kernels.int4_problem("cuda")
    assert "_weight_int4pack_mm" in problem and "_convert_weight_to_int4pack" in problem
    with pytest.raises(RuntimeError, match="int4 weight-only needs torch's int4 kernel"):
        replace_linears(torch.nn.Sequential(torch.nn.Linear(256, 128)), "int4")
