"""The ``llama`` backend: GGUF models through llama-cpp-python.

Spec: ``llama:MODEL@PRECISION[,n_ctx=..,n_threads=..,n_gpu_layers=..,seed=..,n_batch=..,prefix_cache=..]``.
``MODEL`` is a catalog or added model name (default: the default model) or a path to a ``.gguf``;
``PRECISION`` is a ladder rung (``f16``, ``q8_0``, ``q4_k_m``, ``q4_0``, ``mxfp4``, ``nvfp4``) or
``source`` (the file as shipped). Files are resolved and checked by :mod:`agentsim.models`
before llama.cpp sees them.

Per hop it reports what llama.cpp itself measured (``llama_perf_context``): prompt tokens
evaluated and their time (prefill), generated tokens and their time (decode), plus the wall time
to the first token. Hops of one instance share a long prefix (system prompt, world facts);
llama-cpp-python keeps the KV cache of the previous prompt and evaluates only the tokens after
the longest common prefix, so ``cached_tokens`` = prompt tokens - tokens llama.cpp evaluated.

Decoding is greedy (temperature 0) with a fixed seed; a hop's grammar (a preset or GBNF) holds
the answer to a format; stop sequences cut the text.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

from agentsim import models
from agentsim.backends.base import (
    Backend,
    BackendInfo,
    BackendSpec,
    Completion,
    GenerationRequest,
    OptionSpec,
    TokenScores,
    first_stop,
)
from agentsim.errors import AgentsimError, BackendError, ModelError
from agentsim.grammar import check_grammar, resolve_grammar
from agentsim.precision import FP4, FP4_NATIVE_MIN_CAPABILITY, LLAMA_PRECISIONS
from agentsim.versions import dist_version

__all__ = ["LlamaBackend"]

#: GGML tensor type names of the FP4 formats
_FP4_TYPES = {p.upper() for p in FP4}


class LlamaBackend(Backend):
    NAME: ClassVar[str] = "llama"
    DESCRIPTION: ClassVar[str] = "llama.cpp GGUF models via llama-cpp-python"
    EXTRA: ClassVar[str | None] = "llama"
    REQUIRES: ClassVar[tuple[str, ...]] = ("llama_cpp",)
    OPTIONS: ClassVar[dict[str, OptionSpec]] = {
        "n_ctx": OptionSpec(int, 4096, "context length in tokens"),
        "n_threads": OptionSpec(int, 0, "CPU threads for prompt and generation (0: half the cores, at least 1)"),
        "n_gpu_layers": OptionSpec(int, -1, "layers offloaded to a GPU (-1: all when the build can offload, else none)"),
        "seed": OptionSpec(int, 0, "sampling seed"),
        "n_batch": OptionSpec(int, 512, "prompt tokens per batch"),
        "prefix_cache": OptionSpec(bool, True, "reuse the KV cache of a shared prompt prefix across hops"),
    }
    PRECISIONS: ClassVar[tuple[str, ...] | None] = LLAMA_PRECISIONS
    SUPPORTS_GRAMMAR: ClassVar[bool] = True
    FIDELITY: ClassVar[str] = "exact"
    LOGPROBS: ClassVar[bool] = True

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self._resolved: models.ResolvedModel | None = None
        self._llm: Any = None
        self._formatter: Any = None
        self._grammars: dict[str, Any] = {}
        self._n_gpu_layers = 0
        self._gpu = False
        self._batcher: Any = None  # llama_batch.BatchDecoder, made on the first batch of > 1
        self._scorer: Any = None  # llama_score.TeacherForcer, made on the first score()

    # ---------------------------------------------------------------------------------------
    # life cycle

    def _resolve(self) -> models.ResolvedModel:
        if self._resolved is None:
            self._resolved = models.resolve(self.spec.model, self.spec.precision)
        return self._resolved

    # what this backend declares to the executors

    def resources(self, cluster_gpus: float = 0.0) -> dict[str, float]:
        """A GPU where the cluster has any and layers are offloaded (``n_gpu_layers`` not 0), and
        one CPU; on CPU its threads (``n_threads``, default half this machine's cores)."""
        if int(self.options["n_gpu_layers"]) != 0 and cluster_gpus > 0:
            return {"num_cpus": 1.0, "num_gpus": 1.0}
        return {"num_cpus": float(int(self.options["n_threads"]) or _default_threads()), "num_gpus": 0.0}

    def model_identity(self) -> str | None:
        try:
            return models.resolve(self.spec.model, self.spec.precision).sha256
        except ModelError:
            return None

    def prepare_node(self, expected_identity: str | None = None, log: Any = None) -> models.ResolvedModel:
        """The model file, resolved from this node's ``$AGENTSIM_HOME`` cache, or fetched and
        prepared there once (concurrent runs on the node wait for the first), then verified
        (size and sha256 against the node's manifest, and against the driver's when given)."""
        spec = self.spec
        try:
            resolved = models.resolve(spec.model, spec.precision)
        except ModelError:
            if spec.model and _is_path(spec.model):
                raise ModelError(f"{spec.model} does not exist on node {os.uname().nodename}",
                                 hint="a model given by path must be at that path on every node "
                                      "(a shared folder), or use a catalog name so each node prepares it") from None
            name = (spec.model or models.DEFAULT_MODEL).lower()
            precision = (spec.precision or "f16").lower()
            with models.prepare_lock(name):
                try:  # another run on this node may have prepared it while we waited
                    resolved = models.resolve(spec.model, spec.precision)
                except ModelError:
                    if precision == "source":
                        models.fetch(name, log=log)
                    else:
                        models.prepare(name, [precision], log=log)
                    resolved = models.resolve(spec.model, spec.precision)
        if expected_identity and resolved.sha256 != expected_identity:
            raise ModelError(
                f"node {os.uname().nodename}: {spec} resolves to {resolved.path} with sha256 "
                f"{resolved.sha256[:12]}…, not the driver's {expected_identity[:12]}…; a report would mix two models",
                hint="share one model cache between the nodes ($AGENTSIM_HOME on a shared folder), "
                     "or rebuild the rung on that node: agentsim models prepare --force",
            )
        return resolved

    def load(self) -> None:
        if self._llm is not None:
            return
        resolved = self._resolve()  # ModelError (clear, with the command to run) before llama.cpp
        import llama_cpp

        self._gpu = bool(llama_cpp.llama_supports_gpu_offload())
        n_gpu = int(self.options["n_gpu_layers"])
        self._n_gpu_layers = (-1 if self._gpu else 0) if n_gpu < 0 else (n_gpu if self._gpu else 0)
        threads = int(self.options["n_threads"]) or _default_threads()
        n_ctx = int(self.options["n_ctx"])
        trained = resolved.context_length
        if trained and "n_ctx" not in self.spec.options_dict:
            n_ctx = min(n_ctx, trained)  # the default never exceeds what the model was trained on
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(resolved.path),
                n_ctx=n_ctx,
                n_batch=int(self.options["n_batch"]),
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=self._n_gpu_layers,
                seed=int(self.options["seed"]),
                verbose=False,
            )
        except Exception as exc:  # noqa: BLE001 - llama.cpp reports load failures as ValueError/RuntimeError
            raise BackendError(
                f"llama.cpp could not load {resolved.path}: {type(exc).__name__}: {exc}",
                hint="check the file with 'agentsim models list'; rebuild a rung with 'agentsim models prepare --force'",
            ) from None
        self._formatter = self._make_formatter()

    def _make_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self._llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None

        def text(token_id: int) -> str:
            if token_id < 0:
                return ""
            return llm.detokenize([token_id], special=True).decode("utf-8", errors="replace")

        try:
            return Jinja2ChatFormatter(template=template, eos_token=text(llm.token_eos()), bos_token=text(llm.token_bos()))
        except Exception as exc:  # noqa: BLE001 - a broken template in the file
            raise BackendError(f"the chat template in {self._resolve().path} does not compile: {exc}") from None

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()
            self._batcher = None
        if self._scorer is not None:
            self._scorer.close()
            self._scorer = None
        if self._llm is not None:
            try:
                self._llm.close()
            finally:
                self._llm = None
                self._grammars.clear()

    # ---------------------------------------------------------------------------------------
    # generation

    def render(self, request: GenerationRequest) -> str:
        """The prompt text the model sees: the GGUF's chat template applied to system + user, or
        to the request's whole chat and its tools (``request.messages``, from ``agentsim serve``)."""
        if request.messages is not None:
            messages = list(request.messages)
        else:
            messages = []
            if request.system:
                messages.append({"role": "system", "content": request.system})
            messages.append({"role": "user", "content": request.prompt})
        if self._formatter is None:  # a GGUF without a chat template: plain text
            return "\n\n".join(str(m.get("content") or "") for m in messages) + "\n"
        if request.tools:
            return str(self._formatter(messages=messages, tools=request.tools).prompt)
        return str(self._formatter(messages=messages).prompt)

    def _grammar(self, grammar: str | None) -> Any:
        gbnf = resolve_grammar(grammar)
        if not gbnf:
            return None
        g = self._grammars.get(gbnf)
        if g is None:
            from llama_cpp import LlamaGrammar

            # llama.cpp's parser prints its error and hands back no grammar, and the sampler
            # built on that crashes the process: only grammars our checker passes go in
            problem = check_grammar(grammar or "")
            if problem:
                raise BackendError(f"invalid grammar {grammar!r}: {problem}",
                                   hint="agentsim validate FILE shows where it is")

            try:
                g = LlamaGrammar.from_string(gbnf, verbose=False)
            except Exception as exc:  # noqa: BLE001
                raise BackendError(f"llama.cpp rejected the grammar {grammar!r}: {exc}") from None
            self._grammars[gbnf] = g
        return g

    def generate(self, request: GenerationRequest) -> Completion:
        if self._llm is None:
            self.load()
        import llama_cpp

        llm = self._llm
        tokens = llm.tokenize(self.render(request).encode("utf-8"), add_bos=False, special=True)
        n_ctx = min(llm.n_ctx(), len(llm.input_ids))  # the C context may be padded past the Python buffers
        if len(tokens) + request.max_tokens > n_ctx:
            raise BackendError(
                f"prompt of {len(tokens)} tokens + {request.max_tokens} to generate exceeds n_ctx={n_ctx}",
                hint=f"use {self.spec},n_ctx={2 * n_ctx}" if "n_ctx" not in self.spec.options_dict else None,
            )
        grammar = self._grammar(request.grammar)
        if not self.options["prefix_cache"]:
            llm.reset()
        llm.set_seed(int(self.options["seed"]))
        ctx = llm._ctx.ctx
        vocab = llm._model.vocab
        stops = [s for s in request.stop if s]
        llama_cpp.llama_perf_context_reset(ctx)
        keep = self._wants_scores(request)
        if keep:
            from .llama_batch import logits_row
        rows: list[Any] = []
        out_ids: list[int] = []
        text = ""
        finish = "length"
        ttft: float | None = None
        first: Any = None
        t0 = time.perf_counter()
        try:
            for tok in llm.generate(tokens, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, grammar=grammar):
                if ttft is None:
                    ttft = time.perf_counter() - t0
                    first = llama_cpp.llama_perf_context(ctx)
                if llama_cpp.llama_vocab_is_eog(vocab, tok):
                    finish = "eos" if grammar is None else "grammar"
                    break
                if keep:  # the distribution tok was sampled from: the last decode's last row
                    rows.append(logits_row(llama_cpp.llama_get_logits_ith(ctx, -1), llm.n_vocab()))
                out_ids.append(tok)
                if stops:
                    text = llm.detokenize(out_ids).decode("utf-8", errors="ignore")
                    cut = first_stop(text, stops)
                    if cut is not None:
                        text = text[:cut]
                        finish = "stop"
                        break
                if len(out_ids) >= request.max_tokens:
                    break
        except Exception:
            llm.reset()  # the KV cache may be half-written: never reuse it
            if grammar is not None:
                self._grammars.clear()
            raise
        wall = time.perf_counter() - t0
        end = llama_cpp.llama_perf_context(ctx)
        if finish != "stop" or not stops:
            text = llm.detokenize(out_ids).decode("utf-8", errors="replace")
        # Up to the first token, every llama.cpp eval was the prompt's (a 1-token suffix is
        # counted by llama.cpp as an "eval", so both counters are summed).
        evaluated, prefill_ms = _evals(first)
        total_evals, total_ms = _evals(end)
        decode_ms = total_ms - prefill_ms
        done = Completion(
            text=text,
            prompt_tokens=len(tokens),
            completion_tokens=len(out_ids),
            cached_tokens=max(len(tokens) - evaluated, 0),
            prefill_s=prefill_ms / 1000.0,
            decode_s=max(decode_ms, 0.0) / 1000.0,
            ttft_s=ttft,
            finish_reason=finish,
            extra={"prompt_evaluated": evaluated, "decode_evals": total_evals - evaluated,
                   "wall_s": wall, "token_ids": out_ids},
        )
        if keep:
            self._keep_scores(request, done, out_ids, rows)
        return done

    def token_bytes(self, token_id: int) -> bytes:
        if self._llm is None:
            self.load()
        return bytes(self._llm.detokenize([int(token_id)], special=True))

    def _wants_scores(self, request: GenerationRequest) -> bool:
        return request.top_logprobs is not None or (self.capture is not None and request.messages is None)

    def _keep_scores(self, request: GenerationRequest, done: Completion, out_ids: list[int], rows: list[Any]) -> None:
        """The distributions of the tokens the kept text holds (a stop sequence's tokens are cut
        with it) into ``done.scores`` (asked by the request) and the capture. The capture keeps
        them only where the text tokenizes back to the generated tokens -- what the fidelity
        pass would score -- and the request's scores fall back to the generated tokens up to
        the text's length otherwise (a non-canonical tokenization, rare)."""
        import numpy as np

        llm = self._llm
        text = done.text
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else []
        canonical = bool(ids) and ids == out_ids[:len(ids)] and len(rows) >= len(ids)
        if canonical:
            n = len(ids)
        else:
            n, size = 0, len(text.encode("utf-8"))
            while n < len(out_ids) and len(llm.detokenize(out_ids[:n + 1])) <= size:
                n += 1
        scores = TokenScores("exact", list(out_ids[:n]), np.stack(rows[:n]) if n else
                             np.zeros((0, llm.n_vocab()), dtype=np.float32), source="captured")
        if request.top_logprobs is not None:
            done.scores = scores
        if self.capture is not None and canonical and request.messages is None:
            self.capture.put(request, text, scores)

    def generate_batch(self, requests: Any, *, return_exceptions: bool = False) -> list[Any]:
        """Several requests decoded together as sequences of one llama.cpp context
        (:mod:`agentsim.backends.llama_batch`): their shared prompt prefix evaluated once, one
        ``llama_decode`` per step for all of them, each with its own grammar and stops. prefill_s
        and decode_s are each hop's share (by tokens) of the batch's times, which come in
        ``extra`` ("attributed"). A batch of one is :meth:`generate` (batch-1 behaviour)."""
        reqs = list(requests)
        if len(reqs) <= 1:
            return super().generate_batch(reqs, return_exceptions=return_exceptions)
        if self._llm is None:
            self.load()
        from .llama_batch import BatchDecoder, attribute

        llm = self._llm
        slots: list[Any] = [None] * len(reqs)
        todo: list[tuple[int, GenerationRequest, list[int], Any]] = []
        n_ctx = min(llm.n_ctx(), len(llm.input_ids))
        for i, r in enumerate(reqs):
            try:
                tokens = llm.tokenize(self.render(r).encode("utf-8"), add_bos=False, special=True)
                if len(tokens) + r.max_tokens > n_ctx:
                    raise BackendError(f"prompt of {len(tokens)} tokens + {r.max_tokens} to generate exceeds n_ctx={n_ctx}")
                todo.append((i, r, tokens, self._grammar(r.grammar)))
            except Exception as exc:  # noqa: BLE001 - this request's failure, handed back
                if not return_exceptions:
                    raise
                slots[i] = exc
        if not todo:
            return slots
        if self._batcher is None:
            self._batcher = BatchDecoder(llm)
        try:
            fig = self._batcher.decode([t for _, _, t, _ in todo], [g for *_, g in todo],
                                       [r.max_tokens for _, r, _, _ in todo], [list(r.stop) for _, r, _, _ in todo],
                                       keep_logits=[self._wants_scores(r) for _, r, _, _ in todo])
        except Exception as exc:  # noqa: BLE001 - the batch context may be half-written: drop it
            self._batcher.close()
            self._batcher = None
            raise BackendError(f"llama.cpp batched decoding failed: {type(exc).__name__}: {exc}") from None
        for (i, req, _t, _g), res, share in zip(todo, fig.results, attribute(fig), strict=True):
            slots[i] = Completion(
                text=res.text, prompt_tokens=res.prompt_tokens, completion_tokens=len(res.token_ids),
                cached_tokens=res.shared_prefix, prefill_s=share["prefill_s"], decode_s=share["decode_s"],
                ttft_s=res.ttft_s, finish_reason=res.finish_reason,
                batch_timing="attributed", batch_prefill_s=fig.prefill_s, batch_decode_s=fig.decode_s,
                extra={"prompt_evaluated": res.evaluated, "token_ids": res.token_ids,
                       "batch_sequences": len(todo), "shared_prefix_tokens": fig.prefix_tokens,
                       "decode_steps": fig.decode_steps},
            )
            if res.logits is not None:
                self._keep_scores(req, slots[i], res.token_ids, res.logits)
        return slots

    def score(self, items: Any, *, n_seq: int = 1) -> list[TokenScores]:
        """Teacher-forced, full-vocabulary distributions at every completion position
        (:mod:`agentsim.backends.llama_score`): the rendered prompt's tokens, then the completion
        text's tokens, in one pass per hop; ``n_seq > 1`` lays groups out as the batch path does."""
        if self._llm is None:
            self.load()
        from .llama_score import TeacherForcer

        llm = self._llm
        pairs = [(llm.tokenize(self.render(r).encode("utf-8"), add_bos=False, special=True),
                  llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else [])
                 for r, text in items]
        if self._scorer is None:
            self._scorer = TeacherForcer(llm)
        arrays = self._scorer.score(pairs, n_seq=n_seq)
        return [TokenScores("exact", list(c), a) for (_p, c), a in zip(pairs, arrays, strict=True)]

    # ---------------------------------------------------------------------------------------
    # what ran

    def info(self) -> BackendInfo:
        try:
            r = self._resolve()
        except AgentsimError:
            return BackendInfo(name=self.NAME, model=self.spec.model or models.DEFAULT_MODEL,
                               precision=self.spec.precision or "f16", precision_mode="native")
        weights = {t: n for t, n in r.tensor_types.items() if t != "F32"} or dict(r.tensor_types)
        fp4 = sorted(set(weights) & _FP4_TYPES)
        device = "cpu"
        cc: tuple[int, int] | None = None
        if self._gpu and self._n_gpu_layers != 0:
            cc = _cuda_capability()
            device = "cuda" if cc is not None else "gpu"
        types = ", ".join(f"{t} x{n}" for t, n in weights.items())
        if fp4:
            native = cc is not None and cc >= FP4_NATIVE_MIN_CAPABILITY
            mode = "native" if native else "emulated"
            if native:
                kernel = f"llama.cpp CUDA {'/'.join(fp4)} kernels on FP4 tensor cores (sm_{cc[0]}{cc[1]}); weights {types}"  # type: ignore[index]
            else:
                where = "CPU SIMD" if device == "cpu" else "GPU without FP4 tensor cores"
                kernel = (f"llama.cpp {'ggml-cpu' if device == 'cpu' else 'CUDA'}: {'/'.join(fp4)} blocks decoded in software "
                          f"(E2M1 values by lookup, block scales applied) and multiplied with 8-bit activations on {where}; "
                          f"no FP4 tensor cores. weights {types}")
        else:
            mode = "native"
            kernel = f"llama.cpp {'ggml-cpu' if device == 'cpu' else 'CUDA'} kernels for weights {types}"
        precision = r.precision if r.precision != "source" or r.recipe.get("origin") != "path" else (r.source_precision or "source")
        extra: dict[str, Any] = {
            "llama_cpp_python": dist_version("llama-cpp-python"),
            "n_ctx": self._llm.n_ctx() if self._llm is not None else int(self.options["n_ctx"]),
            "n_threads": int(self.options["n_threads"]) or _default_threads(),
            "n_gpu_layers": self._n_gpu_layers,
            "prefix_cache": bool(self.options["prefix_cache"]),
            "tensor_types": r.tensor_types,
            "recipe": r.recipe,
            "license": r.license,
            "chat_template": "gguf" if self._formatter is not None or self._llm is None else "none (plain text)",
        }
        try:
            import llama_cpp

            extra["system_info"] = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
        except Exception:  # noqa: BLE001 - informational only
            pass
        return BackendInfo(
            name=self.NAME,
            model=r.name,
            precision=precision,
            precision_mode=mode,
            kernel=kernel,
            model_path=str(r.path),
            model_sha256=r.sha256,
            source_precision=r.source_precision,
            model_params=r.params,
            model_bytes=r.bytes,
            device=device,
            extra=extra,
        )


