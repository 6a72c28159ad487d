"""agentsim's torch-only W8A8 kernels (torch._scaled_mm FP8, torch._int_mm int8) on the CPU: the
same code the device check runs on a GPU, checked against the float matmul."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

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
    with pytest.raises(ValueError):
        replace_linears(m, "int4")
