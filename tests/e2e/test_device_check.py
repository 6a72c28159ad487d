"""benchmarks/device_check.py end to end on the CPU, in a fresh virtual environment that holds
only the device Python's packages (torch, transformers, numpy, networkx, pyyaml, jinja2, rich,
nvidia-ml-py, scipy and what they depend on), with a wheelhouse built by benchmarks/device_kit.py
for this machine's Python (3.11; the device's is 3.12, same package list): what the first GPU run
needs, short of the GPU."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEVICE_PACKAGES = ("torch", "transformers", "numpy", "networkx", "PyYAML", "Jinja2", "rich", "nvidia-ml-py", "scipy")
NOT_ON_DEVICE = ("pydantic", "sqlalchemy", "sqlmodel", "alembic", "gguf", "accelerate", "agentsim")

pytestmark = [pytest.mark.hf, pytest.mark.timeout(900)]


def _closure(names: tuple[str, ...]) -> set[str]:
    """The distributions ``names`` need (their requirements without extras, recursively)."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen or key in NOT_ON_DEVICE:  # the device lacks these whatever needs them (typer: pydantic)
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(key)
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def _device_venv(tmp: Path) -> Path:
    """A fresh venv whose only third-party packages are the device's (linked from this venv)."""
    env_dir = tmp / "device-venv"
    venv.EnvBuilder(with_pip=True, symlinks=True).create(env_dir)
    links = tmp / "device-site"
    links.mkdir()
    for key in sorted(_closure(DEVICE_PACKAGES)):
        dist = metadata.distribution(key)
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        base = Path(str(dist.locate_file("")))
        for top in tops:
            src = base / top
            if src.exists() and not (links / top).exists() and not top.endswith(".pth") and top != "__pycache__":
                (links / top).symlink_to(src)
    site = next((env_dir / "lib").glob("python3*/site-packages"))
    (site / "device-packages.pth").write_text(str(links) + "\n")
    return env_dir / "bin" / "python"


@pytest.fixture(scope="module")
def device_python(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("device")
    kit = tmp / "kit"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "device_kit.py"), "--python-version",
                           f"{sys.version_info.major}.{sys.version_info.minor}", "--dest", str(kit), "--no-models"],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and "pip download failed" in proc.stdout + proc.stderr:
        pytest.skip("no package index reachable to build the kit: " + (proc.stdout + proc.stderr)[-300:])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\d+ wheels, .* MiB", proc.stdout)
    return _device_venv(tmp), kit


def test_the_venv_lacks_what_the_kit_brings(device_python):
    py, _ = device_python
    code = "import importlib.util as u; print([m for m in %r if u.find_spec(m)])" % (NOT_ON_DEVICE,)
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd="/", timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    out = subprocess.run([str(py), "-c", "import torch, transformers, numpy, scipy, pynvml, rich; print('ok')"],
                         capture_output=True, text=True, cwd="/", timeout=300)
    assert out.stdout.strip() == "ok", out.stderr


def test_no_gpu_is_refused_clearly(device_python, tmp_path):
    py, kit = device_python
    proc = subprocess.run([str(py), str(ROOT / "benchmarks" / "device_check.py"), "--out", str(tmp_path / "o"),
                           "--kit", str(kit)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refused: no CUDA GPU" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["device_check.log"]


def test_cpu_tiny_run_end_to_end(device_python, tmp_path):
    py, kit = device_python
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTSIM_HOME", "AGENTSIM_DB", "PYTHONPATH")}
    proc = subprocess.run([str(py), str(ROOT / "benchmarks" / "device_check.py"), "--out", str(out), "--device", "cpu",
                           "--tiny", "--kit", str(kit)], capture_output=True, text=True, timeout=840, env=env)
    log = (out / "device_check.log").read_text() if (out / "device_check.log").exists() else ""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + log[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and {"device_check.db", "device_check.json", "device_check.log", "report.html",
                                "report.json"} <= set(files), files
    res = json.loads((out / "device_check.json").read_text())
    precisions = {r["precision"] for r in res["lab_runs"]}
    assert precisions == {"bf16", "fp8", "int8", "int4", "nvfp4"}, precisions
    assert {r["batch"] for r in res["lab_runs"]} == {1, 8}
    assert all(r["model"] == "lab-1m" and r["instances"] == 8 for r in res["lab_runs"])
    assert res["native_fp4"]["refused"] and "FP4" in res["native_fp4"]["message"]
    assert res["lab_ratios"] and all("j_per_correct_task_x_bf16" in r for r in res["lab_ratios"])
    twins = res["twins"]
    assert twins and all(t["label"] == "cost twin (random weights of the same shapes)" for t in twins)
    assert {t["precision"] for t in twins} == {"bf16", "fp8", "int8", "int4", "nvfp4"}
    assert any("native fp8" in t["how"] for t in twins)
    assert all("torch's int4 kernel" in t["how"] for t in twins if t["precision"] == "int4")
    # every shape is built, the 7B's included (1 layer and a cut vocabulary: its code path, not its cost)
    assert {t["twin"] for t in twins} == {"qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-7b"}
    assert all(t["layers"] == 1 for t in twins)
    assert res["twin_ratios"] and res["energy_meter"]
    assert "agentsim report" not in proc.stderr
