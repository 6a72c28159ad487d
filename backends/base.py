"""The backend interface, spec strings and the lazy registry.

A backend turns a prompt into a completion at one precision. Backends are selected by spec
strings ``NAME[:MODEL][@PRECISION][,key=value...]``, e.g. ``llama:smollm2@q4_k_m,n_ctx=4096``,
``hf:smollm2@bf16``, ``oracle``, ``noisy,p=0.2,latency_ms=30``.

The registry maps names to ``"module:Class"`` strings; a backend's module (and its heavy
dependencies: torch, llama_cpp) is imported only when that backend is first selected. Third-party
backends register through the ``agentsim.backends`` entry-point group.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agentsim.answers import ParseSpec
from agentsim.errors import AgentsimError, BackendError, MissingDependencyError
from agentsim.registry import Registry

__all__ = [
    "Backend",
    "BackendSpec",
    "BackendInfo",
    "GenerationRequest",
    "Completion",
    "OptionSpec",
    "BATCH_TIMING",
    "TokenScores",
    "ScoreCapture",
    "CaptureBudget",
    "parse_spec",
    "create_backend",
    "first_stop",
    "load_backend",
    "available_backends",
    "register_backend",
]


# --------------------------------------------------------------------------------------------
# requests and completions


@dataclass
class GenerationRequest:
    """One hop's call to a backend."""

    prompt: str
    system: str | None = None
    max_tokens: int = 32
    stop: list[str] = field(default_factory=list)
    grammar: str | None = None
    seed: int = 0
    # What the hop is, for simulation backends (``oracle``, ``noisy``). Real model backends must
    # not look at these: they only see the prompt.
    hop_id: str = ""
    instance_key: str = ""
    expected: Any = None
    parse: ParseSpec | None = None
    #: a whole chat in OpenAI form (``agentsim serve``): backends that render chats (``llama``
    #: with the GGUF's template, ``openai`` verbatim) use it instead of ``system`` + ``prompt``,
    #: which then hold its text for the others; ``tools`` are OpenAI tool definitions
    messages: list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    #: ``agentsim serve``'s ``logprobs``/``top_logprobs``: when not None, a backend that can
    #: (``llama``) returns the distributions it sampled from in :attr:`Completion.scores`, and
    #: this many most likely tokens per position are reported (OpenAI's semantics, 0..20)
    top_logprobs: int | None = None


#: why a backend stopped generating: ``eos`` (the model ended its turn: an end-of-generation
#: token), ``stop`` (a stop sequence), ``grammar`` (the end of generation under a grammar, which
#: admitted it), ``length`` (the token budget, ``max_tokens``: the answer may be cut off)
STOP_REASONS = ("eos", "stop", "grammar", "length")


@dataclass
class Completion:
    """A backend's answer, with what the backend itself measured (None when it cannot tell)."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    prefill_s: float | None = None
    decode_s: float | None = None
    ttft_s: float | None = None
    peak_mem_bytes: int | None = None
    #: why generation stopped, one of :data:`STOP_REASONS` (None: the backend cannot tell)
    finish_reason: str | None = None
    #: answered in a batch call (``generate_batch``): ``"own"`` -- the request ran by itself, and
    #: prefill_s/decode_s are its own; ``"attributed"`` -- it was decoded together with the others,
    #: prefill_s/decode_s are its share (by tokens) of the batch's times, which are
    #: ``batch_prefill_s``/``batch_decode_s``. None for a call of ``generate``.
    batch_timing: str | None = None
    batch_prefill_s: float | None = None
    batch_decode_s: float | None = None
    #: where prefill_s/decode_s and the token counts came from, when that varies per request
    #: (stored on the hop; a source that holds for every request belongs in ``BackendInfo``)
    timing_source: str | None = None
    tokens_source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: the distributions the backend sampled from, one per generated token that the kept text
    #: holds (:class:`TokenScores`; only when asked: ``request.top_logprobs`` or a
    #: ``Backend.capture``); never stored with the hop
    scores: Any = None


@dataclass
class BackendInfo:
    """How a backend realises its precision; stored with every run."""

    name: str
    model: str | None = None
    precision: str | None = None
    precision_mode: str = "n/a"  # native | emulated | n/a (simulation)
    kernel: str | None = None
    model_path: str | None = None
    model_sha256: str | None = None
    source_precision: str | None = None
    #: the model's size: parameters stored in the file (GGUF header) and the file's bytes
    model_params: int | None = None
    model_bytes: int | None = None
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def run_fields(self) -> dict[str, Any]:
        """The columns of a stored run that this info fills (``Run(**info.run_fields(), ...)``):
        every field that is a run column by the same name (none copied by hand), ``name`` as
        ``backend_name``, and ``device`` with ``extra`` as ``backend_info``."""
        from dataclasses import fields

        from agentsim.store import RunBase

        columns = {f.name: getattr(self, f.name) for f in fields(self)
                   if f.name in RunBase.model_fields and f.name not in ("backend_name", "backend_info")}
        return {"backend_name": self.name, **columns, "backend_info": {"device": self.device, **self.extra}}


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Where ``text`` is cut for a request's stop strings: the index of the earliest one found
    (empty strings never match), None when none occurs. Every backend cuts with this."""
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(hits) if hits else None


