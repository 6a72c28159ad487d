"""Backend tests use the root conftest's fixtures: ``home`` (mark a module ``shared_home`` to share
one model cache between its tests) and the tiny self-written GGUF (``tiny_gguf``,
``tiny_gguf_f16``, ``tiny_gguf_dir``)."""
