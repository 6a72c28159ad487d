"""What a run needs from the node it lands on: its resources, and what its backend prepares
there (a model file, verified by sha256) before it loads. The backends declare both
(:meth:`~agentsim.backends.base.Backend.resources`, :meth:`~agentsim.backends.base.Backend.model_identity`,
:meth:`~agentsim.backends.base.Backend.prepare_node`); this module applies the executor's
overrides and never names a backend. No Ray here (testable without it)."""

from __future__ import annotations

from typing import Any

from . import ExecutorSpec

__all__ = ["task_resources", "prepare_on_node", "expected_model_sha256"]


def task_resources(backend: Any, executor: ExecutorSpec, cluster_gpus: float = 0.0) -> dict[str, float]:
    """Ray's ``num_cpus``/``num_gpus`` for one run of ``backend`` (a created, unloaded backend):
    what the backend asks for, with the executor's ``num_cpus``/``num_gpus`` overriding it for
    every task."""
    asked = backend.resources(cluster_gpus)
    cpus, gpus = float(asked.get("num_cpus", 1.0)), float(asked.get("num_gpus", 0.0))
    if executor.num_cpus is not None:
        cpus = float(executor.num_cpus)
    if executor.num_gpus is not None:
        gpus = float(executor.num_gpus)
    return {"num_cpus": cpus, "num_gpus": gpus}


def expected_model_sha256(backend: Any) -> str | None:
    """The driver's identity of the model ``backend`` loads (the workers' files must match it,
    so one launch never mixes two models); None when it has none here."""
    return backend.model_identity()  # type: ignore[no-any-return]


def prepare_on_node(backend: Any, expected_sha256: str | None = None, log: Any = None) -> Any:
    """What ``backend`` needs prepared on this node before it loads, checked against the
    driver's ``expected_sha256``; None for a backend that needs nothing."""
    return backend.prepare_node(expected_sha256, log=log)