#: how a completion of a batch call reports its timings (:attr:`Completion.batch_timing`)
BATCH_TIMING = ("own", "attributed")


@dataclass
class TokenScores:
    """A hop's completion scored teacher-forced: the distributions a backend gives at every
    completion position, fed the prompt and the completion's own tokens (nothing sampled).

    ``kind``: ``exact`` -- ``logprobs`` is a full-vocabulary float array ``[len(token_ids),
    vocab]`` of log-probabilities up to a constant per row (raw logits: the reader normalises); ``topk`` -- ``logprobs`` is one ``{token: logprob}`` dict per
    position holding only what the backend returned (the rest of the mass is a tail bucket);
    ``unavailable`` -- nothing, and ``reason`` says why. ``token_ids`` are the completion's tokens
    as this backend tokenizes them (the same text tokenizes alike on every rung of one model).
    """

    kind: str
    token_ids: list[Any] = field(default_factory=list)
    logprobs: Any = None
    reason: str | None = None
    #: ``teacher-forced`` (scored after the fact) or ``captured`` (what the backend computed
    #: while it generated these very tokens, :class:`ScoreCapture`); a comparison takes both
    #: sides from the same source
    source: str = "teacher-forced"

    @property
    def nbytes(self) -> int:
        lp = self.logprobs
        if hasattr(lp, "nbytes"):
            return int(lp.nbytes)
        return 64 * sum(len(d) for d in lp) if lp else 64


class ScoreCapture:
    """The distributions a backend computed while it generated one run's hops (set as
    ``Backend.capture`` by a ``--fidelity`` launch): the fidelity pass takes a hop's scores from
    here instead of scoring it again where the generated completion is the one it must score
    (the reference's own hops always; a rung's where it answered as the reference did), which
    saves the teacher-forced pass its prefill. Keyed by content (system prompt, prompt); a hop
    whose scores would take the store past ``budget.max_bytes`` (shared by a launch's captures)
    is not kept (it is then scored teacher-forced, as without a capture)."""

    def __init__(self, budget: CaptureBudget | None = None) -> None:
        self.budget = budget if budget is not None else CaptureBudget()
        self._items: dict[tuple[str | None, str], tuple[str, TokenScores]] = {}
        self.nbytes = 0
        self.dropped = 0

    def put(self, request: GenerationRequest, text: str, scores: TokenScores) -> None:
        if request.messages is not None or not scores.token_ids:
            return
        size = scores.nbytes
        if not self.budget.take(size):
            self.dropped += 1
            return
        key = (request.system, request.prompt)
        old = self._items.pop(key, None)
        if old is not None:
            self.budget.give(old[1].nbytes)
            self.nbytes -= old[1].nbytes
        scores.source = "captured"
        self._items[key] = (text, scores)
        self.nbytes += size

    def get(self, system: str | None, prompt: str, completion: str) -> TokenScores | None:
        """The captured scores of ``completion`` after these inputs, when the backend generated
        exactly that text there; None otherwise."""
        hit = self._items.get((system, prompt))
        return hit[1] if hit is not None and hit[0] == completion else None

    def entry(self, system: str | None, prompt: str) -> tuple[str, TokenScores] | None:
        """What was generated after these inputs (its text and scores), whatever the text."""
        return self._items.get((system, prompt))

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self.budget.give(self.nbytes)
        self._items.clear()
        self.nbytes = 0


