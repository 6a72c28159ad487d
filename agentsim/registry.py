"""One registry mechanism for every kind of plugin: backends, scenario families, tools.

An entry is a lazy ``"module:attr"`` string (imported on first :meth:`Registry.get`) or an object
registered directly (what decorators such as ``@generator`` and ``@tool`` do). Entries also come
from an entry-point group, exactly as a third party's would: agentsim's own backends are declared
in its pyproject's ``agentsim.backends`` table. Listing names imports nothing.

A module that fails to import because an optional dependency is missing becomes a
:class:`~agentsim.errors.MissingDependencyError` naming the extra to install.

This module is a leaf: it imports only :mod:`agentsim.errors`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from .errors import AgentsimError, MissingDependencyError

__all__ = ["Registry", "RegistryEntry"]

T = TypeVar("T")


@dataclass
class RegistryEntry:
    """What a registry knows about one name before (and after) importing it."""

    name: str
    target: str | None = None  # "module:attr", imported on first get
    obj: Any = None  # the object, once registered or imported
    extra: str | None = None  # the pip extra that installs the dependencies
    requires: tuple[str, ...] = ()  # import names it needs (checked before importing)
    description: str = ""
    origin: str = "built-in"  # built-in | entry point GROUP | register()
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Names -> objects of one kind, lazily imported; entry points of ``group`` included."""

    def __init__(
        self,
        kind: str,
        group: str | None = None,
        *,
        error: Callable[..., AgentsimError] = AgentsimError,
        on_first_use: Callable[[], Any] | None = None,
    ) -> None:
        self.kind = kind  # "backend", "family", "tool": used in messages
        self.group = group
        self._error = error
        self._entries: dict[str, RegistryEntry] = {}
        self._entry_points_loaded = False
        self._on_first_use = on_first_use
        self._first_use_done = on_first_use is None

    # registering ----------------------------------------------------------------------

    def register(
        self,
        name: str,
        target: str | T,
        *,
        extra: str | None = None,
        requires: Iterable[str] = (),
        description: str = "",
        origin: str = "register()",
        **meta: Any,
    ) -> None:
        """Register ``target`` (an object, or a lazy ``"module:attr"`` string) under ``name``."""
        entry = RegistryEntry(name, extra=extra, requires=tuple(requires), description=description,
                              origin=origin, meta=dict(meta))
        if isinstance(target, str):
            entry.target = target
        else:
            entry.obj = target
        self._entries[name] = entry

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or self.group is None:
            return
        self._entry_points_loaded = True
        try:
            eps = list(entry_points(group=self.group))
        except Exception:  # noqa: BLE001 - broken third-party metadata must not break us
            eps = []
        for ep in eps:
            if ep.name not in self._entries:
                self._entries[ep.name] = RegistryEntry(ep.name, target=ep.value,
                                                       origin=f"entry point ({self.group})")

    def _ensure(self) -> None:
        if not self._first_use_done:
            self._first_use_done = True
            assert self._on_first_use is not None
            self._on_first_use()
        self._load_entry_points()

    @contextmanager
    def scoped(self) -> Iterator[Registry[T]]:
        """Registrations made inside the block are undone after it (for tests and previews)."""
        self._ensure()
        saved = dict(self._entries)
        try:
            yield self
        finally:
            self._entries = saved

    # reading --------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every registered name, sorted; imports nothing that is still lazy."""
        self._ensure()
        return sorted(self._entries)

    def entry(self, name: str) -> RegistryEntry | None:
        self._ensure()
        return self._entries.get(name)

    def __contains__(self, name: object) -> bool:
        self._ensure()
        return name in self._entries

    def get(self, name: str) -> T:
        """The object registered as ``name``, importing it on first use."""
        entry = self.entry(name)
        if entry is None:
            raise self._error(f"unknown {self.kind} {name!r}",
                              hint=f"{self.kind}s: {', '.join(self.names()) or 'none'}")
        if entry.obj is None:
            entry.obj = self._import(entry)
        return entry.obj  # type: ignore[no-any-return]

    def find(self, name: str) -> T | None:
        """Like :meth:`get`, None for an unknown name."""
        return self.get(name) if name in self else None

    def items(self) -> list[tuple[str, T]]:
        """Every (name, object) pair, importing what is still lazy."""
        return [(n, self.get(n)) for n in self.names()]

    def _import(self, entry: RegistryEntry) -> Any:
        assert entry.target is not None
        module_name, _, attr = entry.target.partition(":")
        missing = [m for m in entry.requires if importlib.util.find_spec(m) is None]
        if missing and entry.extra:
            raise MissingDependencyError(f"{self.kind} {entry.name!r}", entry.extra, missing)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if entry.extra:
                raise MissingDependencyError(f"{self.kind} {entry.name!r}", entry.extra,
                                             [exc.name or str(exc)]) from None
            raise self._error(f"cannot import {self.kind} {entry.name!r} from {module_name!r} "
                              f"({entry.origin}): {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a third party's module that fails to import
            raise self._error(f"cannot import {self.kind} {entry.name!r} from {module_name!r} "
                              f"({entry.origin}): {type(exc).__name__}: {exc}") from None
        if not attr:
            return module
        try:
            return getattr(module, attr)
        except AttributeError:
            raise self._error(f"{self.kind} {entry.name!r}: {module_name!r} has no {attr!r} "
                              f"({entry.origin})") from None
