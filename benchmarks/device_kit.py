"""Build the device kit: the wheels a bare GPU machine's Python lacks, and the lab models.

The GPU machines this project reaches have CPython 3.12 (x86_64) with torch (CUDA), transformers,
numpy, networkx, pyyaml, jinja2, rich, nvidia-ml-py and scipy, and nothing can be downloaded
there. ``benchmarks/device_check.py`` installs the rest from this kit (``pip install --no-index
--find-links``). The kit holds, for the target Python:

* the wheels of :data:`KIT_PACKAGES` at the versions installed here (what the tests ran with),
  fetched with ``pip download --only-binary=:all: --python-version X.Y --platform manylinux...``
  (pure-Python wheels and manylinux x86_64 wheels; no source distribution, nothing to compile);
* setuptools and wheel, so that pip builds agentsim itself from the carried repository there;
* ``models/``: the lab models' F32 GGUFs that are not package data (lab-4m, and lab-16m when it
  fits), copied from this machine's model cache where they were built (``agentsim models train``).

    python benchmarks/device_kit.py                        # build/device-kit (CPython 3.12)
    python benchmarks/device_kit.py --python-version 3.11 --dest /tmp/kit311   # this machine's Python

It prints the kit's size; the kit and the lab models together must stay well under 64 MiB
(everything a device run carries). ``make device-kit`` runs the first form.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: what agentsim needs on the check's path that the device Python lacks (distribution names)
KIT_PACKAGES = (
    "pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions",
    "SQLAlchemy", "greenlet", "sqlmodel", "alembic", "Mako", "gguf", "tqdm", "platformdirs", "psutil",
    "regex", "accelerate",  # transformers' GGUF loader refuses to run without accelerate
)
#: what pip needs to build agentsim from the carried repository (its build-system.requires)
BUILD_PACKAGES = ("setuptools", "wheel", "packaging")
#: manylinux tags the device's glibc runs (manylinux2014 = glibc 2.17; 2.28 for newer wheels)
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "linux_x86_64")
#: the lab models carried beside the wheels (lab-1m is package data already)
CARRIED_LAB_MODELS = ("lab-4m",)
LIMIT_BYTES = 64 * 1024 * 1024


def pinned(names: tuple[str, ...]) -> list[str]:
    """``name==version`` at the versions installed here (a package not installed: unpinned)."""
    out = []
    for n in names:
        try:
            out.append(f"{n}=={metadata.version(n)}")
        except metadata.PackageNotFoundError:
            out.append(n)
    return out


def download(reqs: list[str], dest: Path, python_version: str) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(dest),
           "--python-version", python_version, "--implementation", "cp", "--disable-pip-version-check",
           "--progress-bar", "off"]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    proc = subprocess.run(cmd + reqs, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise SystemExit(f"device-kit: pip download failed:\n{tail}")


def copy_lab_models(dest: Path) -> list[dict[str, object]]:
    sys.path.insert(0, str(ROOT))
    from agentsim.hashing import sha256_file
    from agentsim.models.cache import model_dir
    from agentsim.models.catalog import CATALOG

    out = []
    dest.mkdir(parents=True, exist_ok=True)
    for name in CARRIED_LAB_MODELS:
        src = model_dir(name) / "source.gguf"
        cm = CATALOG[name]
        if not src.is_file() or sha256_file(src) != cm.sha256:
            print(f"device-kit: {name} is not built here (agentsim models train {name}); not carried", flush=True)
            continue
        shutil.copyfile(src, dest / f"{name}.gguf")
        out.append({"name": name, "bytes": src.stat().st_size, "sha256": cm.sha256})
    return out


def build(dest: Path, python_version: str, *, models: bool = True) -> dict[str, object]:
    wheels = dest / "wheels"
    if dest.exists():
        shutil.rmtree(dest)
    wheels.mkdir(parents=True)
    download(pinned(KIT_PACKAGES) + pinned(BUILD_PACKAGES), wheels, python_version)
    lab = copy_lab_models(dest / "models") if models else []
    files = sorted(p for p in dest.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    shipped = ROOT / "agentsim" / "lab" / "weights"
    package_models = sum(p.stat().st_size for p in shipped.glob("*.gguf")) if shipped.is_dir() else 0
    manifest = {"python_version": python_version, "platforms": list(PLATFORMS),
                "wheels": sorted(p.name for p in wheels.glob("*.whl")), "lab_models": lab,
                "kit_bytes": total, "package_lab_model_bytes": package_models}
    (dest / "kit.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=ROOT / "build" / "device-kit")
    ap.add_argument("--python-version", default="3.12", help="the target CPython (default 3.12, the device's)")
    ap.add_argument("--no-models", action="store_true", help="wheels only")
    args = ap.parse_args(argv)
    m = build(args.dest, args.python_version, models=not args.no_models)
    total = int(m["kit_bytes"]) + int(m["package_lab_model_bytes"])  # type: ignore[arg-type]
    print(f"device kit: {args.dest} for CPython {args.python_version}: {len(m['wheels'])} wheels, "  # type: ignore[arg-type]
          f"{len(m['lab_models'])} carried lab model(s); {int(m['kit_bytes']) / 2**20:.1f} MiB, "  # type: ignore[arg-type]
          f"+ {int(m['package_lab_model_bytes']) / 2**20:.1f} MiB of lab models in the package = "  # type: ignore[arg-type]
          f"{total / 2**20:.1f} MiB (limit of a device run: 64 MiB with the repository)")
    if total > LIMIT_BYTES * 0.75:
        print("device kit: over 48 MiB -- too close to the 64 MiB a device run carries", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