class CaptureBudget:
    """Bytes that the captures of one launch may hold together (``AGENTSIM_FIDELITY_CAPTURE_MB``,
    default 1024)."""

    def __init__(self, max_bytes: int | None = None) -> None:
        if max_bytes is None:
            import os

            max_bytes = int(float(os.environ.get("AGENTSIM_FIDELITY_CAPTURE_MB", "1024")) * 2 ** 20)
        self.max_bytes = max_bytes
        self.used = 0

    def take(self, n: int) -> bool:
        if self.used + n > self.max_bytes:
            return False
        self.used += n
        return True

    def give(self, n: int) -> None:
        self.used = max(0, self.used - n)


# --------------------------------------------------------------------------------------------
# spec strings


@dataclass(frozen=True)
class OptionSpec:
    """A backend option: its type, default and help text."""

    type: type
    default: Any
    help: str = ""


@dataclass(frozen=True)
class BackendSpec:
    name: str
    model: str | None = None
    precision: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    @property
    def options_dict(self) -> dict[str, str]:
        return dict(self.options)

    def __str__(self) -> str:
        s = self.name
        if self.model:
            s += f":{self.model}"
        if self.precision:
            s += f"@{self.precision}"
        for k, v in self.options:
            s += f",{k}={v}"
        return s


def parse_spec(text: str) -> BackendSpec:
    """Parse ``NAME[:MODEL][@PRECISION][,key=value...]``."""
    if not isinstance(text, str) or not text.strip():
        raise BackendError("empty backend spec", hint="e.g. 'noisy,p=0.2' or 'llama:qwen2.5-coder-0.5b@q4_k_m'")
    head, *opts = [p.strip() for p in text.strip().split(",")]
    options: list[tuple[str, str]] = []
    for opt in opts:
        if "=" not in opt or not opt.partition("=")[0].strip():
            raise BackendError(f"backend spec {text!r}: option {opt!r} is not key=value")
        k, _, v = opt.partition("=")
        options.append((k.strip(), v.strip()))
    keys = [k for k, _ in options]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise BackendError(f"backend spec {text!r}: option(s) given twice: {', '.join(sorted(dup))}")
    precision = None
    if "@" in head:
        head, _, precision = head.partition("@")
        precision = precision.strip().lower()
        if not precision:
            raise BackendError(f"backend spec {text!r}: empty precision after '@'")
    name, _, model = head.partition(":")
    name = name.strip().lower()
    if not name:
        raise BackendError(f"backend spec {text!r}: missing backend name")
    return BackendSpec(name=name, model=model.strip() or None, precision=precision, options=tuple(options))


def _convert(key: str, raw: str, opt: OptionSpec, spec_text: str) -> Any:
    try:
        if opt.type is bool:
            low = raw.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        return opt.type(raw)
    except ValueError:
        raise BackendError(
            f"backend spec {spec_text!r}: option {key}={raw!r} must be {opt.type.__name__}"
        ) from None


# --------------------------------------------------------------------------------------------
# the ABC


