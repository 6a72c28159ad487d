"""What a run needs from the node it lands on: its resources, and its model file prepared once
per node and verified by sha256 before the backend loads it. No Ray here (testable without it)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentsim.errors import ModelError

from . import ExecutorSpec

__all__ = ["task_resources", "prepare_on_node", "expected_model_sha256"]


def task_resources(backend: Any, executor: ExecutorSpec, cluster_gpus: float = 0.0) -> dict[str, float]:
    """Ray's ``num_cpus``/``num_gpus`` for one run of ``backend`` (a created, unloaded backend).

    A llama run offloading to a GPU (``n_gpu_layers`` not 0) asks for one where the cluster has
    any, and one CPU; on CPU it asks for its threads (``n_threads``, default half this machine's
    cores, as the backend itself takes). An hf run on ``device=cuda`` (or ``auto`` on a cluster
    with GPUs) asks for a GPU. Simulation and server backends ask for one CPU. The executor's
    ``num_cpus``/``num_gpus`` override the estimate for every task.
    """
    name = backend.spec.name
    opts = dict(getattr(backend, "options", {}) or {})
    cpus, gpus = 1.0, 0.0
    if name == "llama":
        offload = int(opts.get("n_gpu_layers", -1)) != 0
        if offload and cluster_gpus > 0:
            gpus = 1.0
        else:
            from agentsim.backends.llama_cpp import _default_threads

            cpus = float(int(opts.get("n_threads", 0) or 0) or _default_threads())
    elif name == "hf":
        device = str(opts.get("device", "auto"))
        if device == "cuda" or (device == "auto" and cluster_gpus > 0):
            gpus = 1.0
    if executor.num_cpus is not None:
        cpus = float(executor.num_cpus)
    if executor.num_gpus is not None:
        gpus = float(executor.num_gpus)
    return {"num_cpus": cpus, "num_gpus": gpus}


def _is_path(model: str) -> bool:
    return model.endswith(".gguf") or os.sep in model or model.startswith(".")


def expected_model_sha256(backend: Any) -> str | None:
    """The sha256 of the file a llama spec resolves to on *this* machine, when it is here (the
    workers' files must match it, so one launch never mixes two models); None otherwise."""
    spec = backend.spec
    if spec.name != "llama":
        return None
    from agentsim import models

    try:
        return models.resolve(spec.model, spec.precision).sha256
    except ModelError:
        return None


@contextlib.contextmanager
def _node_lock(name: str) -> Iterator[None]:
    """One preparer per model per node: tasks landing together wait for the first."""
    import fcntl

    from agentsim.models import models_dir

    folder = Path(models_dir())
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{name}.prepare.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def prepare_on_node(backend: Any, expected_sha256: str | None = None, log: Any = None) -> Any:
    """Make sure this node has the model file ``backend`` (a llama spec) loads: resolved from
    the node's ``$AGENTSIM_HOME`` cache, or fetched and prepared there once (concurrent tasks on
    the node wait for the first), then verified (size and sha256 against the node's manifest,
    and against ``expected_sha256`` from the driver when given). Returns the
    :class:`~agentsim.models.ResolvedModel`, or None for a backend without a model file."""
    spec = backend.spec
    if spec.name != "llama":
        return None
    from agentsim import models

    try:
        resolved = models.resolve(spec.model, spec.precision)
    except ModelError:
        if spec.model and _is_path(spec.model):
            raise ModelError(f"{spec.model} does not exist on node {os.uname().nodename}",
                             hint="a model given by path must be at that path on every node "
                                  "(a shared folder), or use a catalog name so each node prepares it") from None
        name = (spec.model or models.DEFAULT_MODEL).lower()
        precision = (spec.precision or "f16").lower()
        with _node_lock(name):
            try:  # another task on this node may have prepared it while we waited
                resolved = models.resolve(spec.model, spec.precision)
            except ModelError:
                if precision == "source":
                    models.fetch(name, log=log)
                else:
                    models.prepare(name, [precision], log=log)
                resolved = models.resolve(spec.model, spec.precision)
    if expected_sha256 and resolved.sha256 != expected_sha256:
        raise ModelError(
            f"node {os.uname().nodename}: {spec} resolves to {resolved.path} with sha256 "
            f"{resolved.sha256[:12]}…, not the driver's {expected_sha256[:12]}…; a report would mix two models",
            hint="share one model cache between the nodes ($AGENTSIM_HOME on a shared folder), "
                 "or rebuild the rung on that node: agentsim models prepare --force",
        )
    return resolved
