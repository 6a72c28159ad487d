"""Precision backends (installed as ``agentsim.backends``).

Nothing heavy is imported here: ``llama`` and ``hf`` import llama_cpp / torch when selected.
"""

from .base import (
    Backend,
    BackendInfo,
    BackendSpec,
    Completion,
    GenerationRequest,
    OptionSpec,
    available_backends,
    create_backend,
    parse_spec,
    register_backend,
)

__all__ = [
    "Backend",
    "BackendInfo",
    "BackendSpec",
    "Completion",
    "GenerationRequest",
    "OptionSpec",
    "available_backends",
    "create_backend",
    "parse_spec",
    "register_backend",
]
