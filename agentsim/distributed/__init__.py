"""Executors: where the runs of a launch execute.

``in-process`` (the default) runs them one after the other in this process, each backend
loaded once. ``ray`` spreads the runs of the sweep over a pool of long-lived Ray worker actors,
one per worker slot of each resource shape (a GPU backend's workers ask for a GPU, a CPU llama
run's for its threads), which pull runs from the driver and keep their backend loaded from one
run to the next, on a local Ray or a cluster:

``ray``                                   a local Ray started for the launch (or the one already
                                          initialised in this process)
``ray,address=auto``                      the cluster this machine belongs to (``ray start``)
``ray,address=ray://head:10001``          a remote cluster through Ray Client
``ray,num_gpus=1,num_cpus=4``             what every task asks for (instead of the estimate)
``ray,max_retries=3``                     how often a run whose worker died is resumed (Ray
                                          restarts the worker actor)
``ray,store=driver|direct``               who commits the hops: an actor beside the driver (the
                                          default for SQLite) or each worker (the default for a
                                          server database such as PostgreSQL)
``ray,keep_s=10``                         how long the driver keeps an idle worker pool for its
                                          next launch (0: release it when the launch ends)

Every hop is committed as it finishes, as in-process; a run whose worker dies is resumed by the
restarted worker from the hops already stored (the store's unique key on run, instance and hop
forbids duplicates). See docs/distributed.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentsim.errors import AgentsimError

__all__ = ["ExecutorSpec", "parse_executor", "EXECUTORS", "DEFAULT_EXECUTOR"]

EXECUTORS = ("in-process", "ray")
DEFAULT_EXECUTOR = "in-process"
_STORE_MODES = ("driver", "direct")


@dataclass(frozen=True)
class ExecutorSpec:
    """A parsed ``--executor`` value."""

    name: str = DEFAULT_EXECUTOR
    address: str | None = None
    num_cpus: float | None = None
    num_gpus: float | None = None
    max_retries: int = 3
    store: str | None = None  # None: driver for SQLite, direct for a server database
    keep_s: float = 10.0  # an idle worker pool is kept this long for the driver's next launch

    @property
    def in_process(self) -> bool:
        return self.name == "in-process"

    def __str__(self) -> str:
        parts = [self.name]
        for key in ("address", "num_cpus", "num_gpus", "store"):
            v = getattr(self, key)
            if v is not None:
                parts.append(f"{key}={v}")
        if self.max_retries != 3:
            parts.append(f"max_retries={self.max_retries}")
        if self.keep_s != 10.0:
            parts.append(f"keep_s={self.keep_s:g}")
        return ",".join(parts)


def _number(key: str, raw: str, text: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        v = -1.0
    if v < 0:
        raise AgentsimError(f"--executor {text!r}: {key}={raw!r} must be a number >= 0",
                            hint="e.g. --executor ray,num_gpus=1,num_cpus=4")
    return v


def parse_executor(value: str | ExecutorSpec | None) -> ExecutorSpec:
    """``"ray,address=auto,num_gpus=1"`` -> :class:`ExecutorSpec`; None or ``"in-process"``
    -> the default. A bad value is an :class:`AgentsimError` naming what is wrong."""
    if value is None:
        return ExecutorSpec()
    if isinstance(value, ExecutorSpec):
        return value
    text = str(value).strip()
    head, *opts = [p.strip() for p in text.split(",")]
    name = head.lower()
    if name in ("local", "inprocess", "in_process"):
        name = "in-process"
    if name not in EXECUTORS:
        raise AgentsimError(f"unknown executor {head!r}",
                            hint="--executor in-process (the default) or "
                                 "ray[,address=auto|ray://host:port][,num_gpus=N][,num_cpus=N]")
    if name == "in-process" and opts:
        raise AgentsimError(f"--executor {text!r}: in-process takes no options")
    fields: dict[str, object] = {}
    for opt in opts:
        key, eq, raw = opt.partition("=")
        key, raw = key.strip(), raw.strip()
        if not eq or not raw:
            raise AgentsimError(f"--executor {text!r}: option {opt!r} is not key=value",
                                hint="e.g. --executor ray,address=auto")
        if key in fields:
            raise AgentsimError(f"--executor {text!r}: {key} given twice")
        if key == "address":
            fields[key] = raw
        elif key in ("num_cpus", "num_gpus", "keep_s"):
            fields[key] = _number(key, raw, text)
        elif key == "max_retries":
            if not raw.isdigit():
                raise AgentsimError(f"--executor {text!r}: max_retries={raw!r} must be a whole number >= 0")
            fields[key] = int(raw)
        elif key == "store":
            if raw not in _STORE_MODES:
                raise AgentsimError(f"--executor {text!r}: store={raw!r}",
                                    hint="store=driver (an actor beside the driver commits every hop) "
                                         "or store=direct (each worker writes to the database itself)")
            fields[key] = raw
        else:
            raise AgentsimError(f"--executor {text!r}: unknown option {key!r}",
                                hint="ray options: address, num_cpus, num_gpus, max_retries, store, keep_s")
    return ExecutorSpec(name=name, **fields)  # type: ignore[arg-type]
