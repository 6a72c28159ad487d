"""Energy meters' logic, driven through fakes at the hardware boundary (NVML, powercap sysfs)."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

import pynvml
import pytest

from agentsim import hardware
from agentsim.errors import AgentsimError, HardwareError
from agentsim.measure import (
    DEFAULT_WATTS_PER_CORE,
    WATTS_PER_CORE_ENV,
    CPUTimeEstimateMeter,
    MeterUnavailable,
    NVMLMeter,
    machine_info,
    make_meter,
)
from agentsim.measure.counter import _Extended

from .measure_fakes import (
    MAX_RANGE_UJ,
    FakeClock,
    FakeGPU,
    FakeNVML,
    install_fake_probe,
    make_powercap,
    nvml_error,
    set_energy,
)

# --------------------------------------------------------------------------------------------
# NVML: the energy counter


def nvml_meter(gpus, clock=None, **kw):
    clock = clock or FakeClock()
    fake = FakeNVML(gpus, clock)
    kw.setdefault("counter_period_s", 0.02)
    kw.setdefault("env", {})
    return make_meter("nvml", nvml_module=fake, clock=clock, **kw), fake, clock


def test_nvml_counter_sums_each_gpu_used():
    meter, fake, clock = nvml_meter([FakeGPU(watts=100), FakeGPU(watts=250, uuid="GPU-1")])
    tok = meter.begin()
    clock.advance(0.5)
    r = meter.end(tok)
    assert r.kind == "measured"
    assert r.source == "nvml:total_energy_counter"
    assert r.parts == pytest.approx({"gpu0": 50.0, "gpu1": 125.0})
    assert r.joules == pytest.approx(175.0)
    assert not r.below_resolution and r.note is None
    # one counter update (20 ms) at the observed power, per GPU
    assert r.resolution_j == pytest.approx(0.02 * 100 + 0.02 * 250)
    assert meter.describe()["gpus"] == [
        {"index": 0, "name": "NVIDIA H100 80GB HBM3", "method": "counter"},
        {"index": 1, "name": "NVIDIA H100 80GB HBM3", "method": "counter"},
    ]
    meter.close()
    assert fake.shutdowns == 1


def test_nvml_interval_shorter_than_update_period_is_flagged():
    meter, _, clock = nvml_meter([FakeGPU(watts=300)])
    tok = meter.begin()
    clock.advance(0.005)
    r = meter.end(tok)
    assert r.kind == "measured"
    assert r.below_resolution
    assert "below the 20 ms counter update period" in r.note
    assert r.resolution_j > 0


def test_a_short_hop_that_sees_a_whole_tick_is_flagged_not_dropped():
    # an H100-like counter: 700 W, one update every 100 ms; a 1 ms hop across an update
    meter, _, clock = nvml_meter([FakeGPU(watts=700, period_s=0.1)], FakeClock(0.0995), counter_period_s=0.1)
    tok = meter.begin()
    clock.advance(0.001)
    r = meter.end(tok)
    assert r.kind == "measured" and r.below_resolution
    assert r.joules == pytest.approx(70.0)  # one tick: noise for this hop, but the sum stays right
    assert r.resolution_j == pytest.approx(70.0)


def test_nvml_counter_wraps_around():
    # at t=1 s the 64-bit millijoule counter is 10 J short of wrapping; 100 W for one second
    meter, _, clock = nvml_meter([FakeGPU(watts=100, start_mj=2**64 - 110_000)])
    run_tok = meter.begin()
    tok = meter.begin()
    clock.advance(1.0)
    r = meter.end(tok)
    assert r.joules == pytest.approx(100.0)
    clock.advance(1.0)
    assert meter.end(run_tok).joules == pytest.approx(200.0)
    assert meter.gpus[0].counter.wraps == 1


def test_nvml_counter_reset_is_unavailable_not_a_huge_figure():
    gpu = FakeGPU(watts=100, start_mj=50_000_000)
    meter, _, clock = nvml_meter([gpu])
    run_tok = meter.begin()
    tok = meter.begin()
    clock.advance(1.0)
    gpu.offset_mj = -50_000_000  # the driver was reloaded: the counter restarts near 0
    r = meter.end(tok)
    assert r.kind == "unavailable" and r.joules is None
    assert r.source == "nvml:total_energy_counter"
    assert "went backwards" in r.note
    tok = meter.begin()
    clock.advance(1.0)
    assert meter.end(tok).joules == pytest.approx(100.0)  # measuring goes on after the reset
    assert meter.end(run_tok).kind == "unavailable"  # the run spans the reset


def test_nvml_read_failure_mid_run_is_unavailable():
    gpu = FakeGPU()
    meter, _, clock = nvml_meter([gpu])
    tok = meter.begin()
    clock.advance(0.5)
    gpu.energy_error = nvml_error(pynvml.NVMLError_GpuIsLost)
    r = meter.end(tok)
    assert r.kind == "unavailable" and r.joules is None and "read failed" in r.note


# --------------------------------------------------------------------------------------------
# NVML: GPUs without the counter


def test_gpu_without_counter_is_measured_by_power_sampling():
    clock = FakeClock()
    gpu = FakeGPU(watts=100, counter=False)
    # a long interval keeps the background thread from sampling: the test samples by hand
    meter, _, _ = nvml_meter([gpu], clock, sample_interval_s=3600)
    assert meter.describe()["gpus"][0]["method"] == "sampling"
    tok = meter.begin()
    clock.advance(1.0)
    gpu.watts = 300
    meter._sampler.sample()  # 1 s ramping 100 -> 300 W: trapezoid = 200 J
    clock.advance(0.5)  # then 0.5 s at the last sample's 300 W = 150 J
    r = meter.end(tok)
    assert r.kind == "measured"
    assert r.source == "nvml:power_sampling"
    assert r.joules == pytest.approx(350.0)
    assert r.below_resolution  # one sample inside the interval: mostly extrapolated
    tok = meter.begin()
    for _ in range(3):
        clock.advance(0.1)
        meter._sampler.sample()
    r = meter.end(tok)
    meter.close()
    assert r.joules == pytest.approx(90.0) and not r.below_resolution


def test_power_sampling_thread_integrates_in_the_background():
    meter, _, _ = nvml_meter([FakeGPU(watts=200, counter=False)], time.perf_counter, sample_interval_s=0.005)
    try:
        tok = meter.begin()
        time.sleep(0.15)
        r = meter.end(tok)
        assert meter._sampler.samples > 3
    finally:
        meter.close()
    assert r.joules == pytest.approx(200 * r.duration_s, rel=1e-6)
    assert meter._sampler is None  # stopped by close()


def test_failed_power_samples_make_the_interval_unavailable():
    clock = FakeClock()
    gpu = FakeGPU(watts=100, counter=False)
    meter, _, _ = nvml_meter([gpu], clock, sample_interval_s=3600)
    tok = meter.begin()
    gpu.power = False
    meter._sampler.sample()
    clock.advance(1.0)
    r = meter.end(tok)
    meter.close()
    assert r.kind == "unavailable" and "samples failed" in r.note


def test_counter_and_sampled_gpus_together():
    clock = FakeClock()
    meter, _, _ = nvml_meter([FakeGPU(watts=100), FakeGPU(watts=50, counter=False)], clock, sample_interval_s=3600)
    tok = meter.begin()
    clock.advance(2.0)
    r = meter.end(tok)
    meter.close()
    assert r.source == "nvml:total_energy_counter+nvml:power_sampling"
    assert r.parts == pytest.approx({"gpu0": 200.0, "gpu1": 100.0})


def test_gpu_with_neither_counter_nor_power_is_skipped():
    fake = FakeNVML([FakeGPU(counter=False, power=False)], FakeClock())
    with pytest.raises(MeterUnavailable, match="no GPU with an energy counter or power reading"):
        make_meter("nvml", nvml_module=fake, env={})
    assert fake.shutdowns == 1  # NVML is shut down again


# --------------------------------------------------------------------------------------------
# NVML: which GPUs, calibration, absence


def test_cuda_visible_devices_selects_the_gpus_measured():
    gpus = [FakeGPU(watts=10, uuid="GPU-aaa"), FakeGPU(watts=20, uuid="GPU-bbb"), FakeGPU(watts=30, uuid="GPU-ccc")]
    meter, _, _ = nvml_meter(gpus, env={"CUDA_VISIBLE_DEVICES": "2,GPU-bb"})
    assert [g.index for g in meter.gpus] == [2, 1]


def test_empty_cuda_visible_devices_means_no_gpu():
    with pytest.raises(MeterUnavailable):
        nvml_meter([FakeGPU()], env={"CUDA_VISIBLE_DEVICES": ""})


def test_counter_update_period_is_calibrated():
    fake = FakeNVML([FakeGPU(period_s=0.01)], time.perf_counter)
    meter = NVMLMeter(fake, env={})
    try:
        d = meter.describe()
        assert d["counter_period_origin"] == "calibrated"
        assert 0.005 <= d["counter_period_s"] <= 0.03
    finally:
        meter.close()
    meter = NVMLMeter(FakeNVML([FakeGPU()], FakeClock()), env={"AGENTSIM_NVML_PERIOD_S": "0.05"})
    assert meter.describe()["counter_period_s"] == 0.05
    assert meter.describe()["counter_period_origin"] == "env:AGENTSIM_NVML_PERIOD_S"


@pytest.mark.parametrize("err", [pynvml.NVMLError_LibraryNotFound, pynvml.NVMLError_DriverNotLoaded,
                                 pynvml.NVMLError_NoPermission])
def test_nvml_that_cannot_start_is_a_clear_error(err):
    fake = FakeNVML([], FakeClock(), init_error=nvml_error(err))
    with pytest.raises(MeterUnavailable) as info:
        make_meter("nvml", nvml_module=fake)
    assert isinstance(info.value, AgentsimError)
    assert "NVML cannot start" in str(info.value) and err.__name__ in str(info.value)


def test_auto_prefers_nvml_then_rapl_then_the_estimate(tmp_path):
    rapl = make_powercap(tmp_path / "pc", {"intel-rapl:0": ("package-0", 0)})
    meter = make_meter("auto", nvml_module=FakeNVML([FakeGPU()], FakeClock()), powercap_root=rapl,
                       counter_period_s=0.02, env={})
    assert meter.name == "nvml" and meter.describe()["not_used"] == {}
    meter.close()
    no_gpu = FakeNVML([], FakeClock(), init_error=nvml_error(pynvml.NVMLError_LibraryNotFound))
    meter = make_meter("auto", nvml_module=no_gpu, powercap_root=rapl)
    assert meter.name == "rapl" and "NVMLError_LibraryNotFound" in meter.describe()["not_used"]["nvml"]
    meter = make_meter("auto", nvml_module=no_gpu, powercap_root=tmp_path / "absent", env={})
    d = meter.describe()
    assert meter.name == "estimate" and d["kind"] == "estimated"
    assert set(d["not_used"]) == {"nvml", "rapl"}
    tok = meter.begin()
    assert meter.end(tok).kind == "estimated"


def test_machine_info_fingerprints_the_gpus():
    fake = FakeNVML([FakeGPU(), FakeGPU(name="Tesla V100-SXM2-16GB", counter=False, cc=(7, 0), uuid="GPU-v")],
                    FakeClock())
    info = machine_info(nvml_module=fake)
    assert info["gpu_driver"] == "550.54.15" and info["cuda_driver"] == "12.4"
    assert [(g["name"], g["compute_capability"], g["energy_counter"]) for g in info["gpus"]] == [
        ("NVIDIA H100 80GB HBM3", "9.0", True),
        ("Tesla V100-SXM2-16GB", "7.0", False),
    ]
    assert info["gpus"][0]["memory_bytes"] == 80 * 2**30
    assert fake.shutdowns == fake.inits == 1
    for key in ("python", "torch", "transformers", "llama-cpp-python"):
        assert key in info["versions"]
    assert info["cpu_count"] >= 1 and info["ram_bytes"] > 0


def test_machine_info_without_nvml_has_no_gpus_and_says_nothing_false():
    fake = FakeNVML([], FakeClock(), init_error=nvml_error(pynvml.NVMLError_DriverNotLoaded))
    info = machine_info(nvml_module=fake)
    assert info["gpu_driver"] is None and info["cuda_driver"] is None
    if "torch" not in sys.modules:  # an imported CUDA torch would report its GPUs instead
        assert info["gpus"] == []


# --------------------------------------------------------------------------------------------
# the one device probe (agentsim.hardware): NVML opened once per process


def test_detect_machine_info_and_the_fp8_rule_share_one_nvml_probe(monkeypatch):
    fake = FakeNVML([FakeGPU(), FakeGPU(name="NVIDIA A100-SXM4-40GB", cc=(8, 0), uuid="GPU-a")], FakeClock())
    install_fake_probe(monkeypatch, fake)
    acc = hardware.detect("auto", torch=False)
    assert (acc.kind, acc.name, acc.capability, acc.source) == ("cuda", "NVIDIA H100 80GB HBM3", (9, 0), "nvml")
    assert hardware.detect("cuda", index=1, torch=False).capability == (8, 0)
    assert [g["compute_capability"] for g in machine_info()["gpus"]] == ["9.0", "8.0"]
    assert hardware.require_native_fp8().name == "NVIDIA H100 80GB HBM3"
    assert fake.inits == fake.shutdowns == 1  # asked once, then cached
    hardware.reset()
    hardware.detect("auto", torch=False)
    assert fake.inits == 2


def test_detect_for_torch_follows_torch_and_names_the_gpu_a_cpu_torch_cannot_use(monkeypatch):
    install_fake_probe(monkeypatch, FakeNVML([FakeGPU()], FakeClock()))
    assert hardware.detect("auto").kind == "cpu"  # torch computes on the CPU
    with pytest.raises(HardwareError) as ei:
        hardware.detect("cuda")
    assert "NVML sees NVIDIA H100 80GB HBM3 (compute capability 9.0)" in str(ei.value)
    assert "no CUDA support" in str(ei.value)
    b200 = hardware.Accelerator("cuda", "NVIDIA B200", (10, 0), "torch")
    install_fake_probe(monkeypatch, FakeNVML([FakeGPU()], FakeClock()), torch_gpu=b200)
    assert hardware.detect("auto") == b200 == hardware.detect("cuda")
    assert hardware.detect("cpu").kind == "cpu"


@pytest.mark.parametrize("nvml", [None, FakeNVML([], FakeClock(), init_error=nvml_error(pynvml.NVMLError_LibraryNotFound))])
def test_no_nvml_means_the_cpu_and_a_clear_cuda_error(monkeypatch, nvml):
    install_fake_probe(monkeypatch, nvml)
    probe = hardware.probe_nvml()
    assert probe.gpus == () and probe.error
    assert ("not installed" in probe.error) if nvml is None else ("NVMLError_LibraryNotFound" in probe.error)
    assert hardware.detect("auto", torch=False).kind == "cpu"
    with pytest.raises(HardwareError, match="there is no CUDA GPU on this machine"):
        hardware.detect("cuda", torch=False)
    if nvml is None:
        with pytest.raises(MeterUnavailable, match="needs pynvml"):
            make_meter("nvml")


def test_a_gpu_nvml_cannot_open_is_recorded_not_detected(monkeypatch):
    class BrokenFirst(FakeNVML):
        def nvmlDeviceGetName(self, h):
            if h is self.gpus[0]:
                raise nvml_error(pynvml.NVMLError_GpuIsLost)
            return h.name

    install_fake_probe(monkeypatch, BrokenFirst([FakeGPU(), FakeGPU(name="NVIDIA L4", cc=(8, 9))], FakeClock()))
    assert [g.as_dict().get("error") is not None for g in hardware.probe_nvml().gpus] == [True, False]
    assert hardware.detect("auto", torch=False).kind == "cpu"  # GPU 0 is lost
    assert hardware.detect("auto", 1, torch=False).name == "NVIDIA L4"


def test_importing_measure_and_hardware_loads_neither_pynvml_nor_torch():
    code = ("import sys, agentsim.measure, agentsim.hardware\n"
            "print(sorted(m for m in ('pynvml', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------------------------
# RAPL


def rapl_tree(tmp_path):
    return make_powercap(tmp_path / "powercap", {
        "intel-rapl:0": ("package-0", 1_000_000),
        "intel-rapl:0:0": ("core", 0),  # part of the package: not added again
        "intel-rapl:0:1": ("dram", 2_000_000),
        "intel-rapl:1": ("package-1", 3_000_000),
        "intel-rapl:2": ("psys", 0),  # the platform: overlaps the packages
    })


def test_rapl_reads_package_and_dram_domains(tmp_path):
    root = rapl_tree(tmp_path)
    clock = FakeClock()
    meter = make_meter("rapl", powercap_root=root, clock=clock)
    assert meter.source == "rapl:package-0+package-0/dram+package-1"
    tok = meter.begin()
    set_energy(root, "intel-rapl:0", 6_000_000)
    set_energy(root, "intel-rapl:0:1", 3_000_000)
    set_energy(root, "intel-rapl:1", 7_000_000)
    clock.advance(0.1)
    r = meter.end(tok)
    assert r.kind == "measured"
    assert r.parts == pytest.approx({"package-0": 5.0, "package-0/dram": 1.0, "package-1": 4.0})
    assert r.joules == pytest.approx(10.0)
    assert not r.below_resolution
    assert "other processes" in meter.describe()["scope"]


def test_rapl_counter_wraps_at_max_energy_range(tmp_path):
    root = make_powercap(tmp_path / "pc", {"intel-rapl:0": ("package-0", MAX_RANGE_UJ - 1_000_000)})
    clock = FakeClock()
    meter = make_meter("rapl", powercap_root=root, clock=clock)
    run_tok = meter.begin()
    tok = meter.begin()
    set_energy(root, "intel-rapl:0", 500_000)
    clock.advance(1.0)
    assert meter.end(tok).joules == pytest.approx(1.5)
    # the run-level reading follows the counter through a second wrap, read hop by hop
    for value in (MAX_RANGE_UJ // 2, MAX_RANGE_UJ - 10, 90):
        clock.advance(600.0)
        tok = meter.begin()
        set_energy(root, "intel-rapl:0", value)
        meter.end(tok)
    total = meter.end(run_tok)
    assert total.joules == pytest.approx((1_000_000 + MAX_RANGE_UJ + 90) / 1e6)
    assert meter.domains[0].counter.wraps == 2


def test_rapl_short_interval_is_below_resolution(tmp_path):
    clock = FakeClock()
    meter = make_meter("rapl", powercap_root=rapl_tree(tmp_path), clock=clock)
    tok = meter.begin()
    clock.advance(0.0002)
    r = meter.end(tok)
    assert r.below_resolution and "below RAPL" in r.note and r.kind == "measured"


def test_rapl_read_failure_is_unavailable(tmp_path):
    root = rapl_tree(tmp_path)
    meter = make_meter("rapl", powercap_root=root)
    tok = meter.begin()
    (root / "intel-rapl:1" / "energy_uj").unlink()
    r = meter.end(tok)
    assert r.kind == "unavailable" and r.joules is None and "package-1" in r.note


def test_rapl_absent_or_unreadable_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(MeterUnavailable, match="does not exist"):
        make_meter("rapl", powercap_root=tmp_path / "nothing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MeterUnavailable, match="no package or dram zone"):
        make_meter("rapl", powercap_root=empty)
    root = rapl_tree(tmp_path)
    real_read = pathlib.Path.read_text

    def root_only(self, *a, **k):  # energy_uj is 0400 root:root since Linux 5.10
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self, *a, **k)

    monkeypatch.setattr(pathlib.Path, "read_text", root_only)
    with pytest.raises(MeterUnavailable, match="readable by root only"):
        make_meter("rapl", powercap_root=root)


# --------------------------------------------------------------------------------------------
# the estimate


def test_estimate_is_cpu_time_times_watts_and_says_so():
    cpu = FakeClock(10.0)
    meter = CPUTimeEstimateMeter(env={}, cpu_clock=cpu)
    tok = meter.begin()
    cpu.advance(2.5)
    r = meter.end(tok)
    assert r.kind == "estimated"
    assert r.source == "model:cpu_time*watts_per_core"
    assert r.joules == pytest.approx(2.5 * DEFAULT_WATTS_PER_CORE)
    d = meter.describe()
    assert d["watts_per_core"] == DEFAULT_WATTS_PER_CORE and d["watts_per_core_origin"].startswith("default")


def test_watts_per_core_override_and_its_origin():
    assert make_meter("estimate", env={WATTS_PER_CORE_ENV: "7.5"}).describe()["watts_per_core_origin"] == (
        f"env:{WATTS_PER_CORE_ENV}")
    m = make_meter("estimate,watts_per_core=12", env={WATTS_PER_CORE_ENV: "7.5"})
    assert (m.watts_per_core, m.origin) == (12.0, "argument")
    for bad in ("estimate,watts_per_core=lots", "estimate,watts_per_core=-1", "estimate,volts=3", "estimate,x"):
        with pytest.raises(AgentsimError):
            make_meter(bad, env={})
    with pytest.raises(AgentsimError, match="not a number"):
        make_meter("estimate", env={WATTS_PER_CORE_ENV: "ten"})


def test_estimate_follows_real_cpu_time():
    meter = make_meter("estimate", env={})
    tok = meter.begin()
    t_end = time.process_time() + 0.05
    while time.process_time() < t_end:
        pass
    r = meter.end(tok)
    assert r.joules >= 0.05 * DEFAULT_WATTS_PER_CORE * 0.99
    tok = meter.begin()
    time.sleep(0.05)  # sleeping costs (almost) no CPU time
    assert meter.end(tok).joules < 0.01 * DEFAULT_WATTS_PER_CORE


def test_off_and_unknown_meters():
    r = make_meter("off").end(None)
    assert r.kind == "unavailable" and r.joules is None and r.source is None
    with pytest.raises(AgentsimError, match="unknown energy meter"):
        make_meter("joulemeter")


def test_extended_counter_tells_a_wrap_from_a_reset():
    c = _Extended(raw=90, modulus=100, now=0.0, max_rate=50.0, slack=0.0)
    assert c.update(10, now=1.0) == (20, 0)  # 90 -> 100 == 0 -> 10: a wrap of 20 in 1 s
    assert c.update(5, now=1.1) == (20, 1)  # a 95-unit step in 0.1 s at <= 50/s: a reset
    assert c.update(25, now=2.0) == (40, 1)
