"""How the llama backend labels FP4 on a GPU build: the compute capability comes from the one
device probe (``hardware.detect(torch=False)``: NVML, not torch's device). No CUDA build of llama.cpp is
reachable here, so the GPU is stated at the NVML boundary (a fake pynvml) and the build's
offload support is stated on the backend; the model file facts are real resolver output."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pynvml")

from agentsim import hardware, models  # noqa: E402
from agentsim.backends.base import create_backend  # noqa: E402
from tests.unit.measure_fakes import FakeClock, FakeGPU, FakeNVML, install_fake_probe  # noqa: E402


def _fp4_backend(tiny_gguf: Path) -> object:
    b = create_backend(f"llama:{tiny_gguf}")
    r = models.resolve(str(tiny_gguf), None)
    r.tensor_types = {"MXFP4": 12, "Q8_0": 2, "F32": 5}
    b._resolved = r  # type: ignore[attr-defined]
    b._gpu, b._n_gpu_layers = True, -1  # type: ignore[attr-defined]  # a build that offloads
    return b


@pytest.mark.parametrize(("name", "cc", "mode"), [("NVIDIA B200", (10, 0), "native"),
                                                  ("NVIDIA H100 80GB HBM3", (9, 0), "emulated")])
def test_fp4_label_follows_the_probed_capability(tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch,
                                                  name: str, cc: tuple[int, int], mode: str) -> None:
    nvml = FakeNVML([FakeGPU(name=name, cc=cc)], FakeClock())
    # torch would report another GPU: llama.cpp does not compute with torch, so NVML's answer counts
    torch_gpu = hardware.Accelerator("cuda", "torch's device", (8, 0), "torch")
    install_fake_probe(monkeypatch, nvml, torch_gpu=torch_gpu)
    info = _fp4_backend(tiny_gguf).info()  # type: ignore[attr-defined]
    assert info.device == "cuda" and info.precision_mode == mode
    assert ("FP4 tensor cores (sm_100)" in info.kernel) == (mode == "native")
    info2 = _fp4_backend(tiny_gguf).info()  # type: ignore[attr-defined]
    assert info2.precision_mode == mode and nvml.inits == 1  # NVML asked once, then cached
    hardware.reset()


def test_fp4_on_a_gpu_build_without_a_cuda_gpu_is_emulated(tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_probe(monkeypatch, None)  # no pynvml: no GPU NVML can see
    info = _fp4_backend(tiny_gguf).info()  # type: ignore[attr-defined]
    assert info.device == "gpu" and info.precision_mode == "emulated"
    assert "no FP4 tensor cores" in info.kernel
