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
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar

from agentsim.answers import ParseSpec
from agentsim.errors import BackendError, MissingDependencyError

__all__ = [
    "Backend",
    "BackendSpec",
    "BackendInfo",
    "GenerationRequest",
    "Completion",
    "OptionSpec",
    "parse_spec",
    "create_backend",
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
    finish_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)


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

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

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


@dataclass(frozen=True)
class _Entry:
    target: str  # "module:Class"
    extra: str | None  # the pip extra that installs its dependencies
    modules: tuple[str, ...]  # import names it needs
    description: str


_REGISTRY: dict[str, _Entry] = {
    "oracle": _Entry("agentsim.backends.simulated:OracleBackend", None, (), "answers the expected output (checks a scenario)"),
    "noisy": _Entry("agentsim.backends.simulated:NoisyBackend", None, (), "seeded simulation: right given its inputs, wrong with probability p"),
    "llama": _Entry("agentsim.backends.llama_cpp:LlamaBackend", "llama", ("llama_cpp",), "llama.cpp GGUF models via llama-cpp-python"),
    "hf": _Entry("agentsim.backends.hf:HFBackend", "hf", ("torch", "transformers"), "transformers/torch (f32, bf16, f16, emulated int8/int4/mxfp4/nvfp4)"),
    "openai": _Entry("agentsim.backends.openai:OpenAIBackend", "openai", ("httpx",), "any OpenAI-compatible server (vLLM, SGLang, TGI, Ollama, llama.cpp); precision declared"),
}


def register_backend(name: str, target: str, *, extra: str | None = None, modules: tuple[str, ...] = (), description: str = "") -> None:
    """Register a backend under ``name`` (``target`` is ``"module:Class"``)."""
    _REGISTRY[name] = _Entry(target, extra, modules, description)


def _entry_point_backends() -> dict[str, Any]:
    try:
        return {ep.name: ep for ep in entry_points(group="agentsim.backends")}
    except Exception:  # noqa: BLE001 - broken third-party metadata must not break us
        return {}


def available_backends() -> dict[str, str]:
    """Backend names and descriptions; imports nothing."""
    out = {k: v.description for k, v in _REGISTRY.items()}
    for name in _entry_point_backends():
        out.setdefault(name, "third-party (entry point)")
    return out


def backend_class(name: str) -> type[Backend]:
    entry = _REGISTRY.get(name)
    if entry is None:
        eps = _entry_point_backends()
        if name in eps:
            return eps[name].load()  # type: ignore[no-any-return]
        raise BackendError(
            f"unknown backend {name!r}",
            hint=f"backends: {', '.join(available_backends())}",
        )
    module_name, _, attr = entry.target.partition(":")
    missing = [m for m in entry.modules if importlib.util.find_spec(m) is None]
    if missing and entry.extra:
        raise MissingDependencyError(f"backend {name!r}", entry.extra, missing)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if entry.extra:
            raise MissingDependencyError(f"backend {name!r}", entry.extra, [exc.name or str(exc)]) from None
        raise
    return getattr(module, attr)  # type: ignore[no-any-return]


def create_backend(spec: str | BackendSpec) -> Backend:
    """A backend instance for a spec string (not yet loaded)."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    return backend_class(parsed.name)(parsed)
