"""agentsim: what does lowering numeric precision do to a multi-step LLM agent workflow?

The public API is exported lazily (PEP 562), so ``import agentsim`` stays light: it never imports
torch, llama_cpp, transformers or textual.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "simulate": "agentsim.api",
    "load_results": "agentsim.api",
    "Results": "agentsim.api",
    "Scenario": "agentsim.scenario",
    "load_scenario": "agentsim.scenario",
    "resolve_scenario": "agentsim.scenario",
    "scenario_from_dict": "agentsim.scenario",
    "Store": "agentsim.store",
    "AgentsimError": "agentsim.errors",
    "ScenarioError": "agentsim.errors",
    "BackendError": "agentsim.errors",
    "generator": "agentsim.scenario",
    "Generated": "agentsim.scenario",
    "tool": "agentsim.tools",
    "create_backend": "agentsim.backends.base",
    "summarize_run": "agentsim.analysis",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentsim' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
