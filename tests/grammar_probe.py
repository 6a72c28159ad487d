"""Feed grammars to the real llama.cpp, in a process of its own (``python -m tests.grammar_probe``).

Run by the grammar fuzz tests as a subprocess, so that a grammar that crashes llama.cpp (a
segmentation fault, an abort) ends this process and fails the test instead of killing pytest.

stdin: a JSON list of grammar texts; argv[1]: a GGUF path. For each grammar, in order, it prints
``start <i>`` (flushed, so the parent knows which grammar a crash came from), then asks llama.cpp's
own parser (``llama_sampler_init_grammar``) whether it takes the text, and when it does generates
up to 6 tokens under it through agentsim's ``llama`` backend; then ``done <i> <json>`` with
``{"parsed": bool, "text": str | None, "error": str | None}``.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    import llama_cpp

    from agentsim.backends.base import GenerationRequest, create_backend
    from agentsim.errors import AgentsimError

    grammars = json.load(sys.stdin)
    backend = create_backend(f"llama:{sys.argv[1]},n_threads=1,n_ctx=256")
    backend.load()
    vocab = llama_cpp.llama_model_get_vocab(backend._llm.model)  # noqa: SLF001 - the raw parser
    for i, text in enumerate(grammars):
        print(f"start {i}", flush=True)
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, text.encode("utf-8"), b"root")
        parsed = bool(sampler)
        if parsed:
            llama_cpp.llama_sampler_free(sampler)
        out: dict[str, object] = {"parsed": parsed, "text": None, "error": None}
        if parsed:
            try:
                c = backend.generate(GenerationRequest(prompt="the answer is", grammar=text, max_tokens=6))
                out["text"] = c.text
            except AgentsimError as exc:
                out["error"] = str(exc)
        print(f"done {i} {json.dumps(out)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
