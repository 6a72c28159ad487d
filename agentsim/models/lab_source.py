"""The lab models' sources: shipped as package data, or trained here, pinned by sha256 either way.

A lab model (:mod:`agentsim.lab`) is a catalog entry with ``lab=True`` and no PyPI parts. Its
source GGUF (F32) comes from the package (``agentsim/lab/weights/<name>.gguf``, for the files
under 5 MB) or is trained on this CPU in minutes (:func:`agentsim.lab.train.train`, deterministic
on one thread). Either way the file must match the catalog's sha256 and size before it is used:
a retrained file that differs (another CPU can round a matmul differently) is kept beside the
cache as ``trained-<sha>.gguf`` and refused, with the command that adds it under another name.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from agentsim.errors import ModelError

from .catalog import CatalogModel
from .made_source import cached_source, install_made_source

__all__ = ["shipped_file", "fetch_lab", "LAB_MODELS_ENV"]

#: a folder of prebuilt lab model files (``<name>.gguf``), looked in before training: what a
#: machine that cannot train (the device check's GPUs) is given, e.g. the device kit's ``models/``
LAB_MODELS_ENV = "AGENTSIM_LAB_MODELS"

#: (step, steps, loss) while training
Progress = Callable[[int, int, float], None]


def shipped_file(name: str) -> Path | None:
    """The package's copy of a lab model's GGUF (else one in ``$AGENTSIM_LAB_MODELS``), None when
    there is none (it is rebuilt on first use)."""
    p = Path(str(resources.files("agentsim.lab").joinpath("weights").joinpath(f"{name}.gguf")))
    if p.is_file():
        return p
    folder = os.environ.get(LAB_MODELS_ENV)
    q = Path(folder) / f"{name}.gguf" if folder else None
    return q if q is not None and q.is_file() else None


def fetch_lab(cm: CatalogModel, *, force: bool = False, train: bool = False, log: Callable[[str], None] | None = None,
              progress: Progress | None = None) -> Path:
    """``source.gguf`` of lab model ``cm`` in the cache: verified as it is, copied from the package,
    or (``train``, or not shipped) trained here; it must match the catalog's sha256 and size."""
    say = log or (lambda _m: None)
    target, manifest, hit = cached_source(cm, reuse=not force and not train)
    if hit:
        say(f"{cm.name}: already in the cache ({target})")
        return target
    mdir = target.parent
    mdir.mkdir(parents=True, exist_ok=True)
    partial = mdir / "source.gguf.partial"
    partial.unlink(missing_ok=True)
    shipped = shipped_file(cm.name)
    t0 = time.perf_counter()
    origin: dict[str, Any]
    if shipped is not None and not train:
        say(f"{cm.name}: copying the prebuilt F32 file {shipped}")
        shutil.copyfile(shipped, partial)
        packaged = "agentsim" in shipped.parts and "weights" in shipped.parts
        origin = {"kind": "lab", "how": "shipped package data" if packaged else f"prebuilt file (${LAB_MODELS_ENV})",
                  "path": str(shipped)}
    else:
        origin = _train_into(cm, partial, say, progress)
    return install_made_source(cm, partial, manifest, origin=origin, started=t0, kept_prefix="trained",
                               why_other="another CPU rounds some float sums differently", say=say)


def _train_into(cm: CatalogModel, dest: Path, say: Callable[[str], None], progress: Progress | None) -> dict[str, Any]:
    try:
        from agentsim.lab.config import lab_config
        from agentsim.lab.export import write_gguf
        from agentsim.lab.train import train
    except ImportError as exc:  # pragma: no cover - torch missing
        raise ModelError(f"training {cm.name} needs torch: {exc}", hint="pip install 'agentsim[hf]'") from None
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ModelError(f"training {cm.name} needs torch", hint="pip install 'agentsim[hf]'") from None
    cfg = lab_config(cm.name)
    say(f"{cm.name}: training at F32 on this CPU ({cfg.steps} steps of {cfg.batch} problems, one thread)")
    result = train(cfg, progress=progress)
    write_gguf(result.model, cfg, dest, description=cm.description)
    say(f"{cm.name}: trained in {result.seconds:.0f} s, final loss {result.final_loss:.3f}, held-out exact match "
        f"{result.heldout_accuracy:.1%} of {result.heldout_n} (torch, greedy)")
    return {"kind": "lab", "how": "trained here", "train_seconds": round(result.seconds, 1),
            "final_loss": round(result.final_loss, 4), "heldout_accuracy": result.heldout_accuracy,
            "heldout_n": result.heldout_n, "config": cfg.as_dict()}