class Backend(ABC):
    """Base class of all backends."""

    NAME: ClassVar[str]
    #: options accepted after the name, ``,key=value``
    OPTIONS: ClassVar[dict[str, OptionSpec]] = {}
    #: precisions this backend offers (None: any / not applicable)
    PRECISIONS: ClassVar[tuple[str, ...] | None] = None
    #: True when the backend answers from the hop's ground truth (a simulation, not a model)
    SIMULATED: ClassVar[bool] = False
    #: True when the backend can constrain decoding with a GBNF grammar
    SUPPORTS_GRAMMAR: ClassVar[bool] = False
    #: one line for ``agentsim backends`` and the TUI
    DESCRIPTION: ClassVar[str] = ""
    #: the pip extra that installs what it needs, and the import names it needs
    EXTRA: ClassVar[str | None] = None
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    #: what :meth:`score` gives (agentsim.fidelity): ``exact`` (full-vocabulary distributions),
    #: ``topk`` (a server's top logprobs, an estimate) or ``none``
    FIDELITY: ClassVar[str] = "none"
    #: why, when FIDELITY is "none" (shown as the reason of every hop left unscored)
    FIDELITY_UNAVAILABLE: ClassVar[str] = "gives no token distributions"
    #: False when :meth:`score` cannot teacher-force (a server's logprobs: only the hops captured
    #: while generating are compared; the others are unavailable, FIDELITY_UNAVAILABLE says why)
    FIDELITY_TEACHER_FORCED: ClassVar[bool] = True
    #: True when :meth:`generate` fills ``Completion.scores`` for a request's ``top_logprobs``
    #: (``agentsim serve``'s ``logprobs``), and :meth:`token_bytes` gives a token's bytes
    LOGPROBS: ClassVar[bool] = False
    #: where :meth:`generate` / :meth:`generate_batch` put the distributions they sampled from
    #: (a backend that can; None: nothing is kept), see :class:`ScoreCapture`
    capture: ScoreCapture | None = None

    def __init__(self, spec: BackendSpec) -> None:
        self.spec = spec
        unknown = sorted(set(spec.options_dict) - set(self.OPTIONS))
        if unknown:
            allowed = ", ".join(f"{k} ({o.help or o.type.__name__})" for k, o in self.OPTIONS.items())
            raise BackendError(
                f"backend {spec.name!r} has no option(s) {', '.join(unknown)}",
                hint=f"options: {allowed or 'none'}",
            )
        self.options: dict[str, Any] = {k: o.default for k, o in self.OPTIONS.items()}
        for k, raw in spec.options_dict.items():
            self.options[k] = _convert(k, raw, self.OPTIONS[k], str(spec))
        if self.SIMULATED and (spec.model or spec.precision):
            given = f":{spec.model}" if spec.model else f"@{spec.precision}"
            raise BackendError(
                f"backend {spec.name!r} is a simulation: it has no model or precision ({given!r} given)",
                hint=f"use {spec.name!r} alone, with options (e.g. noisy,p=0.2); a model backend takes "
                     "MODEL@PRECISION (e.g. llama:qwen2.5-coder-0.5b@q4_0)",
            )
        if self.PRECISIONS is not None and spec.precision and spec.precision not in self.PRECISIONS:
            raise BackendError(
                f"backend {spec.name!r} has no precision {spec.precision!r}",
                hint=f"precisions: {', '.join(self.PRECISIONS)}",
            )

    def load(self) -> None:  # noqa: B027 - optional hook
        """Load models etc. Called once before the first ``generate``; may raise BackendError."""

    @abstractmethod
    def generate(self, request: GenerationRequest) -> Completion:
        """Answer one request. Exceptions become a ``backend`` error on the hop."""

    def generate_batch(self, requests: Sequence[GenerationRequest], *,
                       return_exceptions: bool = False) -> list[Any]:
        """Answer several requests as one batch (the engine's batch > 1 path).

        Results come back in request order. With ``return_exceptions`` a failed request's slot
        holds its exception (one bad hop does not sink the others); without it the first
        failure is raised. This default answers them one after the other with :meth:`generate`,
        so each completion carries its own timings (``batch_timing = "own"``); backends
        that decode several sequences at once override it and report each hop's share of the
        batch's times (``"attributed"``, see :data:`BATCH_TIMING`).
        """
        results: list[Any] = []
        for request in requests:
            try:
                c = self.generate(request)
            except Exception as exc:  # noqa: BLE001 - handed back or re-raised
                if not return_exceptions:
                    raise
                results.append(exc)
                continue
            c.batch_timing = c.batch_timing or "own"
            results.append(c)
        return results

    def score(self, items: Sequence[tuple[GenerationRequest, str]], *, n_seq: int = 1) -> list[TokenScores]:
        """Teacher-forced scores of ``(request, completion text)`` pairs (agentsim.fidelity).

        ``n_seq``: how many sequences the backend lays out together, as its batch path does for a
        run at that batch size (a backend without a batch path ignores it). This default scores
        nothing: every item is ``unavailable`` with the reason.
        """
        why = (f"backend {self.NAME!r} {self.FIDELITY_UNAVAILABLE}"
               + (" (a simulation: there is no model)" if self.SIMULATED else ""))
        return [TokenScores("unavailable", reason=why) for _ in items]

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one token stands for (backends with :attr:`LOGPROBS`)."""
        raise NotImplementedError(f"backend {self.NAME!r} has no token table")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    # what a backend declares about itself (asked by the executors; none of them names a backend)

    def resources(self, cluster_gpus: float = 0.0) -> dict[str, float]:
        """What one run of this (created, unloaded) backend asks a scheduler for: ``num_cpus``
        and ``num_gpus``, given the GPUs the cluster has. The default: one CPU."""
        return {"num_cpus": 1.0, "num_gpus": 0.0}

    def model_identity(self) -> str | None:
        """The sha256 of the model file this spec loads on *this* machine, when it is here (every
        node of a launch must load the same file, so one launch never mixes two models); None
        for a backend without a model file, or when the file is not here."""
        return None

    def prepare_node(self, expected_identity: str | None = None, log: Any = None) -> Any:
        """Make what :meth:`load` needs present on this machine (a model fetched or prepared once
        per node), checked against ``expected_identity`` (the driver's :meth:`model_identity`).
        Called before ``load`` on the node a run lands on; returns what was prepared, or None."""
        return None

    def meter_for(self, meter: Any) -> Any:
        """The energy meter that can honestly measure this backend, given the run's ``meter``
        (called after ``load``). Local backends are measured by whatever the user chose; a
        backend whose computation happens elsewhere returns an ``UnavailableMeter`` saying why."""
        return meter

    @abstractmethod
    def info(self) -> BackendInfo:
        """How this backend realises its precision (stored with the run)."""

    def __enter__(self) -> Backend:
        self.load()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# the lazy registry


def _backend_error(message: str, *, hint: str | None = None) -> BackendError:
    return BackendError(message, hint=hint)


#: every backend by name. agentsim's own are declared in its pyproject's ``agentsim.backends``
#: entry-point table, exactly as a third party's are; :func:`register_backend` adds more at run time.
BACKENDS: Registry[type[Backend]] = Registry("backend", "agentsim.backends", error=_backend_error)


def register_backend(name: str, target: str | type[Backend], *, extra: str | None = None,
                     modules: tuple[str, ...] = (), description: str = "") -> None:
    """Register a backend under ``name`` (``target``: a class or a lazy ``"module:Class"``)."""
    BACKENDS.register(name, target, extra=extra, requires=modules, description=description)


def available_backends() -> dict[str, str]:
    """Backend names and one-line descriptions (imports each backend's light module, nothing heavy)."""
    out: dict[str, str] = {}
    for name in BACKENDS.names():
        entry = BACKENDS.entry(name)
        assert entry is not None
        desc = entry.description
        if not desc:
            try:
                desc = BACKENDS.get(name).DESCRIPTION
            except AgentsimError as exc:
                desc = f"(unavailable: {exc.message})"
        out[name] = desc
    return out


def backend_class(name: str) -> type[Backend]:
    """The class of backend ``name``; a missing optional dependency names the extra to install."""
    cls = BACKENDS.get(name)
    missing = [m for m in cls.REQUIRES if importlib.util.find_spec(m) is None]
    if missing:
        if cls.EXTRA:
            raise MissingDependencyError(f"backend {name!r}", cls.EXTRA, missing)
        raise BackendError(f"backend {name!r} needs {', '.join(missing)}, which is not installed")
    return cls


def load_backend(backend: Backend, *, where: str | None = None) -> None:
    """``backend.load()``, with a crash of the backend's own (not an :class:`AgentsimError`) said
    as one :class:`BackendError` naming the spec (and ``where``: the node it failed on)."""
    try:
        backend.load()
    except AgentsimError:
        raise
    except Exception as exc:  # noqa: BLE001 - a backend's own crash while loading is reported
        on = f" on {where}" if where else ""
        raise BackendError(f"backend {backend.spec} failed to load{on}: {type(exc).__name__}: {exc}") from None


def create_backend(spec: str | BackendSpec) -> Backend:
    """A backend instance for a spec string (not yet loaded)."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    return backend_class(parsed.name)(parsed)
