"""Several sequences decoded together in one llama.cpp context (the ``llama`` backend's batch path).

One request is one sequence id, and every sequence has its own KV stream (``kv_unified`` off).
The prompts' shared prefix (chat template, system prompt, world facts) is evaluated once on
sequence 0 and copied into the other streams by ``llama_memory_seq_cp`` (a copy of cells, not a
recomputation). Own streams cost a copy of the prefix but keep each sequence's cache laid out
exactly as it is at batch 1: with one unified cache the sequences' cells interleave, attention
sums over a different cell layout, and on q4_0 one 48-token answer in eight diverged from batch 1
in its last tokens (measured here; with own streams all eight agree, at the same speed). Then
every sequence's own suffix goes into one ``llama_decode`` (chunked at
``n_batch`` tokens), and every decode step sends one token per live sequence as one batch: the
weights are read once per step for all of them, which is what makes decode (memory-bound at one
sequence) cheaper per token.

Each sequence has its own sampler chain -- its grammar (if any), then greedy, the same chain the
batch-1 path builds through ``Llama.generate(temp=0)`` -- and its own stop sequences and token
budget. The figures returned are the batch's: prefill (prefix + suffixes) and decode wall times,
measured here around the ``llama_decode`` calls; :func:`attribute` turns them into each hop's
share by tokens.

This module reaches into llama-cpp-python's low-level parts (``_internals``: the model, context,
batch and sampler wrappers) in this one place; tests/backends/test_llama_batch.py pins it to the
installed version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agentsim.backends.base import first_stop

__all__ = ["BatchDecoder", "SequenceResult", "logits_row", "shared_prefix"]

#: KV cells (per sequence) are allocated in multiples of this (a context is rebuilt only when it
#: must grow)
_CELL_QUANTUM = 256


@dataclass
class SequenceResult:
    """What one sequence of a batch produced."""

    token_ids: list[int]
    text: str
    finish_reason: str
    prompt_tokens: int
    evaluated: int  # prompt tokens this sequence evaluated itself (its suffix; the prefix on seq 0)
    shared_prefix: int  # prompt tokens shared with the batch (evaluated once, on sequence 0)
    ttft_s: float | None
    #: with ``keep_logits``: the float32 logits each of ``token_ids`` was sampled from
    logits: list[Any] | None = None


@dataclass
class BatchFigures:
    """The batch call's own measurements (seconds), before attribution."""

    prefill_s: float
    decode_s: float
    prefix_tokens: int
    decode_steps: int
    results: list[SequenceResult] = field(default_factory=list)


def shared_prefix(token_lists: list[list[int]]) -> int:
    """Tokens every list starts with, leaving at least one token of each list to evaluate (its
    last token's logits start the answer)."""
    if not token_lists:
        return 0
    first = token_lists[0]
    n = min(len(t) for t in token_lists) - 1
    i = 0
    while i < n and all(t[i] == first[i] for t in token_lists):
        i += 1
    return max(i, 0)


