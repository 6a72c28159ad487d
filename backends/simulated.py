"""Model-free backends: ``oracle`` and ``noisy``.

Both answer from the hop's ground truth *given the inputs the hop actually received* (the engine
passes it in the request). ``oracle`` checks that a scenario is well-formed and scores 100%;
``noisy`` simulates an unreliable model so that error propagation can be studied without one.
"""

from __future__ import annotations

import random
import time
from typing import Any, ClassVar

from agentsim.answers import AnswerFormatError, ParseSpec, format_answer

from .base import Backend, BackendInfo, Completion, GenerationRequest, OptionSpec


def _sleep(ms: float) -> None:
    if ms > 0:
        time.sleep(ms / 1000.0)


def _one_batched_call(backend: Any, requests: Any, return_exceptions: bool) -> list[Any]:
    """A simulated batched call: ``latency_ms`` is paid once for the whole batch (as one call of
    a batching server would take), and each hop gets an equal share of it (``attributed``)."""
    t0 = time.perf_counter()
    _sleep(backend.options["latency_ms"])
    backend._in_batch = True
    try:
        out = Backend.generate_batch(backend, requests, return_exceptions=return_exceptions)
    finally:
        backend._in_batch = False
    wall = time.perf_counter() - t0
    for c in out:
        if isinstance(c, Completion):
            c.decode_s = wall / max(len(out), 1)
            c.batch_timing, c.batch_prefill_s, c.batch_decode_s = "attributed", None, wall
    return out


class OracleBackend(Backend):
    """Always answers the expected output."""

    NAME: ClassVar[str] = "oracle"
    DESCRIPTION: ClassVar[str] = "answers the expected output (checks a scenario)"
    SIMULATED: ClassVar[bool] = True
    OPTIONS: ClassVar[dict[str, OptionSpec]] = {
        "latency_ms": OptionSpec(float, 0.0, "simulated latency per call, ms"),
    }

    _in_batch: bool = False

    def generate_batch(self, requests: Any, *, return_exceptions: bool = False) -> list[Any]:
        """One call for the whole batch: ``latency_ms`` models one batched call, not one per hop."""
        return _one_batched_call(self, requests, return_exceptions)

    def generate(self, request: GenerationRequest) -> Completion:
        t0 = time.perf_counter()
        _sleep(0.0 if self._in_batch else self.options["latency_ms"])
        text = oracle_text(request.expected, request.parse or ParseSpec(), request.hop_id, request.grammar)
        return Completion(text=text, decode_s=time.perf_counter() - t0, finish_reason="eos")

    def info(self) -> BackendInfo:
        return BackendInfo(name="oracle", precision=self.spec.precision, precision_mode="n/a",
                           kernel="simulation")


def oracle_text(expected: Any, parse: ParseSpec, hop_id: str = "", grammar: str | None = None) -> str:
    """The completion the oracle answers: the expected value in the form the hop's parse reads
    (JSON at the field path, the option, a completion the regex matches with the value in its
    group). A hop whose parse cannot read the value back is a clear error, not a silent miss.

    The oracle answers through the hop's grammar, as a constrained model must: when the grammar
    admits no completion that reads as the expected value, it answers the grammar's shortest
    string, which is judged wrong, so 100 % means that the file can be answered."""
    if expected is None:
        return "unknown"
    try:
        return format_answer(expected, parse, grammar)
    except AnswerFormatError as exc:
        if grammar is not None:
            try:
                format_answer(expected, parse)
            except AnswerFormatError:
                pass
            else:
                from agentsim.grammar import compile_grammar

                return compile_grammar(grammar).shortest()
        from agentsim.errors import BackendError

        raise BackendError(
            f"oracle: hop '{hop_id}': {exc}; the scenario cannot be answered right "
            "(agentsim validate warns about it)",
            hint="fix the hop's parse (e.g. a pattern that captures the answer) or its expect",
        ) from None


def _noisy_text(value: Any, parse: ParseSpec) -> str:
    try:
        return format_answer(value, parse)
    except AnswerFormatError:
        return str(value)


