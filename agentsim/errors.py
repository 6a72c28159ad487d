"""User-facing errors.

Everything a user can cause (a bad scenario file, an unknown backend, a missing model, no GPU
where one is asked for) raises a subclass of :class:`AgentsimError`. The CLI prints its message
and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations

from collections.abc import Sequence


class AgentsimError(Exception):
    """An error whose message is meant for the user."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ScenarioError(AgentsimError):
    """A scenario file or generator is invalid.

    ``location`` is ``file[:line]``; ``hop`` and ``field`` say where in the scenario.
    ``problems`` holds every problem found in one pass (each a :class:`ScenarioError` with its
    own line, hop and field); it is ``[self]`` when only one was found. The message of the error
    itself is the first problem (with "(and N more problems)" when there are more).
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        hop: str | None = None,
        field: str | None = None,
        hint: str | None = None,
        problems: Sequence[ScenarioError] | None = None,
    ) -> None:
        self.source = source
        self.line = line
        self.hop = hop
        self.field = field
        self.detail = message
        self.problems: list[ScenarioError] = list(problems) if problems else [self]
        parts = []
        if source:
            parts.append(f"{source}:{line}" if line else source)
        where = []
        if hop:
            where.append(f"hop '{hop}'")
        if field:
            where.append(f"field '{field}'")
        head = ": ".join(parts)
        loc = ", ".join(where)
        text = message
        if loc:
            text = f"{loc}: {text}"
        if head:
            text = f"{head}: {text}"
        super().__init__(text, hint=hint)


class BackendError(AgentsimError):
    """A backend spec is bad, a dependency is missing, or a backend cannot start."""


class MissingDependencyError(BackendError):
    def __init__(self, what: str, extra: str, modules: list[str]) -> None:
        super().__init__(
            f"{what} needs {', '.join(modules)}, which is not installed",
            hint=f"pip install 'agentsim[{extra}]'",
        )
        self.extra = extra


class StoreError(AgentsimError):
    """The database cannot be opened, or a run id does not exist."""


class ModelError(AgentsimError):
    """A model file is missing, corrupt, or fails its checksum."""


class HardwareError(AgentsimError):
    """The hardware asked for is not present (e.g. a GPU, or FP4 tensor cores)."""


def yaml_trap_hint(error_type: str, value: object) -> str | None:
    """A hint for the common YAML traps behind a validation error, or None.

    ``error_type`` is pydantic's error type, ``value`` the parsed input. YAML 1.1 (PyYAML) reads
    unquoted ``yes``/``no``/``on``/``off``/``true``/``false`` as booleans, so ``options: [yes, no]``
    gives ``[True, False]``; an empty value reads as null.
    """
    if isinstance(value, bool) and error_type.startswith(("string", "literal")):
        word = "yes/no/on/off/true/false"
        return (f"YAML reads an unquoted {word} as a boolean ({value}); quote it to keep the word, "
                "e.g. options: ['yes', 'no']")
    if value is None and error_type.startswith("string"):
        return "the value is empty (YAML null); write it after the colon, quoted if it starts with { [ | > * & ! % @ or `"
    return None