class BatchDecoder:
    """A second llama.cpp context on the backend's loaded model, for up to ``n_seq`` sequences.

    ``llm`` is the backend's ``llama_cpp.Llama`` (its model, tokenizer and context parameters are
    reused; its own context and prefix cache are left untouched).
    """

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self._ctx: Any = None
        self._batch: Any = None
        self._cells = 0  # KV cells per sequence (each sequence has its own stream)
        self._n_seq = 0
        self._batch_tokens = 0
        self._cached: list[int] = []  # the shared prefix held in the cache (on sequence 0)
        self._seqs_used = 0

    def close(self) -> None:
        if self._batch is not None:
            self._batch.close()
            self._batch = None
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None
        self._cells = self._n_seq = 0
        self._cached, self._seqs_used = [], 0

    # ---------------------------------------------------------------------------------------

    def _context(self, n_seq: int, cells: int) -> Any:
        """A context of ``n_seq`` streams of at least ``cells`` KV cells each."""
        import llama_cpp
        from llama_cpp import _internals

        if self._ctx is not None and cells <= self._cells and n_seq <= self._n_seq:
            return self._ctx
        self.close()
        cells = -(-cells // _CELL_QUANTUM) * _CELL_QUANTUM
        n_seq = max(n_seq, 1)
        base = self.llm.context_params
        params = type(base).from_buffer_copy(base)  # the backend's threads, KV types, attention
        params.n_ctx = cells * n_seq  # split evenly between the streams
        params.n_seq_max = n_seq
        params.kv_unified = False  # a stream per sequence: its cache laid out as at batch 1
        n_batch = int(base.n_batch)
        params.n_batch = n_batch
        params.n_ubatch = min(int(base.n_ubatch), n_batch)
        if n_seq > llama_cpp.llama_max_parallel_sequences():
            raise ValueError(f"llama.cpp decodes at most {llama_cpp.llama_max_parallel_sequences()} "
                             f"sequences together, not {n_seq}")
        from llama_cpp._utils import suppress_stdout_stderr

        with suppress_stdout_stderr(disable=bool(self.llm.verbose)):  # llama.cpp logs to stderr
            self._ctx = _internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
        self._batch = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1, verbose=False)
        self._batch_tokens = n_batch
        self._cells, self._n_seq = cells, n_seq
        return self._ctx

    @staticmethod
    def _sampler(model: Any, grammar: Any) -> Any:
        """The batch-1 chain of ``Llama.generate(temp=0)``: [grammar] then greedy (its neutral
        repetition penalty is a no-op in llama.cpp and is left out)."""
        from llama_cpp import _internals

        s = _internals.LlamaSampler()
        if grammar is not None:
            s.add_grammar(model, grammar)
        s.add_greedy()
        return s

    def decode(
        self,
        token_lists: list[list[int]],
        grammars: list[Any],
        max_tokens: list[int],
        stops: list[list[str]],
        keep_logits: list[bool] | None = None,
    ) -> BatchFigures:
        """Greedy-decode every sequence; returns the batch's figures and each sequence's result
        (with ``keep_logits[s]``, sequence ``s``'s result holds the logits row of every token it
        sampled: the fidelity capture, see ``Backend.capture``)."""
        import llama_cpp

        n = len(token_lists)
        llm = self.llm
        vocab = llm._model.vocab
        prefix = shared_prefix(token_lists) if n > 1 else 0
        cells = max(len(t) + m for t, m in zip(token_lists, max_tokens, strict=True))
        ctx = self._context(n, cells + 1)
        mem = llama_cpp.llama_get_memory(ctx.ctx)
        keep = self._keep_cached_prefix(mem, token_lists[0], prefix, n)
        batch = self._batch
        cap = self._batch_tokens
        samplers = [self._sampler(llm._model, g) for g in grammars]
        out: list[list[int]] = [[] for _ in range(n)]
        texts = [""] * n
        finish = ["length"] * n
        ttft: list[float | None] = [None] * n
        pos = [len(t) for t in token_lists]
        live = [True] * n
        want = list(keep_logits) if keep_logits is not None else [False] * n
        rows: list[list[Any]] = [[] for _ in range(n)]
        n_vocab = int(llm.n_vocab()) if any(want) else 0

        def take(s: int, j: int) -> None:
            tok = samplers[s].sample(ctx, j)
            before = len(out[s])
            self._take(s, tok, vocab, out, texts, finish, live, max_tokens, stops)
            if want[s] and len(out[s]) > before:
                rows[s].append(logits_row(ctx.get_logits_ith(j), n_vocab))

        try:
            t0 = time.perf_counter()
            # 1. the shared prefix, once, on sequence 0; then copied into every other stream
            for i in range(keep, prefix, cap):
                chunk = token_lists[0][i:min(prefix, i + cap)]
                self._fill(batch, [(tok, i + k, 0, False) for k, tok in enumerate(chunk)])
                ctx.decode(batch)
            for s in range(1, n if prefix else 0):
                llama_cpp.llama_memory_seq_cp(mem, 0, s, -1, -1)
            # 2. every sequence's own suffix, as few decode calls as n_batch allows
            pending = [(tok, prefix + k, s, prefix + k == len(t) - 1)
                       for s, t in enumerate(token_lists) for k, tok in enumerate(t[prefix:])]
            for i in range(0, len(pending), cap):
                chunk = pending[i:i + cap]
                self._fill(batch, chunk)
                ctx.decode(batch)
                for j, (_tok, _p, s, last) in enumerate(chunk):
                    if last:
                        take(s, j)
                        ttft[s] = time.perf_counter() - t0
            t1 = time.perf_counter()
            # 3. decode steps: one token per live sequence, one batch per step
            steps = 0
            while any(live):
                seqs = [s for s in range(n) if live[s]]
                self._fill(batch, [(out[s][-1], pos[s], s, True) for s in seqs])
                ctx.decode(batch)
                steps += 1
                for j, s in enumerate(seqs):
                    pos[s] += 1
                    take(s, j)
            t2 = time.perf_counter()
            self._cached = list(token_lists[0][:prefix])
        finally:
            for smp in samplers:
                smp.close()
        results = []
        for s in range(n):
            text = texts[s]
            if finish[s] == "eos" and grammars[s] is not None:
                finish[s] = "grammar"  # the end of generation under a grammar (as at batch 1)
            if finish[s] != "stop" or not [x for x in stops[s] if x]:
                text = llm.detokenize(out[s]).decode("utf-8", errors="replace")
            own = len(token_lists[s]) - prefix + (prefix - keep if s == 0 else 0)
            results.append(SequenceResult(out[s], text, finish[s], len(token_lists[s]), own,
                                          prefix if s else keep, ttft[s], rows[s] if want[s] else None))
        return BatchFigures(prefill_s=t1 - t0, decode_s=t2 - t1, prefix_tokens=prefix,
                            decode_steps=steps, results=results)

    def _keep_cached_prefix(self, mem: Any, first: list[int], prefix: int, n: int) -> int:
        """Keep what the last call left of the shared prefix (consecutive batches of one run share
        the system prompt) and clear everything else; returns how many prefix tokens are kept.
        ``first``: sequence 0's tokens; ``n``: the sequences of this call."""
        import llama_cpp

        keep = 0
        while keep < min(prefix, len(self._cached)) and self._cached[keep] == first[keep]:
            keep += 1
        if keep:
            llama_cpp.llama_memory_seq_rm(mem, -1, keep, -1)
            for s in range(1, self._seqs_used):
                llama_cpp.llama_memory_seq_rm(mem, s, -1, -1)
        else:
            llama_cpp.llama_memory_clear(mem, True)
        self._cached, self._seqs_used = [], n
        return keep

    # ---------------------------------------------------------------------------------------

    @staticmethod
    def _fill(batch: Any, items: list[tuple[int, int, int, bool]]) -> None:
        """(token, position, sequence id, wants logits) into the llama_batch."""
        b = batch.batch
        b.n_tokens = len(items)
        for i, (tok, p, s, logits) in enumerate(items):
            b.token[i] = tok
            b.pos[i] = p
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = s
            b.logits[i] = logits

    def _take(self, s: int, tok: int, vocab: Any, out: list[list[int]], texts: list[str],
              finish: list[str], live: list[bool], max_tokens: list[int], stops: list[list[str]]) -> None:
        """Sequence ``s`` sampled ``tok``: end it on end-of-generation, a stop sequence or its
        budget -- the same rules, in the same order, as the batch-1 loop."""
        import llama_cpp

        if llama_cpp.llama_vocab_is_eog(vocab, tok):
            finish[s], live[s] = "eos", False
            return
        out[s].append(tok)
        wanted = [x for x in stops[s] if x]
        if wanted:
            text = self.llm.detokenize(out[s]).decode("utf-8", errors="ignore")
            cut = first_stop(text, wanted)
            if cut is not None:
                texts[s], finish[s], live[s] = text[:cut], "stop", False
                return
        if len(out[s]) >= max_tokens[s]:
            live[s] = False


def attribute(figures: BatchFigures) -> list[dict[str, Any]]:
    """Each sequence's share of the batch's prefill and decode time, by tokens: prefill by the
    prompt tokens it stands for (its suffix plus an equal part of the shared prefix), decode by
    the tokens it generated."""
    res = figures.results
    n = len(res)
    prompt_w = [r.prompt_tokens - figures.prefix_tokens + figures.prefix_tokens / n for r in res]
    gen_w = [len(r.token_ids) for r in res]
    pw, gw = sum(prompt_w) or 1.0, sum(gen_w) or 1.0
    return [{"prefill_s": figures.prefill_s * p / pw, "decode_s": figures.decode_s * g / gw}
            for p, g in zip(prompt_w, gen_w, strict=True)]


def logits_row(ptr: Any, n_vocab: int) -> Any:
    """A copy of one row of float32 logits (llama.cpp reuses the buffer at the next decode)."""
    import ctypes

    import numpy as np

    arr = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,))
    return np.array(arr, dtype=np.float32)