def _evals(perf: Any) -> tuple[int, float]:
    """(tokens evaluated, milliseconds) from a ``llama_perf_context`` snapshot.

    llama.cpp reports each count as at least 1 (to avoid dividing by zero); a counter whose time
    is still zero has evaluated nothing.
    """
    if perf is None:
        return 0, 0.0
    n_p = perf.n_p_eval if perf.t_p_eval_ms > 0 else 0
    n_e = perf.n_eval if perf.t_eval_ms > 0 else 0
    return n_p + n_e, perf.t_p_eval_ms + perf.t_eval_ms


def _is_path(model: str) -> bool:
    return model.endswith(".gguf") or os.sep in model or model.startswith(".")


def _default_threads() -> int:
    """Half the cores (llama-cpp-python's own default for generation), at least 1.

    Measured on the 2-core machine this project is built on, with other work running: one
    thread decoded Q4_0 at 26-27 tok/s and prefilled at 85 tok/s, two threads at 13-15 and 44-57
    (llama.cpp's threads wait for each other at every step, so a busy core stalls them all).
    """
    return max(1, (os.cpu_count() or 2) // 2)


def _cuda_capability() -> tuple[int, int] | None:
    """The first CUDA GPU's compute capability from the one (cached) device probe, or None.

    ``torch=False``: llama.cpp does not compute with torch, so the GPU is the one NVML sees and
    torch is not imported for it.
    """
    from agentsim.hardware import detect

    acc = detect(torch=False)
    return acc.capability if acc.kind == "cuda" else None

