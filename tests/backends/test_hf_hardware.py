"""agentsim.hardware: the FP4- and FP8-native rules and the f16 check.

Other GPUs are stated at the hardware boundary (an ``Accelerator`` value, what torch or NVML
would report); the real-path tests beside them ask this machine.
"""

from __future__ import annotations

import pytest

from agentsim.errors import HardwareError
from agentsim.hardware import (
    Accelerator,
    detect,
    f16_matmul_problem,
    fp4_native_supported,
    fp8_native_supported,
    require_native_fp4,
    require_native_fp8,
)
from tests.unit.measure_fakes import FakeClock, FakeGPU, FakeNVML, install_fake_probe

H100 = Accelerator("cuda", "NVIDIA H100 80GB HBM3", (9, 0), "torch")
B200 = Accelerator("cuda", "NVIDIA B200", (10, 0), "torch")
RTX5090 = Accelerator("cuda", "NVIDIA GeForce RTX 5090", (12, 0), "nvml")
P100 = Accelerator("cuda", "Tesla P100", (6, 0), "torch")
MAXWELL = Accelerator("cuda", "GeForce GTX 980", (5, 2), "torch")
A100 = Accelerator("cuda", "NVIDIA A100-SXM4-40GB", (8, 0), "torch")
RTX4090 = Accelerator("cuda", "NVIDIA GeForce RTX 4090", (8, 9), "nvml")


@pytest.mark.parametrize(("cap", "ok"), [(None, False), ((8, 9), False), ((9, 0), False), ((10, 0), True), ((12, 1), True)])
def test_fp4_native_threshold(cap, ok):
    assert fp4_native_supported(cap) is ok


def test_hopper_is_refused_naming_the_gpu_and_the_requirement():
    with pytest.raises(HardwareError) as ei:
        require_native_fp4("nvfp4", accelerator=H100, model="smollm2")
    text = str(ei.value)
    assert "H100" in text and "compute capability 9.0" in text
    assert "compute capability >= 10.0" in text and "Blackwell" in text
    assert "hf:smollm2@nvfp4" in text and "emulated" in text


@pytest.mark.parametrize("acc", [B200, RTX5090])
def test_blackwell_is_accepted(acc):
    assert require_native_fp4("mxfp4", accelerator=acc) is acc


def test_native_only_for_fp4():
    with pytest.raises(HardwareError, match="only for mxfp4, nvfp4"):
        require_native_fp4("int4", accelerator=B200)


def test_this_machine():
    """Real path: whatever this machine is, the rule follows its compute capability."""
    acc = detect("auto")
    assert acc.kind in ("cpu", "cuda")
    if fp4_native_supported(acc.capability):
        assert require_native_fp4("nvfp4").kind == "cuda"
    else:
        with pytest.raises(HardwareError, match=r"compute capability >= 10\.0"):
            require_native_fp4("nvfp4")


@pytest.mark.parametrize(("cap", "ok"), [(None, False), ((8, 0), False), ((8, 6), False), ((8, 9), True),
                                         ((9, 0), True), ((10, 0), True)])
def test_fp8_native_threshold(cap, ok):
    assert fp8_native_supported(cap) is ok


def test_ampere_is_refused_for_native_fp8_naming_the_gpu_and_the_requirement():
    with pytest.raises(HardwareError) as ei:
        require_native_fp8("fp8", accelerator=A100, model="smollm2")
    text = str(ei.value)
    assert "native fp8 needs FP8 tensor cores" in text and "Ada, Hopper" in text
    assert "A100" in text and "compute capability 8.0" in text and "compute capability >= 8.9" in text
    assert "hf:smollm2@fp8" in text and "emulated" in text


@pytest.mark.parametrize("acc", [RTX4090, H100, B200])
def test_ada_hopper_and_blackwell_are_accepted_for_native_fp8(acc):
    assert require_native_fp8(accelerator=acc) is acc


def test_native_fp8_only_for_fp8():
    with pytest.raises(HardwareError, match="only for fp8"):
        require_native_fp8("nvfp4", accelerator=H100)


def test_native_rules_judge_the_gpu_the_probe_sees(monkeypatch):
    """Without ``accelerator=``, the rules ask the one probe: torch's GPU, else NVML's, else the CPU."""
    install_fake_probe(monkeypatch, FakeNVML([FakeGPU(name="NVIDIA A100-SXM4-40GB", cc=(8, 0))], FakeClock()))
    with pytest.raises(HardwareError, match=r"this machine has NVIDIA A100-SXM4-40GB \(compute capability 8\.0\)"):
        require_native_fp8()
    install_fake_probe(monkeypatch, FakeNVML([FakeGPU(name="NVIDIA L40S", cc=(8, 9))], FakeClock()))
    assert require_native_fp8().name == "NVIDIA L40S"
    with pytest.raises(HardwareError, match=r"L40S \(compute capability 8\.9\).*"):
        require_native_fp4("mxfp4")
    install_fake_probe(monkeypatch, FakeNVML([FakeGPU()], FakeClock()), torch_gpu=B200)
    assert require_native_fp4("nvfp4") is B200 and require_native_fp8() is B200
    install_fake_probe(monkeypatch, None)
    with pytest.raises(HardwareError, match="this machine has no CUDA GPU"):
        require_native_fp8()


def test_this_machine_fp8():
    """Real path: the FP8 rule follows this machine's compute capability."""
    acc = detect("auto")
    if fp8_native_supported(acc.capability):
        assert require_native_fp8().kind == "cuda"
    else:
        with pytest.raises(HardwareError, match=r"compute capability >= 8\.9"):
            require_native_fp8()


def test_f16_refused_below_sm53_and_allowed_above():
    assert "5.3" in (f16_matmul_problem(MAXWELL, probe=False) or "")
    assert f16_matmul_problem(P100, probe=False) is None


def test_f16_probe_on_this_cpu():
    """Real path: torch multiplies f16 matrices on this CPU (slowly, without native fp16)."""
    pytest.importorskip("torch")
    assert f16_matmul_problem(detect("cpu")) is None


def test_unknown_device():
    with pytest.raises(HardwareError, match="unknown device"):
        detect("tpu")