class NoisyBackend(Backend):
    """Right given its inputs, but wrong with probability ``p`` (a plausible wrong value).

    Decisions are seeded by (seed, instance, hop), so the same hop of the same instance errs in
    free and in oracle mode alike, and a resumed run reproduces the original exactly.
    """

    NAME: ClassVar[str] = "noisy"
    DESCRIPTION: ClassVar[str] = "seeded simulation: right given its inputs, wrong with probability p"
    SIMULATED: ClassVar[bool] = True
    OPTIONS: ClassVar[dict[str, OptionSpec]] = {
        "p": OptionSpec(float, 0.1, "probability that a hop answers wrongly"),
        "parse_p": OptionSpec(float, 0.0, "probability of an unparseable answer"),
        "latency_ms": OptionSpec(float, 0.0, "simulated latency per call, ms"),
        "seed": OptionSpec(int, 0, "seed of the error draws"),
    }

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        from agentsim.errors import BackendError

        for key in ("p", "parse_p"):
            if not 0.0 <= self.options[key] <= 1.0:
                raise BackendError(f"noisy: {key}={self.options[key]} must be within [0, 1]")
        if self.options["latency_ms"] < 0:
            raise BackendError("noisy: latency_ms must be >= 0")

    _in_batch: bool = False

    def generate_batch(self, requests: Any, *, return_exceptions: bool = False) -> list[Any]:
        """One call for the whole batch: ``latency_ms`` models one batched call, not one per hop."""
        return _one_batched_call(self, requests, return_exceptions)

    def generate(self, request: GenerationRequest) -> Completion:
        t0 = time.perf_counter()
        _sleep(0.0 if self._in_batch else self.options["latency_ms"])
        rng = random.Random(f"noisy:{self.options['seed']}:{request.instance_key}:{request.hop_id}")
        parse = request.parse or ParseSpec()
        u_parse, u_err = rng.random(), rng.random()
        if u_parse < self.options["parse_p"]:
            text = "I am not sure."
        elif request.expected is None:
            text = "unknown"
        elif u_err < self.options["p"]:
            text = _noisy_text(wrong_value(request.expected, parse, rng), parse)
        else:
            text = _noisy_text(request.expected, parse)
        return Completion(text=text, decode_s=time.perf_counter() - t0, finish_reason="eos")

    def info(self) -> BackendInfo:
        o = self.options
        return BackendInfo(
            name="noisy",
            precision=self.spec.precision,
            precision_mode="n/a",
            kernel="simulation",
            extra={"p": o["p"], "parse_p": o["parse_p"], "seed": o["seed"]},
        )


def wrong_value(expected: Any, parse: ParseSpec, rng: random.Random) -> Any:
    """A plausible wrong answer of the same type as ``expected``."""
    if parse.type == "choice" and parse.options:
        others = [o for o in parse.options if str(o).lower() != str(expected).lower()]
        if others:
            return rng.choice(others)
    if isinstance(expected, bool):
        return not expected
    if isinstance(expected, int):
        delta = rng.choice([-3, -2, -1, 1, 2, 3, 10, -10])
        return expected + delta
    if isinstance(expected, float):
        factor = rng.choice([0.5, 0.9, 1.1, 1.5, 2.0])
        value = round(expected * factor, 4)
        return value if value != expected else expected + 1.0
    if isinstance(expected, str):
        if not expected:
            return "none"
        stripped = expected.strip()
        try:
            as_int = int(stripped)
        except ValueError:
            pass
        else:
            return str(as_int + rng.choice([-2, -1, 1, 2]))
        letters = "abcdefghijklmnopqrstuvwxyz"
        i = rng.randrange(len(stripped))
        repl = rng.choice([c for c in letters if c != stripped[i].lower()])
        return stripped[:i] + repl + stripped[i + 1 :] if stripped else "x"
    if isinstance(expected, list):
        return list(reversed(expected)) + ["?"] if expected else ["?"]
    if isinstance(expected, dict):
        return {k: wrong_value(v, ParseSpec(), rng) for k, v in expected.items()}
    return "wrong"
