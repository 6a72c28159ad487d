"""Teacher-forced scoring on a llama.cpp context: the next-token distributions a model gives at
every position of a *given* completion (the ``llama`` backend's fidelity path).

One pass per hop: the prompt's tokens then the completion's tokens go into ``llama_decode`` (in
chunks of ``n_batch`` tokens) with logits requested at the positions that predict each completion
token; nothing is sampled. What comes back is llama.cpp's own float32 logits at each of those
positions (``[completion tokens, n_vocab]``, unnormalised log-probabilities: half the memory of
float64 and no rounding added), which :func:`agentsim.fidelity.hop_metrics` normalises in
float64, so a KL divergence between two rungs is exact, not a top-k estimate.

Two layouts, as the generation paths lay their caches out (:mod:`agentsim.backends.llama_batch`):

- ``n_seq = 1``: one sequence at a time in one context; the KV cells of the longest prefix shared
  with the previous item are kept (as the batch-1 path keeps its prefix cache across the hops of
  an instance) and only the rest is evaluated.
- ``n_seq > 1``: items in groups of ``n_seq``, each on its own KV stream; the group's shared
  prefix is evaluated once on sequence 0 and copied into the other streams (``seq_cp``), then
  every sequence's remaining tokens go into the same decode calls -- the batch path's layout, so
  that a rung at batch 1 against the same rung at batch B measures what batching alone changes.

Like ``llama_batch`` this module reaches into llama-cpp-python's ``_internals`` in this one place.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np

from .llama_batch import shared_prefix

__all__ = ["TeacherForcer", "log_softmax"]

_CELL_QUANTUM = 256


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64."""
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    z = x - m
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class TeacherForcer:
    """A scoring context on the backend's loaded ``llama_cpp.Llama`` (its model and context
    parameters -- threads, n_batch, KV types -- are reused; its own context is left alone)."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self._ctx: Any = None
        self._batch: Any = None
        self._cells = 0
        self._n_seq = 0
        self._cap = 0
        self._cached: list[int] = []  # n_seq = 1: the tokens whose KV is held on sequence 0
        #: contexts kept per layout (n_seq -> (ctx, batch, cells, cached)): one backend scoring
        #: both sides of a noise-floor pair switches layouts at every call
        self._parked: dict[int, tuple[Any, Any, int, list[int]]] = {}
        self.n_vocab = int(llm.n_vocab())

    def _close_current(self) -> None:
        if self._batch is not None:
            self._batch.close()
            self._batch = None
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None
        self._cells = self._n_seq = 0
        self._cached = []

    def close(self) -> None:
        self._close_current()
        for ctx, batch, _c, _k in self._parked.values():
            batch.close()
            ctx.close()
        self._parked.clear()

    def _context(self, n_seq: int, cells: int) -> Any:
        import llama_cpp
        from llama_cpp import _internals
        from llama_cpp._utils import suppress_stdout_stderr

        if self._ctx is not None and n_seq != self._n_seq:
            self._parked[self._n_seq] = (self._ctx, self._batch, self._cells, self._cached)
            self._ctx = self._batch = None
            self._cells = self._n_seq = 0
            self._cached = []
        if self._ctx is None and n_seq in self._parked:
            self._ctx, self._batch, self._cells, self._cached = self._parked.pop(n_seq)
            self._n_seq = n_seq
            self._cap = int(self.llm.context_params.n_batch)
        if self._ctx is not None and cells <= self._cells and n_seq == self._n_seq:
            return self._ctx
        self._close_current()
        cells = -(-cells // _CELL_QUANTUM) * _CELL_QUANTUM
        base = self.llm.context_params
        params = type(base).from_buffer_copy(base)
        params.n_ctx = cells * n_seq
        params.n_seq_max = n_seq
        params.kv_unified = False
        n_batch = int(base.n_batch)
        params.n_batch = n_batch
        params.n_ubatch = min(int(base.n_ubatch), n_batch)
        if n_seq > llama_cpp.llama_max_parallel_sequences():
            raise ValueError(f"llama.cpp decodes at most {llama_cpp.llama_max_parallel_sequences()} sequences together")
        with suppress_stdout_stderr(disable=bool(self.llm.verbose)):
            self._ctx = _internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
        self._batch = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1, verbose=False)
        self._cap = n_batch
        self._cells, self._n_seq = cells, n_seq
        return self._ctx

    def _logits(self, ctx: Any, i: int) -> np.ndarray:
        ptr = ctx.get_logits_ith(i)
        arr = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))
        return np.array(arr, dtype=np.float32)  # a copy: the buffer is reused by the next decode

    def _run(self, ctx: Any, items: list[tuple[int, int, int, int | None]],
             out: list[list[np.ndarray | None]]) -> None:
        """Decode ``(token, position, sequence, output row or None)`` in chunks of n_batch;
        the logits of each row that wants them land in ``out[sequence][row]``."""
        b = self._batch.batch
        for start in range(0, len(items), self._cap):
            chunk = items[start:start + self._cap]
            b.n_tokens = len(chunk)
            for i, (tok, p, s, row) in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = p
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = s
                b.logits[i] = row is not None
            ctx.decode(self._batch)
            for i, (_tok, _p, s, row) in enumerate(chunk):
                if row is not None:
                    out[s][row] = self._logits(ctx, i)

    def score(self, items: Sequence[tuple[list[int], list[int]]], *, n_seq: int = 1) -> list[np.ndarray]:
        """For each ``(prompt tokens, completion tokens)`` the float32 logits ``[m, n_vocab]`` of the
        distributions that predict the m completion tokens (row j: given the prompt and the first j
        completion tokens). An empty completion gives a ``[0, n_vocab]`` array."""
        results: list[np.ndarray] = []
        if n_seq <= 1:
            for prompt, completion in items:
                results.append(self._score_one(list(prompt), list(completion)))
            return results
        items = list(items)
        for g in range(0, len(items), n_seq):
            results.extend(self._score_group(items[g:g + n_seq], n_seq))
        return results

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.n_vocab), dtype=np.float32)

    def _score_one(self, prompt: list[int], completion: list[int]) -> np.ndarray:
        import llama_cpp

        m = len(completion)
        if m == 0 or not prompt:
            return self._empty()
        seq = prompt + completion[:-1]  # the last completion token predicts nothing we score
        first = len(prompt) - 1  # the position whose logits predict completion[0]
        ctx = self._context(1, len(seq) + 1)
        mem = llama_cpp.llama_get_memory(ctx.ctx)
        keep = 0
        limit = min(len(self._cached), first)
        while keep < limit and self._cached[keep] == seq[keep]:
            keep += 1
        if keep:
            llama_cpp.llama_memory_seq_rm(mem, 0, keep, -1)
        else:
            llama_cpp.llama_memory_clear(mem, True)
        self._cached = []
        out: list[list[np.ndarray | None]] = [[None] * m]
        todo = [(tok, p, 0, (p - first) if p >= first else None) for p, tok in enumerate(seq) if p >= keep]
        try:
            self._run(ctx, todo, out)
        except Exception:
            self._close_current()
            raise
        self._cached = seq
        return np.stack(out[0])  # type: ignore[arg-type]

    def _score_group(self, group: list[tuple[list[int], list[int]]], n_seq: int) -> list[np.ndarray]:
        import llama_cpp

        seqs = [list(p) + list(c)[:-1] for p, c in group]
        firsts = [len(p) - 1 for p, _ in group]
        ms = [len(c) for _, c in group]
        live = [i for i, (p, c) in enumerate(group) if p and c]
        res: list[np.ndarray] = [self._empty() for _ in group]
        if not live:
            return res
        ctx = self._context(n_seq, max(len(seqs[i]) for i in live) + 1)
        mem = llama_cpp.llama_get_memory(ctx.ctx)
        # the batch path's shared prefix (prompts only), never past a position we must score
        prefix = shared_prefix([list(group[i][0]) for i in live]) if len(live) > 1 else 0
        prefix = min([prefix] + [firsts[i] for i in live])
        # keep what the last group left of the shared prefix on sequence 0 (as the batch path
        # keeps the system prompt between consecutive batches); everything else goes
        keep = 0
        first_seq = seqs[live[0]]
        while keep < min(prefix, len(self._cached)) and self._cached[keep] == first_seq[keep]:
            keep += 1
        if keep:
            llama_cpp.llama_memory_seq_rm(mem, -1, keep, -1)
            for k in range(1, n_seq):
                llama_cpp.llama_memory_seq_rm(mem, k, -1, -1)
        else:
            llama_cpp.llama_memory_clear(mem, True)
        self._cached = []
        sid = {i: k for k, i in enumerate(live)}  # sequence ids 0.. for the live items
        out: list[list[np.ndarray | None]] = [[None] * ms[i] for i in live]
        try:
            if prefix:
                self._run(ctx, [(tok, p, 0, None) for p, tok in enumerate(first_seq[:prefix]) if p >= keep], out)
                for k in range(1, len(live)):
                    llama_cpp.llama_memory_seq_cp(mem, 0, k, -1, -1)
            todo = [(tok, p, sid[i], (p - firsts[i]) if p >= firsts[i] else None)
                    for i in live for p, tok in enumerate(seqs[i]) if p >= prefix]
            # sequence 0's cells past the prefix belong to its own item: drop them now, so that
            # the next group finds the prefix alone
            self._run(ctx, todo, out)
            llama_cpp.llama_memory_seq_rm(mem, 0, prefix, -1)
            self._cached = list(first_seq[:prefix])
        except Exception:
            self._close_current()
            raise
        for i in live:
            res[i] = np.stack(out[sid[i]])  # type: ignore[arg-type]
        return res
